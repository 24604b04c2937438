/**
 * The registry of calls in flight on one version: the wait-group `close()` drains. A call leaves it
 * exactly once, however it settles (reply, timeout, abort, crash, terminate, destroy), and leaving it
 * clears its timer and its abort listener.
 *
 * Timeouts: calls with the version's default timeout expire in the order they started, so they share
 * one timer armed for the oldest (the Map keeps insertion order), or for a call that left since: it
 * then re-arms for the oldest still in flight. It is not cleared when the registry goes idle, since
 * arming and clearing a timer per call costs more than the rest of the call's bookkeeping; it fires at
 * most once more, finds nothing due, and stops. When the version ends, `stop()` clears it at once. A
 * call with its own timeout gets its own timer.
 */
export interface PendingCall {
  readonly id: number;
  readonly method: string;
  /** The thread the call was sent to (its index in the version). */
  readonly lane: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  /** The sequence number of the message to the thread that carries the call (see protocol.ts: lost messages). */
  seq: number;
  /** When the call expires on the shared timer (default timeout), in `performance.now()` ms. */
  expiresAt: number | undefined;
  /** Its own timer (a per-call timeout). */
  timer: NodeJS.Timeout | undefined;
  /** The call's AbortSignal; the registry listens to it once for all the calls that share it. */
  readonly signal: AbortSignal | undefined;
}

export interface InFlightHooks {
  /** 0 → 1 calls (the host refs the worker). */
  busy(): void;
  /** 1 → 0 calls (the host unrefs it). */
  idle(): void;
  /** A call on the shared timer is past its deadline; it has already left the registry. */
  expire(call: PendingCall): void;
  /** The call's signal fired; it has already left the registry. */
  abort(call: PendingCall): void;
}

/** The calls waiting on one AbortSignal, and the one listener the registry added to it. */
interface SignalWatch {
  readonly calls: Set<PendingCall>;
  readonly listener: () => void;
}

export class InFlight {
  readonly #calls = new Map<number, PendingCall>();
  readonly #hooks: InFlightHooks;
  #idle: Array<() => void> = [];
  #sweeper: NodeJS.Timeout | undefined;
  /** One listener per signal, however many calls share it (a request-scoped signal on 64 calls adds 1, not 64). */
  readonly #signals = new Map<AbortSignal, SignalWatch>();
  /** Calls in flight per lane (thread), plus the work `occupy` counts there, for least-busy dispatch. */
  readonly #lanes: number[] = [];

  constructor(hooks: InFlightHooks) {
    this.#hooks = hooks;
  }

  get size(): number {
    return this.#calls.size;
  }

  add(call: PendingCall): void {
    this.#calls.set(call.id, call);
    this.#lanes[call.lane] = (this.#lanes[call.lane] ?? 0) + 1;
    if (this.#calls.size === 1) this.#hooks.busy();
    if (call.expiresAt !== undefined && this.#sweeper === undefined) this.#arm(call.expiresAt);
    if (call.signal !== undefined) this.#watch(call.signal, call);
  }

  #watch(signal: AbortSignal, call: PendingCall): void {
    let watch = this.#signals.get(signal);
    if (watch === undefined) {
      const calls = new Set<PendingCall>();
      const listener = () => {
        for (const aborted of [...calls]) {
          this.take(aborted.id);
          this.#hooks.abort(aborted);
        }
      };
      watch = { calls, listener };
      this.#signals.set(signal, watch);
      signal.addEventListener('abort', listener, { once: true });
    }
    watch.calls.add(call);
  }

  /**
   * Counts work on a lane that is not a call in flight: a call given up on (timeout, abort) that the
   * thread may still be running, until its late reply comes or the thread ends.
   */
  occupy(lane: number, delta: number): void {
    this.#lanes[lane] = (this.#lanes[lane] ?? 0) + delta;
  }

  /** The lane in `[0, lanes)` with the fewest calls in flight (or given up on but still running); ties go to the lowest. */
  leastBusy(lanes: number): number {
    let best = 0;
    let least = this.#lanes[0] ?? 0;
    for (let lane = 1; lane < lanes && least > 0; lane++) {
      const n = this.#lanes[lane] ?? 0;
      if (n < least) {
        best = lane;
        least = n;
      }
    }
    return best;
  }

  /** The call, while it is in flight. */
  get(id: number): PendingCall | undefined {
    return this.#calls.get(id);
  }

  /** Removes the call and clears what it holds; undefined when it already left. */
  take(id: number): PendingCall | undefined {
    const call = this.#calls.get(id);
    if (call === undefined) return undefined;
    this.#calls.delete(id);
    this.#lanes[call.lane]!--;
    if (call.timer !== undefined) clearTimeout(call.timer);
    if (call.signal !== undefined) {
      const watch = this.#signals.get(call.signal);
      watch?.calls.delete(call);
      if (watch?.calls.size === 0) {
        this.#signals.delete(call.signal);
        call.signal.removeEventListener('abort', watch.listener);
      }
    }
    if (this.#calls.size === 0) {
      this.#hooks.idle();
      const waiters = this.#idle;
      this.#idle = [];
      for (const wake of waiters) wake();
    }
    return call;
  }

  /** Rejects every call in flight (or those `which` picks) with the error made for it; returns how many. */
  rejectAll(errorFor: (call: PendingCall) => Error, which?: (call: PendingCall) => boolean): number {
    const ids: number[] = [];
    for (const call of this.#calls.values()) if (which === undefined || which(call)) ids.push(call.id);
    for (const id of ids) {
      const call = this.take(id);
      call?.reject(errorFor(call));
    }
    return ids.length;
  }

  /** The version has ended: stops the shared timer, which would otherwise hold the registry until it fires. */
  stop(): void {
    clearTimeout(this.#sweeper);
    this.#sweeper = undefined;
  }

  /** Resolves when no call is in flight. */
  whenIdle(): Promise<void> {
    if (this.#calls.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #arm(at: number): void {
    this.#sweeper = setTimeout(() => this.#sweep(), Math.max(0, at - performance.now()));
    this.#sweeper.unref();
  }

  /** Expires the calls on the shared timer that are due, oldest first; re-arms for the next one, if any. */
  #sweep(): void {
    this.#sweeper = undefined;
    const now = performance.now();
    for (const call of this.#calls.values()) {
      if (call.expiresAt === undefined) continue;
      if (call.expiresAt > now) return this.#arm(call.expiresAt);
      this.take(call.id);
      this.#hooks.expire(call);
    }
  }
}
