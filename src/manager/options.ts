import { PluginOptionRangeError, PluginOptionTypeError } from '../shared/errors.js';
import { resolveLoadOptions, type LoadOptions, type ResolvedLoadOptions } from '../options.js';
import { duration, isPlainObject, knownKeys, optionalFunction, plainObject, typeName, wrongType } from '../validate.js';
import type { ManagerFs } from './scan.js';

/** Options of `new PluginManager()`. */
export interface PluginManagerOptions {
  /** The plugin directory: each module file or folder in it is one plugin. Required. */
  dir: string;
  /**
   * What scanning and hashing read through (`node:fs/promises`-compatible: `readdir`, `stat`, `readFile`).
   * Workers always load from the real file system.
   * @default node:fs/promises
   */
  fs?: ManagerFs;
  /**
   * Host functions offered to plugins as `ctx.vault.services`: only the object's own function members,
   * on a null-prototype facade. Called with `this` undefined and copies of the arguments.
   * @default {}
   */
  services?: Record<string, (...args: never[]) => unknown>;
  /**
   * Builds `ctx.vault.extension`, once per reload, for the versions that reload loads. Must return a cloneable value.
   * @default undefined (`ctx.vault.extension` is undefined)
   */
  extension?: () => unknown;
  /**
   * Passed to every version's `onLoad(data)`. Must be cloneable.
   * @default undefined
   */
  data?: unknown;
  /**
   * `'worker'`: each version in its own worker (the product). `'inline'`: in the host thread, bundled
   * with esbuild and evaluated there, same API and lifecycle, so breakpoints and stack traces point at
   * the sources; a closed version's memory comes back once nothing refers to it. DEBUG ONLY: a plugin's
   * crash or infinite loop is the host's, and what a version leaves reachable from the host (a server,
   * a global, a `process` listener) keeps it in memory. Without esbuild installed, inline versions are
   * imported instead and never unloaded.
   * @default 'worker'
   */
  isolation?: 'worker' | 'inline';
  /**
   * Inline mode only. `external`: bare packages (and their subpaths) imported once by the host and
   * shared by every version, instead of bundled into each version: native addons, and deliberate
   * singletons. Shared packages are never unloaded.
   * @default { external: [] }
   */
  inline?: { external?: readonly string[] };
  /**
   * `loadPlugin()` options for every worker version (`callTimeoutMs`, `readyTimeoutMs`, `resourceLimits`,
   * `env`, `execArgv`, `maxPayloadBytes`, `maxArrayBufferMb`); `data`, `name` and `version` are the manager's.
   * `threads` must be 1: a managed plugin's vault, peers and hooks are wired to one worker. A reload loads
   * its versions at once, through the process-wide boot queue: each one's `readyTimeoutMs` counts from its
   * admission to boot, not from `reload()` (`reloadTimeoutMs` bounds the whole reload).
   * @default {}
   */
  load?: Omit<LoadOptions, 'data' | 'name' | 'version'>;
  /**
   * How long an old version may drain (calls in flight, then `onFree`) after a reload switched away from it, and at `close()`.
   * @default 30000
   */
  drainTimeoutMs?: number;
  /**
   * `watch()`: how long the directory must be quiet before a reload starts.
   * @default 100
   */
  watchDebounceMs?: number;
  /**
   * How long one `reload()` may take, from the start of its scan to the switch (after a reload queued
   * before it). Past it, the loads still waiting or booting fail, the reload rejects `ERR_MANAGER_RELOAD`
   * (the failures' causes are `ERR_PLUGIN_TIMEOUT`), and the current set keeps serving. Hook calls
   * (`reloadable`, `onInit`) are bounded by `callTimeoutMs`; the deadline is checked before the switch.
   * @default 60000
   */
  reloadTimeoutMs?: number;
}

/** Every default of the manager, in one place. */
export const MANAGER_DEFAULTS = Object.freeze({
  isolation: 'worker' as const,
  drainTimeoutMs: 30_000,
  watchDebounceMs: 100,
  reloadTimeoutMs: 60_000,
});

