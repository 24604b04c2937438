/**
 * A hot swap's queue: swaps (rollouts, restarts) run one at a time. While one runs, the latest
 * request waits; an earlier waiting request is superseded (latest wins). The HotSwap runs each one
 * (its load, check and switch); this keeps the order.
 */
export class SwapQueue<R extends { readonly reject: (error: Error) => void }> {
  #waiting: R | undefined;
  #running = false;
  /** The running queue, awaited by close() so no new version outlives it. */
  #pumping: Promise<void> = Promise.resolve();
  readonly #run: (request: R) => Promise<void>;
  readonly #ran: () => void;
  readonly #idle: () => void;

  /** `run`: one request, never throws. `ran`: after each one. `idle`: once the queue is empty. */
  constructor(run: (request: R) => Promise<void>, ran: () => void, idle: () => void) {
    this.#run = run;
    this.#ran = ran;
    this.#idle = idle;
  }

  /** True while a request waits for the one running. */
  get waiting(): boolean {
    return this.#waiting !== undefined;
  }

  /** Settles once the queue stopped. */
  get pumping(): Promise<void> {
    return this.#pumping;
  }

  /** Queues `request`; a request waiting before it is rejected with `superseded()`. */
  push(request: R, superseded: () => Error): void {
    const replaced = this.#waiting;
    this.#waiting = request;
    replaced?.reject(superseded());
    if (!this.#running) this.#pumping = this.#pump();
  }

  /** Rejects the waiting request, if any, with `error`. */
  cancel(error: () => Error): void {
    this.#waiting?.reject(error());
    this.#waiting = undefined;
  }

  async #pump(): Promise<void> {
    this.#running = true;
    for (let request = this.#waiting; request; request = this.#waiting) {
      this.#waiting = undefined;
      await this.#run(request);
      this.#ran();
    }
    this.#running = false;
    this.#idle();
  }
}
