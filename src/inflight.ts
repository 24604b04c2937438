/**
 * The registry of calls in flight on one version: the wait-group `close()` drains. A call leaves it
 * exactly once, however it settles (reply, timeout, abort, crash, terminate, destroy), and leaving it
 * clears its timer and its abort listener.
 */
export interface PendingCall {
  readonly id: number;
  readonly method: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class InFlight {
  readonly #calls = new Map<number, PendingCall>();
  #idle: Array<() => void> = [];
  readonly #onBusy: () => void;
  readonly #onIdle: () => void;

  /** `onBusy` runs on 0 → 1 calls, `onIdle` on 1 → 0 (the host refs and unrefs the worker there). */
  constructor(onBusy: () => void, onIdle: () => void) {
    this.#onBusy = onBusy;
    this.#onIdle = onIdle;
  }

  get size(): number {
    return this.#calls.size;
  }

  add(call: PendingCall): void {
    this.#calls.set(call.id, call);
    if (this.#calls.size === 1) this.#onBusy();
  }

  /** Removes the call and clears what it holds; undefined when it already left. */
  take(id: number): PendingCall | undefined {
    const call = this.#calls.get(id);
    if (call === undefined) return undefined;
    this.#calls.delete(id);
    if (call.timer !== undefined) clearTimeout(call.timer);
    if (call.onAbort !== undefined) call.signal?.removeEventListener('abort', call.onAbort);
    if (this.#calls.size === 0) {
      this.#onIdle();
      const waiters = this.#idle;
      this.#idle = [];
      for (const wake of waiters) wake();
    }
    return call;
  }

  /** Rejects every call in flight with the error made for it; returns how many there were. */
  rejectAll(errorFor: (call: PendingCall) => Error): number {
    const ids = [...this.#calls.keys()];
    for (const id of ids) {
      const call = this.take(id);
      call?.reject(errorFor(call));
    }
    return ids.length;
  }

  /** Resolves when no call is in flight. */
  whenIdle(): Promise<void> {
    if (this.#calls.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
