/**
 * A canary beside a hot swap's current version: which calls it takes, and what both versions did
 * while it ran. The HotSwap owns the switch, the queue and the drain (hotswap.ts); this decides the
 * route of one call and keeps the figures an operator (or `abortOn`) judges the canary by.
 *
 * The split (specified byte for byte, so a gateway in another language routes the same way):
 * - A call with a sticky key goes to the canary iff `bucket < percent × 100`, where `bucket` is the
 *   first 4 bytes, big-endian, of SHA-256(UTF-8 of `salt + ':' + key`), modulo 10,000. For one salt a
 *   key's bucket never changes, so raising the percent only moves keys onto the canary.
 * - Calls without a key go in runs: up to 16 calls made in the same tick go to the same version, so they
 *   travel in one message, as a worker's replies come back 16 to a message. Splitting a burst call by
 *   call would cut every batch in two and cost each version a wake-up per half (measured: 0.2–0.4× the
 *   pipelined throughput of one version, where runs keep it). Each run's version is drawn by dithered
 *   error diffusion: the canary's credit grows by `percent` per run, a run goes to it with probability
 *   credit/100 and pays 100, so over any stretch the share stays within two runs of `percent`, without
 *   a fixed rotation a caller's own rhythm could line up with.
 */
import { createHash } from 'node:crypto';
import type { ResolvedLoadOptions } from './options.js';
import type { Plugin } from './plugin.js';
import type { PluginSpecifier } from './resolve.js';
import type { ResolvedAbortOn } from './rollout-options.js';

/** Keyless calls per run at most: the worker's replies per message. */
const RUN = 16;
/** Schedules the end of a run: after the calls of this tick (a promise reaction, as the thread's flush). */
const settled = Promise.resolve();

/** Buckets of the sticky-key hash: a percent maps to `percent × 100` of them (basis points). */
export const ROLLOUT_BUCKETS = 10_000;

/**
 * The bucket of a sticky key under `salt`, from 0 to 9,999: the first 4 bytes (big-endian) of
 * SHA-256 of the UTF-8 string `salt + ':' + key`, modulo 10,000. A key is on the canary iff its bucket
 * is below `percent × 100`.
 */
export function rolloutBucket(salt: string, key: string): number {
  return createHash('sha256').update(`${salt}:${key}`, 'utf8').digest().readUInt32BE(0) % ROLLOUT_BUCKETS;
}

/** A view's sticky key: its bucket is hashed once per salt, not once per call. */
export class StickyKey {
  readonly key: string;
  #salt: string | undefined;
  #bucket = 0;

  constructor(key: string) {
    this.key = key;
  }

  bucket(salt: string): number {
    if (this.#salt !== salt) {
      this.#bucket = rolloutBucket(salt, this.key);
      this.#salt = salt;
    }
    return this.#bucket;
  }
}

/** Sub-buckets per power of two of the latency histogram: each bucket is 2^(1/8) wide, about 9 %. */
const PER_OCTAVE = 8;
/** From 1 µs to 2^27 µs (134 s); slower calls count in the last bucket. */
const SLOTS = 27 * PER_OCTAVE + 1;

/** Latency quantiles in fixed memory: a log-scale histogram (each figure within 9 % of the truth). */
export class Latency {
  readonly #counts = new Float64Array(SLOTS);
  #total = 0;

  record(ms: number): void {
    const us = ms * 1000;
    const slot = us <= 1 ? 0 : Math.min(SLOTS - 1, Math.ceil(Math.log2(us) * PER_OCTAVE));
    this.#counts[slot]!++;
    this.#total++;
  }

  /** The `q` quantile (0 to 1) in ms, as the upper bound of its bucket; undefined before any call. */
  quantile(q: number): number | undefined {
    if (this.#total === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.#total));
    let seen = 0;
    let slot = 0;
    for (; slot < SLOTS - 1; slot++) {
      seen += this.#counts[slot]!;
      if (seen >= rank) break;
    }
    return 2 ** (slot / PER_OCTAVE) / 1000;
  }
}

/** What one version did while a canary ran. */
export interface RolloutFigures {
  /** Calls settled since the rollout began. */
  readonly calls: number;
  /** Of those, the ones that rejected. */
  readonly failures: number;
  /** Median latency in ms (within 9 %), undefined before any call settled. */
  readonly p50Ms: number | undefined;
  /** 99th percentile latency in ms (within 9 %), undefined before any call settled. */
  readonly p99Ms: number | undefined;
}

class Figures {
  calls = 0;
  failures = 0;
  readonly latency = new Latency();

  snapshot(): RolloutFigures {
    return {
      calls: this.calls,
      failures: this.failures,
      p50Ms: this.latency.quantile(0.5),
      p99Ms: this.latency.quantile(0.99),
    };
  }
}

/** The calls `abortOn` judges: all since the rollout, or those of the last `windowMs` in ten slots. */
class FailureWindow {
  readonly #width: number | undefined;
  readonly #calls: number[];
  readonly #failures: number[];
  /** The slot number (time / width) of the newest slot. */
  #slot = 0;

