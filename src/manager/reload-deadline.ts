/**
 * A reload's own deadline (`reloadTimeoutMs`): from the start of its scan to the switch. The loads
 * of the reload get its signal (admission.ts), so those still waiting in the boot queue or booting
 * fail when it passes; the scan is raced against it, and it is checked again before the switch.
 */
import { setMaxListeners } from 'node:events';
import type { LoadBounds } from '../admission.js';
import { PluginTimeoutError } from '../shared/errors.js';
import { sleep } from '../time.js';

export class ReloadDeadline {
  readonly #controller = new AbortController();
  readonly #timer: ReturnType<typeof sleep>;
  readonly #over: Promise<void>;

  constructor(readonly timeoutMs: number) {
    // Every load of the reload listens to this signal: hundreds of listeners are expected.
    setMaxListeners(0, this.#controller.signal);
    this.#timer = sleep(timeoutMs);
    this.#over = this.#timer.promise.then(() => this.#controller.abort());
  }

  /** What each load of this reload is bounded by: its `readyTimeoutMs` from admission, and this deadline. */
  get bounds(): LoadBounds {
    return { fromAdmission: true, outer: { signal: this.#controller.signal, timeoutMs: this.timeoutMs } };
  }

  get passed(): boolean {
    return this.#controller.signal.aborted;
  }

  /** The error of a reload past its deadline, during `stage`. */
  error(stage: string): PluginTimeoutError {
    return new PluginTimeoutError(`the reload did not finish within ${this.timeoutMs} ms (${stage})`, {
      timeoutMs: this.timeoutMs,
    });
  }

  /** `p`'s value, or `late` once the deadline passed. */
  async race<T, L>(p: Promise<T>, late: L): Promise<T | L> {
    return Promise.race([p, this.#over.then(() => late)]);
  }

  cancel(): void {
    this.#timer.cancel();
  }
}
