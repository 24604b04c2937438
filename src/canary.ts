/**
 * A hot swap's canary slot: the one candidate that serves a share of the calls beside the current
 * version during a rollout. It installs the candidate at the rollout's switch (replacing a canary that
 * served before it), ends it (on `abort()`, automatically on `abortOn` or a crash, or when a swap
 * moves every call to a new version) and hands it over on `promote()`. The split of each call and the
 * figures are rollout.ts; the queue, the switch and the drain stay with the HotSwap.
 */
import type { AbortReport, HotSwapEvents, RolloutReport, VersionInfo } from './hotswap-events.js';
import type { ResolvedLoadOptions } from './options.js';
import type { CloseReport, Plugin } from './plugin.js';
import type { PluginSpecifier } from './resolve.js';
import { Canary } from './rollout.js';
import type { ResolvedRolloutOptions } from './rollout-options.js';
import { VersionErrors } from './version-errors.js';

/** What the slot needs of its hot swap. */
export interface CanaryHost<T> {
  /** Takes a version out of service: it drains under the retention bound, then closes. */
  retire(plugin: Plugin<T>): Promise<CloseReport>;
  /** Emits without letting a listener unwind the caller. */
  emit<K extends keyof HotSwapEvents>(event: K, ...args: HotSwapEvents[K]): void;
  shuttingDown(): boolean;
  /** The current version's label. */
  current(): string;
}

/** A version loaded and checked, at its switch. */
export interface Incoming<T> {
  readonly plugin: Plugin<T>;
  readonly specifier: PluginSpecifier;
  readonly load: ResolvedLoadOptions;
  readonly loadMs: number;
  readonly standby: boolean;
}

/** A rollout's split, as `rollout()` validated it. */
export type Split = Omit<ResolvedRolloutOptions, 'swap'>;

export class CanarySlot<T> {
  readonly #host: CanaryHost<T>;
  #canary: Canary<T> | undefined;

  constructor(host: CanaryHost<T>) {
    this.#host = host;
  }

  /** The canary serving now, if any. */
  get canary(): Canary<T> | undefined {
    return this.#canary;
  }

  /** The current version, the canary and the draining ones, with their counters and shares. */
  versions(current: Plugin<T>, draining: Iterable<Plugin<T>>): VersionInfo[] {
    const canary = this.#canary;
    const info = (plugin: Plugin<T>, role: VersionInfo['role'], percent: number): VersionInfo => ({
      version: plugin.version,
      role,
      percent,
      state: plugin.state,
      stats: plugin.stats,
      rollout: canary?.figures(plugin),
    });
    return [
      info(current, 'current', 100 - (canary?.percent ?? 0)),
      ...(canary ? [info(canary.plugin, 'canary', canary.percent)] : []),
      ...[...draining].map((p) => info(p, 'draining', 0)),
    ];
  }

  /** A rollout's switch: `next`, loaded and checked, becomes the canary; the one before it ends. */
  install(incoming: Incoming<T>, split: Split): RolloutReport {
    const { plugin: next, specifier, load, loadMs, standby } = incoming;
    const salt = split.salt ?? `${next.name}:${next.version}`;
    const errors = new VersionErrors(next.name, next.version);
    const canary: Canary<T> = new Canary<T>(
      next,
      { ...split, specifier, load, loadMs, standby, salt },
      (calls, failures, cause) => {
        const why = `${failures} of ${calls} calls failed, over abortOn.failureRate ${split.abortOn?.failureRate}`;
        void this.end(canary, errors.rolloutAborted(why, cause, calls, failures), true, { calls, failures });
      },
    );
    // Its crash never reaches the current version: the canary just leaves the split.
    next.once('crash', (error) => void this.end(canary, errors.rolloutAborted('it crashed', error), true));
    const replaced = this.#canary;
    this.#canary = canary;
    if (replaced) void this.#retire(replaced, `a rollout of ${next.version}`, false, undefined);
    const report = { from: this.#host.current(), version: next.version, percent: split.percent, salt, loadMs, standby };
    if (!this.#host.shuttingDown()) {
      this.#host.emit('rollout', { from: report.from, to: next.version, percent: split.percent, salt, loadMs });
    }
    return report;
  }

  /** Sets the canary's share (validated by the caller); false without a canary. */
  setPercent(percent: number): boolean {
    const canary = this.#canary;
    if (canary === undefined) return false;
    const previous = canary.percent;
    canary.percent = percent;
    this.#host.emit('percent', { version: canary.plugin.version, percent, previous });
    return true;
  }

  /** Takes the canary out of the slot for `promote()`; the HotSwap switches to it. */
  take(): Canary<T> | undefined {
    const canary = this.#canary;
    this.#canary = undefined;
    return canary;
  }

  /**
   * Takes `canary` out of the split, if it still serves, and retires it; `judged`: the calls and
   * failures `abortOn` judged by. Resolves after its close (undefined when it no longer served).
   */
  end(
    canary: Canary<T> | undefined,
    reason: unknown,
    auto: boolean,
    judged?: { calls: number; failures: number },
  ): Promise<AbortReport | undefined> {
    if (canary === undefined || this.#canary !== canary) return Promise.resolve(undefined);
    this.#canary = undefined;
    return this.#retire(canary, reason, auto, judged);
  }

  #retire(
    canary: Canary<T>,
    reason: unknown,
    auto: boolean,
    judged: { calls: number; failures: number } | undefined,
  ): Promise<AbortReport> {
    const { calls, failures } = judged ?? canary.figures(canary.plugin) ?? { calls: 0, failures: 0 };
    const drainStarted = performance.now();
    const retiring = this.#host.retire(canary.plugin);
    const version = canary.plugin.version;
    this.#host.emit('abort', {
      version,
      reason,
      auto,
      calls,
      failures,
      failureRate: calls === 0 ? 0 : failures / calls,
    });
    return retiring.then((close) => ({ version, reason, drainMs: performance.now() - drainStarted, close }));
  }
}