  constructor(windowMs: number | undefined) {
    this.#width = windowMs === undefined ? undefined : windowMs / 10;
    const slots = windowMs === undefined ? 1 : 10;
    this.#calls = new Array<number>(slots).fill(0);
    this.#failures = new Array<number>(slots).fill(0);
  }

  /** Counts one settled call at `now`; returns the calls and failures in the window. */
  add(failed: boolean, now: number): { calls: number; failures: number } {
    let index = 0;
    if (this.#width !== undefined) {
      const slot = Math.floor(now / this.#width);
      // Slots that fell out of the window since the last call start over.
      for (let s = Math.max(this.#slot + 1, slot - 9); s <= slot; s++) {
        this.#calls[s % 10] = 0;
        this.#failures[s % 10] = 0;
      }
      this.#slot = Math.max(this.#slot, slot);
      index = slot % 10;
    }
    this.#calls[index]!++;
    if (failed) this.#failures[index]!++;
    let calls = 0;
    let failures = 0;
    for (let i = 0; i < this.#calls.length; i++) {
      calls += this.#calls[i]!;
      failures += this.#failures[i]!;
    }
    return { calls, failures };
  }
}

/** A loaded and checked candidate, serving a share of the calls. */
export class Canary<T> {
  readonly plugin: Plugin<T>;
  readonly specifier: PluginSpecifier;
  readonly load: ResolvedLoadOptions;
  readonly salt: string;
  readonly loadMs: number;
  readonly standby: boolean;
  #percent: number;
  /** `percent × 100`: the buckets the canary takes. */
  #threshold: number;
  readonly #abortOn: ResolvedAbortOn | undefined;
  readonly #window: FailureWindow | undefined;
  readonly #figures = new Map<Plugin<T>, Figures>();
  /** Called once when the canary's failure rate passes `abortOn`. */
  readonly #failing: (calls: number, failures: number, cause: unknown) => void;
  #judged = false;
  /** Keyless calls left in the current run, and where it goes. */
  #runLeft = 0;
  #runToCanary = false;
  /** The error diffusion's credit, in percent points (bounded: -100 to 100). */
  #credit = 0;
  readonly #endRun = (): void => {
    this.#runLeft = 0;
  };

  constructor(
    plugin: Plugin<T>,
    init: {
      specifier: PluginSpecifier;
      load: ResolvedLoadOptions;
      percent: number;
      salt: string;
      abortOn: ResolvedAbortOn | undefined;
      loadMs: number;
      standby: boolean;
    },
    failing: (calls: number, failures: number, cause: unknown) => void,
  ) {
    this.plugin = plugin;
    this.specifier = init.specifier;
    this.load = init.load;
    this.salt = init.salt;
    this.loadMs = init.loadMs;
    this.standby = init.standby;
    this.#percent = init.percent;
    this.#threshold = init.percent * 100;
    this.#abortOn = init.abortOn;
    this.#window = init.abortOn && new FailureWindow(init.abortOn.windowMs);
    this.#failing = failing;
  }

  get percent(): number {
    return this.#percent;
  }

  set percent(percent: number) {
    this.#percent = percent;
    this.#threshold = percent * 100;
    // The next keyless call starts a run at the new share.
    this.#runLeft = 0;
    this.#credit = 0;
  }

  /** True when the call goes to the canary: by the key's bucket, or by a draw for a call without one. */
  takes(sticky: StickyKey | undefined): boolean {
    if (sticky !== undefined) return sticky.bucket(this.salt) < this.#threshold;
    if (this.#runLeft === 0) {
      this.#credit += this.#percent;
      this.#runToCanary = this.#credit > Math.random() * 100;
      if (this.#runToCanary) this.#credit -= 100;
      this.#runLeft = RUN;
      void settled.then(this.#endRun);
    }
    this.#runLeft--;
    return this.#runToCanary;
  }

  /** Counts `call`, made on `plugin` (the canary or the current version), when it settles; returns it. */
  observe(plugin: Plugin<T>, call: Promise<unknown>): Promise<unknown> {
    const started = performance.now();
    let figures = this.#figures.get(plugin);
    if (figures === undefined) this.#figures.set(plugin, (figures = new Figures()));
    const done = figures;
    call.then(
      () => {
        done.calls++;
        done.latency.record(performance.now() - started);
        if (plugin === this.plugin) this.#judge(false, undefined);
      },
      (error: unknown) => {
        done.calls++;
        done.failures++;
        done.latency.record(performance.now() - started);
        // A call its own caller aborted says nothing about the version.
        const aborted = (error as { code?: unknown } | null)?.code === 'ERR_PLUGIN_ABORTED';
        if (plugin === this.plugin) this.#judge(!aborted, error);
      },
    );
    return call;
  }

  /** What `plugin` did since the rollout began (undefined when it served no call meanwhile). */
  figures(plugin: Plugin<T>): RolloutFigures | undefined {
    return this.#figures.get(plugin)?.snapshot();
  }

  #judge(failed: boolean, cause: unknown): void {
    const abortOn = this.#abortOn;
    if (abortOn === undefined || this.#judged) return;
    const { calls, failures } = this.#window!.add(failed, performance.now());
    if (calls >= abortOn.minCalls && failures / calls > abortOn.failureRate) {
      this.#judged = true;
      this.#failing(calls, failures, cause);
    }
  }
}
