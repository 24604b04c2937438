import type { PluginApi } from './api.js';
import { DEFAULTS, resolveLoadOptions, type LoadOptions, type ResolvedLoadOptions } from './options.js';
import {
  count,
  duration,
  flag,
  isPlainObject,
  knownKeys,
  optionalFunction,
  plainObject,
  wrongType,
} from './validate.js';
import type { Plugin } from './plugin.js';
import { sleep } from './time.js';
import { VersionErrors } from './version-errors.js';

/** Runs against a freshly loaded version before traffic moves to it. Throw, reject or return `false` to refuse it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- an untyped plugin: any exports, any method
export type HealthCheck<T = any> = (api: PluginApi<T>, plugin: Plugin<T>) => unknown;

/** Restart policy for a current version that crashes, in the manner of an OTP supervisor. */
export interface RestartPolicy {
  /**
   * Restarts allowed within `withinMs`; one more crash gives up (state `failed`). As many failed boots in a
   * row give up too, however long each took.
   * @default 3
   */
  maxRestarts?: number;
  /**
   * The window of the intensity limit, in ms.
   * @default 60000
   */
  withinMs?: number;
  /**
   * Wait before the first restart, in ms; doubles with each restart in the window.
   * @default 100
   */
  backoffMs?: number;
  /**
   * Upper bound of the backoff, in ms.
   * @default 5000
   */
  maxBackoffMs?: number;
}

/** Options of `hs.swap()`: the new version's load options, and a health check for this swap. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- an untyped plugin: any exports, any method
export interface SwapOptions<T = any> extends LoadOptions {
  /**
   * Overrides `HotSwapOptions.healthCheck` for this swap.
   * @default HotSwapOptions.healthCheck
   */
  healthCheck?: HealthCheck<T>;
  /**
   * Overrides `HotSwapOptions.healthCheckTimeoutMs` for this swap.
   * @default HotSwapOptions.healthCheckTimeoutMs
   */
  healthCheckTimeoutMs?: number;
}

/** Options of `createHotSwap()`: load options of the first version (and of restarts), plus the swap policy. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- an untyped plugin: any exports, any method
export interface HotSwapOptions<T = any> extends LoadOptions {
  /**
   * How long an old version may drain after a swap before it is terminated (its `close()` deadline).
   * @default 30000
   */
  drainTimeoutMs?: number;
  /**
   * Old versions allowed to drain at once. A swap that would exceed it force-closes the oldest one
   * (its remaining calls reject `ERR_PLUGIN_TERMINATED`). 1 is Erlang's two versions.
   * @default 1
   */
  retain?: number;
  /**
   * Checked against every new version before traffic moves to it.
   * @default undefined (no check)
   */
  healthCheck?: HealthCheck<T>;
  /**
   * How long a health check may take; past it the check counts as failed and the swap rejects `ERR_SWAP_FAILED`.
   * @default 10000
   */
  healthCheckTimeoutMs?: number;
  /**
   * Restart the current version when it crashes: `true` for the default policy, or a policy.
   * @default false (a crash leaves the swap `failed` until the next successful swap)
   */
  restart?: boolean | RestartPolicy;
  /**
   * Keep a standby: worker(s) whose runtime is already booted, waiting for the next version's code, so
   * a swap (or restart) pays only for importing the module and `onLoad`, not for booting a thread. As
   * many workers as `threads`, created with this hot swap's `resourceLimits`, `env` and `execArgv`; a
   * swap that changes any of those boots fresh workers instead and leaves the standby for later. A new
   * standby is booted after each swap that used one. Costs one idle worker's memory per thread (about
   * 8 MB RSS, see the README's Performance section) and never keeps the process alive. Without `env`,
   * the standby's `process.env` is a copy of the host's taken when the standby booted.
   * @default false
   */
  standby?: boolean;
}

export interface ResolvedRestart {
  readonly maxRestarts: number;
  readonly withinMs: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
}

export interface ResolvedHotSwapOptions {
  /** The first version's load options (and the standby's); swaps start from them. */
  readonly load: ResolvedLoadOptions;
  readonly drainTimeoutMs: number;
  readonly retain: number;
  readonly healthCheck: HealthCheck | undefined;
  readonly healthCheckTimeoutMs: number;
  readonly restart: ResolvedRestart | undefined;
  readonly standby: boolean;
}

/** A swap's options, validated once. */
export interface ResolvedSwapOptions {
  /** The hot swap's load options with this swap's on top (the version label is not inherited). */
  readonly load: ResolvedLoadOptions;
  readonly healthCheck: HealthCheck | undefined;
  readonly healthCheckTimeoutMs: number;
}

export const HOTSWAP_DEFAULTS = Object.freeze({
  drainTimeoutMs: DEFAULTS.closeTimeoutMs,
  retain: 1,
  healthCheckTimeoutMs: 10_000,
  restart: Object.freeze({ maxRestarts: 3, withinMs: 60_000, backoffMs: 100, maxBackoffMs: 5_000 }),
  standby: false,
});

