/**
 * The options of a gradual rollout (`hs.rollout()`, `hs.setPercent()`, `hs.with({ key })`) and their
 * validation. The routing itself is rollout.ts.
 */
import {
  resolveSwapOptions,
  type ResolvedHotSwapOptions,
  type ResolvedSwapOptions,
  type SwapOptions,
} from './hotswap-options.js';
import type { CallOptions } from './options.js';
import { PluginOptionRangeError } from './shared/errors.js';
import { count, duration, isPlainObject, knownKeys, plainObject, wrongType } from './validate.js';

/** When a canary is aborted on its own. */
export interface AbortOn {
  /**
   * The failure rate (0 to 1) above which the canary is aborted: failed calls over settled calls. A
   * failure is any call the canary rejected (a plugin error, a timeout, a crash…), except a call its
   * caller aborted through its own signal.
   */
  failureRate: number;
  /**
   * Calls the canary must have settled (within `windowMs`, when given) before its rate is judged.
   * @default 100
   */
  minCalls?: number;
  /**
   * Judge only the calls settled in the last `windowMs` (in ten slots of `windowMs / 10`). Without it,
   * every call since the rollout counts.
   * @default undefined (every call since the rollout)
   */
  windowMs?: number;
}

/** Options of `hs.rollout()`: the candidate's load options and health check, as `swap()`, plus the split. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- an untyped plugin: any exports, any method
export interface RolloutOptions<T = any> extends SwapOptions<T> {
  /**
   * The share of calls that go to the candidate, from 0 to 100 (fractions allowed, to a hundredth). 0
   * loads and checks the candidate without routing anything to it (a staged swap: `promote()` then
   * switches without a load).
   */
  percent: number;
  /**
   * Abort the candidate automatically when it fails too often.
   * @default undefined (only a crash aborts it automatically)
   */
  abortOn?: AbortOn;
  /**
   * The salt of the sticky-key hash. Every process given the same salt splits keys the same way, so a
   * fleet agrees on which keys the candidate serves; a new salt draws a new cohort.
   * @default `${name}:${version}` of the candidate (its plugin name and version label)
   */
  salt?: string;
}

/** Per-call options of a hot swap: `CallOptions`, plus the sticky key of a rollout. */
export interface HotSwapCallOptions extends CallOptions {
  /**
   * Routes the view's calls by this key during a rollout: a key is on the candidate iff its bucket
   * (`rolloutBucket(salt, key)`) is below `percent × 100`. Stable across processes, monotonic as the
   * percent rises.
   * @default undefined (keyless: runs of the calls of one tick, each run drawn by the percent)
   */
  key?: string;
}

export interface ResolvedAbortOn {
  readonly failureRate: number;
  readonly minCalls: number;
  readonly windowMs: number | undefined;
}

export interface ResolvedRolloutOptions {
  readonly swap: ResolvedSwapOptions;
  readonly percent: number;
  readonly abortOn: ResolvedAbortOn | undefined;
  readonly salt: string | undefined;
}

export const ROLLOUT_DEFAULTS = Object.freeze({ minCalls: 100 });

const ROLLOUT_KEYS: ReadonlySet<string> = new Set(['percent', 'abortOn', 'salt']);
const ABORT_ON_KEYS: ReadonlySet<string> = new Set(['failureRate', 'minCalls', 'windowMs']);

/** A percent from 0 to 100. */
export function checkPercent(option: string, value: unknown): number {
  if (typeof value !== 'number' || Number.isNaN(value)) wrongType(option, 'a number from 0 to 100', value);
  if (value < 0 || value > 100)
    throw new PluginOptionRangeError(option, `expected a number from 0 to 100, got ${value}`);
  return value;
}

function abortOn(value: unknown): ResolvedAbortOn | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) wrongType('rolloutOptions.abortOn', 'an object', value);
  knownKeys('rolloutOptions.abortOn', value, ABORT_ON_KEYS);
  const rate = value['failureRate'];
  if (typeof rate !== 'number' || Number.isNaN(rate))
    wrongType('rolloutOptions.abortOn.failureRate', 'a number from 0 to 1', rate);
  if (rate < 0 || rate > 1) {
    throw new PluginOptionRangeError(
      'rolloutOptions.abortOn.failureRate',
      `expected a number from 0 to 1, got ${rate}`,
    );
  }
  const windowMs = value['windowMs'];
  return {
    failureRate: rate,
    minCalls: count('rolloutOptions.abortOn.minCalls', value['minCalls'], ROLLOUT_DEFAULTS.minCalls, 1),
    windowMs: windowMs === undefined ? undefined : positiveDuration('rolloutOptions.abortOn.windowMs', windowMs),
  };
}

function positiveDuration(option: string, value: unknown): number {
  const ms = duration(option, value, 0, false);
  if (ms === 0) throw new PluginOptionRangeError(option, 'expected a positive finite number, got 0');
  return ms;
}

/** Validates `rollout()` options once, on top of the hot swap's (the load options as `swap()`). */
export function resolveRolloutOptions(options: unknown, hotSwap: ResolvedHotSwapOptions): ResolvedRolloutOptions {
  if (options === undefined) wrongType('rolloutOptions', 'an object with percent', options);
  const o = plainObject('rolloutOptions', options)!;
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(o)) if (!ROLLOUT_KEYS.has(key)) rest[key] = value;
  const salt = o['salt'];
  if (salt !== undefined && typeof salt !== 'string') wrongType('rolloutOptions.salt', 'a string', salt);
  return {
    percent: checkPercent('rolloutOptions.percent', o['percent']),
    abortOn: abortOn(o['abortOn']),
    salt,
    swap: resolveSwapOptions(rest, hotSwap),
  };
}

/** Splits `hs.with()` options into the sticky key and the call options. */
export function splitKey(options: unknown): { key: string | undefined; call: unknown } {
  if (!isPlainObject(options) || !('key' in options)) return { key: undefined, call: options };
  const { key, ...call } = options;
  if (key !== undefined && typeof key !== 'string') wrongType('callOptions.key', 'a string', key);
  return { key, call };
}
