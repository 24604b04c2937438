/**
 * A hot swap's restart supervision (`HotSwapOptions.restart`), in the manner of an OTP supervisor: a
 * crash of the current version restarts it after a backoff that doubles with each restart in the
 * window; more than `maxRestarts` within `withinMs` (or as many failed boots in a row) gives up. Calls
 * made while it restarts wait for the outcome, within their own timeout and signal. The HotSwap owns
 * the state and the swap queue; this keeps the counts, the backoff and the waiting calls.
 */
import type { ResolvedRestart } from './hotswap-options.js';
import type { CallOptions } from './options.js';
import type { PluginCrashedError } from './shared/errors.js';
import { sleep, timerDelay } from './time.js';
import type { VersionErrors } from './version-errors.js';

export class Restarts {
  /** The last crash: the cause of the refusals once the hot swap gave up. */
  lastCrash: PluginCrashedError | undefined;
  /** True while a restart waits out its backoff. */
  scheduled = false;
  readonly #policy: ResolvedRestart | undefined;
  /** When each restart in the window started (performance.now()). */
  #restarts: number[] = [];
  /** Restart attempts that failed in a row (boots that died or timed out), whatever the window. */
  #failedBoots = 0;
  /** Settles when a restart attempt ends (a new current, or failed); undefined when none runs. */
  #recovered: Promise<void> | undefined;
  #onRecovered: (() => void) | undefined;
  /** The wait before the next restart attempt: stop() cancels it, so no timer outlives the hot swap. */
  #backoff: { cancel(): void } | undefined;

  constructor(policy: ResolvedRestart | undefined) {
    this.#policy = policy;
  }

  /** Restarts so far in the window (the `restart` event's `attempt`). */
  get attempt(): number {
    return this.#restarts.length;
  }

  /**
   * The current version died (`error`), or a restart failed: the backoff before the next restart, or
   * undefined to give up (no policy, or its limit is reached).
   */
  next(error: PluginCrashedError | undefined): number | undefined {
    this.lastCrash = error ?? this.lastCrash;
    const policy = this.#policy;
    const now = performance.now();
    this.#restarts = this.#restarts.filter((at) => now - at < (policy?.withinMs ?? 0));
    // Failed boots count even when each takes longer than the window: a version that never boots gives up.
    if (!policy || this.#restarts.length >= policy.maxRestarts || this.#failedBoots >= policy.maxRestarts) {
      return undefined;
    }
    this.#restarts.push(now);
    this.#recovered ??= new Promise((resolve) => (this.#onRecovered = resolve));
    return Math.min(policy.backoffMs * 2 ** (this.#restarts.length - 1), policy.maxBackoffMs);
  }

  /** Waits out a restart's backoff (`scheduled` meanwhile); never resolves once stop() cancelled it. */
  backoff(ms: number): Promise<void> {
    this.scheduled = true;
    const wait = (this.#backoff = sleep(ms));
    return wait.promise.then(() => {
      this.scheduled = false;
      this.#backoff = undefined;
    });
  }

  /** The hot swap closes: no restart follows, and the calls waiting for one go on (to be refused). */
  stop(): void {
    this.#backoff?.cancel();
    this.#backoff = undefined;
    this.settle();
  }

  /** A restart's boot failed. */
  bootFailed(): void {
    this.#failedBoots++;
  }

  /** A new version serves (a restart or a swap): the calls waiting go to it, failed boots start over. */
  recovered(): void {
    this.#failedBoots = 0;
    this.settle();
  }

  /** The restarts ended without a new version (given up, or the hot swap closes): waiting calls go on. */
  settle(): void {
    this.#onRecovered?.();
    this.#recovered = undefined;
    this.#onRecovered = undefined;
  }

  /**
   * A call made while the version restarts: waits for the restart, within its own timeout and signal
   * (the wait is pending work: its timer holds the process, like the call would), then goes to `route`.
   */
  wait(
    method: string,
    args: unknown[],
    options: CallOptions | undefined,
    defaultTimeoutMs: number,
    errors: VersionErrors,
    route: (method: string, args: unknown[], options: CallOptions) => Promise<unknown>,
  ): Promise<unknown> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(errors.abortedBeforeStart(method, signal.reason));
    const timeoutMs = options?.timeoutMs ?? defaultTimeoutMs;
    const deadline = performance.now() + timeoutMs;
    const during = ' while the plugin restarted';
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        done();
        reject(errors.aborted(method, signal?.reason, during));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const delay = timerDelay(timeoutMs);
      if (delay !== undefined) {
        timer = setTimeout(() => {
          done();
          reject(errors.timeout(method, timeoutMs, during));
        }, delay);
      }
      void (this.#recovered ?? Promise.resolve()).then(() => {
        if (signal?.aborted || (delay !== undefined && performance.now() >= deadline)) return;
        done();
        const left = Number.isFinite(timeoutMs) ? Math.max(0, deadline - performance.now()) : timeoutMs;
        route(method, args, { ...options, timeoutMs: left }).then(resolve, reject);
      });
    });
  }
}