const SWAP_KEYS: ReadonlySet<string> = new Set(['healthCheck', 'healthCheckTimeoutMs']);
const HOTSWAP_KEYS: ReadonlySet<string> = new Set([
  'healthCheck',
  'healthCheckTimeoutMs',
  'drainTimeoutMs',
  'retain',
  'restart',
  'standby',
]);
const RESTART_KEYS: ReadonlySet<string> = new Set(Object.keys(HOTSWAP_DEFAULTS.restart));

function restartPolicy(value: unknown): ResolvedRestart | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return HOTSWAP_DEFAULTS.restart;
  if (!isPlainObject(value)) wrongType('options.restart', 'a boolean or a policy object', value);
  knownKeys('options.restart', value, RESTART_KEYS);
  const d = HOTSWAP_DEFAULTS.restart;
  return {
    maxRestarts: count('options.restart.maxRestarts', value['maxRestarts'], d.maxRestarts, 0),
    withinMs: duration('options.restart.withinMs', value['withinMs'], d.withinMs),
    backoffMs: duration('options.restart.backoffMs', value['backoffMs'], d.backoffMs, false),
    maxBackoffMs: duration('options.restart.maxBackoffMs', value['maxBackoffMs'], d.maxBackoffMs, false),
  };
}

/** Validates `createHotSwap()` options (the load options included); throws naming the option. */
export function resolveHotSwapOptions(options: unknown): ResolvedHotSwapOptions {
  const load = resolveLoadOptions(options, HOTSWAP_KEYS);
  const o = (options ?? {}) as Record<string, unknown>;
  return {
    load,
    drainTimeoutMs: duration('options.drainTimeoutMs', o['drainTimeoutMs'], HOTSWAP_DEFAULTS.drainTimeoutMs),
    retain: count('options.retain', o['retain'], HOTSWAP_DEFAULTS.retain, 0),
    healthCheck: optionalFunction<HealthCheck>('options.healthCheck', o['healthCheck']),
    healthCheckTimeoutMs: duration(
      'options.healthCheckTimeoutMs',
      o['healthCheckTimeoutMs'],
      HOTSWAP_DEFAULTS.healthCheckTimeoutMs,
    ),
    restart: restartPolicy(o['restart']),
    standby: flag('options.standby', o['standby'], HOTSWAP_DEFAULTS.standby),
  };
}

/**
 * Validates `swap()` options once, on top of the hot swap's: the load options this swap gives replace
 * the hot swap's (timeouts, limits, env, data…), the others carry over, the version label does not.
 */
export function resolveSwapOptions(options: unknown, hotSwap: ResolvedHotSwapOptions): ResolvedSwapOptions {
  const o = plainObject('swapOptions', options) ?? {};
  const given: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(o)) if (!SWAP_KEYS.has(key)) given[key] = value;
  return {
    load: resolveLoadOptions({ ...hotSwap.load, version: undefined, ...given }, undefined, 'swapOptions'),
    healthCheck: optionalFunction<HealthCheck>('swapOptions.healthCheck', o['healthCheck']) ?? hotSwap.healthCheck,
    healthCheckTimeoutMs: duration(
      'swapOptions.healthCheckTimeoutMs',
      o['healthCheckTimeoutMs'],
      hotSwap.healthCheckTimeoutMs,
    ),
  };
}

/** Options of `hs.prepare()`. */
export interface PrepareOptions {
  /**
   * Run the module's top level on the standby too, not only compile it: the swap to those bytes then runs
   * only `onLoad`. The top level's side effects happen at `prepare()`, on a worker that serves only
   * those bytes (a swap to other bytes boots fresh workers). `false` compiles only.
   * @default true
   */
  run?: boolean;
}

const PREPARE_KEYS: ReadonlySet<string> = new Set(['run']);

/** Validates `prepare()` options; whether to run the module ahead. */
export function resolvePrepareOptions(options: unknown): boolean {
  const o = plainObject('prepareOptions', options) ?? {};
  knownKeys('prepareOptions', o, PREPARE_KEYS);
  return flag('prepareOptions.run', o['run'], true);
}

/** Runs a health check, bounded by `timeoutMs`: true when it passed, else why not (an Error, or undefined for `false`). */
export async function checkHealth<T>(
  healthCheck: HealthCheck<T>,
  next: Plugin<T>,
  timeoutMs: number,
): Promise<true | Error | undefined> {
  const limit = sleep(timeoutMs);
  try {
    const verdict = await Promise.race([
      Promise.resolve().then(() => healthCheck(next.api, next)),
      limit.promise.then(() => {
        throw new VersionErrors(next.name, next.version).healthCheckTimeout(timeoutMs);
      }),
    ]);
    return verdict === false ? undefined : true;
  } catch (cause) {
    return cause instanceof Error ? cause : new Error('health check threw', { cause });
  } finally {
    limit.cancel();
  }
}