export interface ResolvedManagerOptions {
  readonly dir: string;
  readonly fs: ManagerFs | undefined;
  readonly services: Readonly<Record<string, unknown>>;
  readonly extension: (() => unknown) | undefined;
  readonly data: unknown;
  readonly isolation: 'worker' | 'inline';
  readonly inline: { readonly external: readonly string[] };
  readonly load: ResolvedLoadOptions;
  readonly drainTimeoutMs: number;
  readonly watchDebounceMs: number;
  readonly reloadTimeoutMs: number;
}

const INLINE_KEYS: ReadonlySet<string> = new Set(['external']);

const FS_METHODS = ['readdir', 'stat', 'readFile'];

const KEYS: ReadonlySet<string> = new Set([
  'dir',
  'fs',
  'services',
  'extension',
  'data',
  'isolation',
  'inline',
  'load',
  'drainTimeoutMs',
  'watchDebounceMs',
  'reloadTimeoutMs',
]);

/** Validates the manager's options; throws a TypeError/RangeError naming the option. */
export function resolveManagerOptions(options: unknown): ResolvedManagerOptions {
  if (!isPlainObject(options)) wrongType('options', 'an object with at least `dir`', options);
  knownKeys('options', options, KEYS);
  const { dir, fs, isolation } = options;
  if (typeof dir !== 'string' || dir.length === 0) wrongType('options.dir', 'a non-empty path', dir);
  if (fs !== undefined && (!isPlainObject(fs) || !FS_METHODS.every((m) => typeof fs[m] === 'function'))) {
    wrongType('options.fs', 'an object with readdir, stat and readFile (node:fs/promises-compatible)', fs);
  }
  const services = plainObject('options.services', options['services']);
  for (const [name, fn] of Object.entries(services ?? {})) {
    if (typeof fn !== 'function') wrongType(`options.services.${name}`, 'a function', fn);
  }
  const extension = optionalFunction<() => unknown>('options.extension', options['extension']);
  if (isolation !== undefined && isolation !== 'worker' && isolation !== 'inline') {
    throw new PluginOptionRangeError('options.isolation', `expected 'worker' or 'inline', got ${typeName(isolation)}`);
  }
  const inline = plainObject('options.inline', options['inline']);
  if (inline !== undefined) knownKeys('options.inline', inline, INLINE_KEYS);
  const external = inline?.['external'] ?? [];
  if (!Array.isArray(external) || !external.every((name) => typeof name === 'string' && name.length > 0))
    wrongType('options.inline.external', 'an array of package names', external);
  const load = plainObject('options.load', options['load']);
  for (const key of ['data', 'name', 'version']) {
    if (load !== undefined && key in load) throw new PluginOptionTypeError(`options.load.${key}`, 'set by the manager');
  }
  const resolvedLoad = resolveLoadOptions(load, undefined, 'options.load');
  // A managed plugin's vault, peers and hooks are wired to one worker.
  if (resolvedLoad.threads !== 1)
    throw new PluginOptionRangeError(
      'options.load.threads',
      `the manager runs each plugin on one thread, got ${resolvedLoad.threads}`,
    );
  return {
    dir,
    fs: fs as ManagerFs | undefined,
    services: services ?? {},
    extension,
    data: options['data'],
    isolation: isolation ?? MANAGER_DEFAULTS.isolation,
    inline: { external: Object.freeze([...(external as string[])]) },
    load: resolvedLoad,
    drainTimeoutMs: duration('options.drainTimeoutMs', options['drainTimeoutMs'], MANAGER_DEFAULTS.drainTimeoutMs),
    watchDebounceMs: duration(
      'options.watchDebounceMs',
      options['watchDebounceMs'],
      MANAGER_DEFAULTS.watchDebounceMs,
      false,
    ),
    reloadTimeoutMs: duration('options.reloadTimeoutMs', options['reloadTimeoutMs'], MANAGER_DEFAULTS.reloadTimeoutMs),
  };
}
