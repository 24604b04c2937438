/**
 * A load's one deadline and its place in the boot queue. The deadline is created when the load is
 * called and spans everything until the version is ready: the wait in the boot queue, the spawn, the
 * read of the module file, the import and `onLoad`. A load whose deadline passes while it waits leaves
 * the queue having started nothing; one that passes while booting rejects at the deadline and its
 * workers end in the background (boot.ts).
 *
 * The plugin manager loads whole sets at once: there each load's `readyTimeoutMs` counts from its
 * admission (the manager queued it, not the user), and the reload's own deadline (`reloadTimeoutMs`)
 * ends the loads still waiting or booting when it passes (`outer`).
 */
import { enterBootQueue, type BootTicket } from './boot-queue.js';
import type { BootLimit } from './boot.js';
import { PluginLoadError, PluginTimeoutError, type PluginErrorContext } from './shared/errors.js';
import { deadline, type Deadline } from './time.js';
import type { VersionErrors } from './version-errors.js';

/** How a load is bounded besides its own `readyTimeoutMs`. */
export interface LoadBounds {
  /** `readyTimeoutMs` counts from the load's admission to boot, not from the call. */
  readonly fromAdmission?: boolean;
  /** A deadline around the load (a manager reload's): once `signal` aborts, the load fails as timed out. */
  readonly outer?: { readonly signal: AbortSignal; readonly timeoutMs: number };
}

export class Admission implements BootLimit {
  readonly deadline: Deadline;
  readonly #ticket: BootTicket;
  readonly #readyTimeoutMs: number;
  readonly #bounds: LoadBounds;
  readonly #abort = (): void => this.deadline.shorten(0);

  constructor(readyTimeoutMs: number, bounds: LoadBounds) {
    this.#readyTimeoutMs = readyTimeoutMs;
    this.#bounds = bounds;
    this.deadline = deadline(bounds.fromAdmission === true ? Infinity : readyTimeoutMs);
    const signal = bounds.outer?.signal;
    if (signal?.aborted === true) this.deadline.shorten(0);
    else signal?.addEventListener('abort', this.#abort, { once: true });
    this.#ticket = enterBootQueue();
  }

  /** Waits for a boot slot: true once admitted, false when the deadline passed first (the queue is left). */
  async admitted(): Promise<boolean> {
    const admitted = await this.deadline.race(
      this.#ticket.admitted.then(() => true),
      false,
    );
    // Admitted as its own deadline passes (loads called together time out together, and each freed slot
    // admits the next): with less than a millisecond left no boot fits, so it starts no worker only to end it.
    if (!admitted || this.deadline.left() < 1) {
      this.#ticket.release();
      return false;
    }
    if (this.#bounds.fromAdmission === true) this.deadline.shorten(this.#readyTimeoutMs);
    return true;
  }

  /** The timeout that ended the load: its own `readyTimeoutMs`, or the deadline around it. */
  #cause(context: PluginErrorContext, queued: boolean): PluginTimeoutError {
    const outer = this.#bounds.outer;
    const [what, timeoutMs] =
      outer?.signal.aborted === true
        ? ['the reload did not finish', outer.timeoutMs]
        : ['not ready', this.#readyTimeoutMs];
    const where = queued ? ' (still waiting in the boot queue)' : '';
    return new PluginTimeoutError(`${what} within ${timeoutMs} ms${where}`, { ...context, timeoutMs, queued });
  }

  /** BootLimit: the cause when the deadline passes while the workers boot. */
  timedOut(errors: VersionErrors): Error {
    return this.#cause(errors.context(), false);
  }

  /** The load error when the deadline passed before the module was known (queued, or reading the file). */
  failed(identity: PluginErrorContext, target: string, queued: boolean): PluginLoadError {
    return new PluginLoadError(`cannot load plugin from ${target}`, {
      ...identity,
      cause: this.#cause(identity, queued),
    });
  }

  /** BootLimit: the module is imported; the slot goes to the next load. */
  readonly imported = (): void => this.#ticket.release();

  /** The load is over, whichever way: the slot (or the place in the queue) and the timer go. */
  end(): void {
    this.#ticket.release();
    this.deadline.cancel();
    this.#bounds.outer?.signal.removeEventListener('abort', this.#abort);
  }
}
