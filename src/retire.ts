/**
 * A hot swap's old versions: each drains (its `close()` within `drainTimeoutMs`) under the retention
 * bound. At a retirement that would leave more than `retain` versions draining, the oldest is
 * force-closed (its close deadline is brought to now) and no longer counts against the bound.
 */
import type { CloseReport, Plugin } from './plugin.js';

export class Retirement<T> {
  /** Versions out of service, still draining, oldest first. */
  readonly draining = new Set<Plugin<T>>();
  /** Draining versions whose deadline was brought to now. */
  readonly #forced = new Set<Plugin<T>>();
  readonly #drainTimeoutMs: number;
  readonly #retain: number;
  readonly #drained: (report: CloseReport) => void;

  constructor(drainTimeoutMs: number, retain: number, drained: (report: CloseReport) => void) {
    this.#drainTimeoutMs = drainTimeoutMs;
    this.#retain = retain;
    this.#drained = drained;
  }

  /** Moves a version out of service: it drains under the retention bound, then is closed. */
  retire(old: Plugin<T>): Promise<CloseReport> {
    this.draining.add(old);
    const closing = old.close({ timeoutMs: this.#drainTimeoutMs });
    for (const oldest of this.draining) {
      if (this.draining.size - this.#forced.size <= this.#retain) break;
      if (this.#forced.has(oldest)) continue;
      this.#forced.add(oldest);
      void oldest.close({ timeoutMs: 0 });
    }
    return closing.then((report) => {
      this.draining.delete(old);
      this.#forced.delete(old);
      this.#drained(report);
      return report;
    });
  }
}
