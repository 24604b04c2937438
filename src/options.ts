import { resolve as resolvePath } from 'node:path';
import type { ResourceLimits } from 'node:worker_threads';
import { PluginOptionRangeError } from './shared/errors.js';
import { defaultCodeCacheDir } from './code-store.js';
import { count, duration, knownKeys, limit, optionalString, plainObject, typeName, wrongType } from './validate.js';

/** Options of `loadPlugin()`. */
export interface LoadOptions {
  /**
   * Passed to the plugin's `onLoad(data)`. Must be cloneable.
   * @default undefined
   */
  data?: unknown;
  /**
   * The version label, carried by errors, reports and events.
   * @default a hash of what the version runs (12 hex digits of a SHA-256): the entry, every local module it
   * imports, and the installed version of each package it imports
   */
  version?: string;
  /**
   * A name for the plugin, carried by errors and events.
   * @default the module file's base name without extension; for a folder, its package.json `name` (without
   * scope), else the folder's name; for a bundle of `isoplug build`, the plugin's own name
   */
  name?: string;
  /**
   * Default timeout of every call, in ms. `Infinity` disables it (a call may then wait as long as the plugin takes).
   * @default 30000
   */
  callTimeoutMs?: number;
  /**
   * How long a load may take, counted from the `loadPlugin()` call (for `swap()`, from when the swap
   * starts loading; in a `PluginManager`, from the load's admission to the boot queue): the wait in the
   * process-wide boot queue (`configureBoots`), the spawn of the worker(s), the read of the module file,
   * the import and `onLoad`. Past it the load fails with `ERR_PLUGIN_LOAD`, cause `ERR_PLUGIN_TIMEOUT`
   * (`queued: true` when no worker had been started for it).
   * @default 10000
   */
  readyTimeoutMs?: number;
  /**
   * V8 heap limits of the worker (`worker_threads` `resourceLimits`). Bounds the JS heap only, not ArrayBuffers.
   * @default undefined (Node's defaults)
   */
  resourceLimits?: ResourceLimits;
  /**
   * The worker's `process.env`. Pass an object to keep host secrets out of plugin code.
   * @default a copy of the host's `process.env` at load time (on a hot swap's standby: when the standby booted)
   */
  env?: Record<string, string | undefined>;
  /**
   * Extra Node flags for the worker (`worker_threads` `execArgv`).
   * @default []
   */
  execArgv?: string[];
  /**
   * Size guard: a call whose arguments, or a result, would serialize to more than this many bytes
   * (estimated, stopping early) is refused before it is posted: `ERR_PLUGIN_PAYLOAD_TOO_LARGE`.
   * @default Infinity (no check: a plain call pays nothing)
   */
  maxPayloadBytes?: number;
  /**
   * ArrayBuffer guard: `resourceLimits` bounds only the JS heap. With this set, the worker checks the
   * ArrayBuffer memory of its isolate after each batch of replies and every 100 ms; past the limit the
   * version is ended and its calls reject `ERR_PLUGIN_OOM`.
   * @default undefined (not watched)
   */
  maxArrayBufferMb?: number;
  /**
   * Workers (isolates) running this version, for CPU-bound plugins: each imports the module and runs
   * `onLoad(data)` on its own, and each call goes to the one with the fewest calls in flight. They share
   * nothing but what the plugin shares itself (a SharedArrayBuffer in `data`, say). Closing drains all
   * of them, `onFree` runs in each, and one crashing crashes the version. An integer from 1 to 64;
   * `resourceLimits` and `maxArrayBufferMb` apply to each worker.
   * @default 1
   */
  threads?: number;
  /**
   * Where the version's `process.stdout`/`process.stderr` go (console included): `'inherit'`, the host's
   * own streams as written; `'label'`, the host's streams with each line prefixed `[name@version] `
   * (a partial line waits for its newline or the end of the version); `'pipe'`, `plugin.stdout` and
   * `plugin.stderr`, Readables the caller reads (the plugin is held back while they are not read). In
   * every mode what the version wrote reaches its destination before `close()` resolves.
   * @default 'inherit'
   */
  output?: 'inherit' | 'label' | 'pipe';
  /**
   * At close, the version's child processes get SIGTERM, then SIGKILL after this many ms (capped by
   * what is left of the close deadline). `destroy()`, a crash and a passed deadline SIGKILL at once.
   * @default 1000
   */
  childKillGraceMs?: number;
  /**
   * V8's compiled code of the module, kept on disk and reused by the next load of the same bytes (a
   * restart, a swap back, every thread of `threads: N`, the next process): the compile step of a big
   * module becomes a read. Used for CommonJS modules (`.cjs`, or `.js` outside a `"type": "module"`
   * package); an ES module is imported as before. An entry is found by the SHA-256 of the module's
   * bytes plus the Node version, architecture and V8 flags, and checked (CRC-32) before V8 sees it; a
   * damaged or rejected entry makes the load slower, never fail it. `false` opts the plugin out: nothing
   * is read or written. `dir` must be private to this user (it is made with mode 0700; a folder another
   * user owns turns the cache off): whoever can write an entry can run code in this process.
   * @default true: `dir` `$XDG_CACHE_HOME/isoplug/code`, else `~/.cache/isoplug/code`; `maxBytes` 256 MiB
   * (least recently used entries go first)
   */
  codeCache?: boolean | CodeCacheOptions;
}

/** The code cache's place and bound (`LoadOptions.codeCache`). */
export interface CodeCacheOptions {
  /**
   * The cache folder: created when missing, and must belong to this user.
   * @default `$XDG_CACHE_HOME/isoplug/code`, else `~/.cache/isoplug/code`
   */
  dir?: string;
  /**
   * The most bytes the folder's entries may take; past it the least recently used go (down to 80%).
   * @default 268435456 (256 MiB)
   */
  maxBytes?: number;
}

/** The code cache as a load uses it; `false` when off (and it stays off when resolved again, as a swap does). */
export interface ResolvedCodeCache {
  readonly dir: string;
  readonly maxBytes: number;
}

/** The most `threads` a version may have. */
export const MAX_THREADS = 64;

/** Per-call options, given through `plugin.with(options)`. */
export interface CallOptions {
  /**
   * Timeout of this call, in ms; overrides `LoadOptions.callTimeoutMs`. `Infinity` disables it.
   * @default LoadOptions.callTimeoutMs
   */
  timeoutMs?: number;
  /**
   * Aborts the call: it rejects `ERR_PLUGIN_ABORTED` with the signal's reason as `cause`.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Objects to transfer rather than copy (ArrayBuffers, MessagePorts) found in the arguments.
   * @default []
   */
  transfer?: readonly Transferable[];
}

/** Options of `plugin.close()`. */
export interface CloseOptions {
  /**
   * The close deadline, in ms: how long the drain and `onFree` may take together. Past it the worker is
   * terminated and the calls still running reject `ERR_PLUGIN_TERMINATED`.
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * How long to wait for the worker to exit once terminated. A worker blocked in a system call may not
   * exit for a while; `close()` resolves anyway and its report says `terminated: false`.
   * @default 2000
   */
  terminateTimeoutMs?: number;
}

export type Transferable = ArrayBuffer | import('node:worker_threads').MessagePort;

/** Every default, in one place. */
export const DEFAULTS = Object.freeze({
  callTimeoutMs: 30_000,
  readyTimeoutMs: 10_000,
  closeTimeoutMs: 30_000,
  terminateTimeoutMs: 2_000,
  threads: 1,
  childKillGraceMs: 1_000,
  codeCacheMaxBytes: 256 * 2 ** 20,
});

const OUTPUT_MODES: readonly string[] = ['inherit', 'label', 'pipe'];

/** `LoadOptions.output`: one of OUTPUT_MODES. */
function outputMode(option: string, value: unknown): 'inherit' | 'label' | 'pipe' {
  if (value === undefined) return 'inherit';
  if (typeof value !== 'string') wrongType(option, "'inherit', 'label' or 'pipe'", value);
  if (!OUTPUT_MODES.includes(value)) {
    throw new PluginOptionRangeError(option, `expected 'inherit', 'label' or 'pipe', got ${typeName(value)}`);
  }
  return value as 'inherit' | 'label' | 'pipe';
}

const RESOURCE_LIMIT_KEYS: ReadonlySet<string> = new Set([
  'maxOldGenerationSizeMb',
  'maxYoungGenerationSizeMb',
  'codeRangeSizeMb',
  'stackSizeMb',
]);

export interface ResolvedLoadOptions {
  readonly data: unknown;
  readonly version: string | undefined;
  readonly name: string | undefined;
  readonly callTimeoutMs: number;
  readonly readyTimeoutMs: number;
  readonly resourceLimits: ResourceLimits | undefined;
  readonly env: Record<string, string | undefined> | undefined;
  readonly execArgv: string[];
  readonly maxPayloadBytes: number | undefined;
  readonly maxArrayBufferMb: number | undefined;
  readonly threads: number;
  readonly output: 'inherit' | 'label' | 'pipe';
  readonly childKillGraceMs: number;
  readonly codeCache: ResolvedCodeCache | false;
}

const LOAD_KEYS: ReadonlySet<string> = new Set([
  'data',
  'version',
  'name',
  'callTimeoutMs',
  'readyTimeoutMs',
  'resourceLimits',
  'env',
  'execArgv',
  'maxPayloadBytes',
  'maxArrayBufferMb',
  'threads',
  'output',
  'childKillGraceMs',
  'codeCache',
]);

const CODE_CACHE_KEYS: ReadonlySet<string> = new Set(['dir', 'maxBytes']);

/** Validates `codeCache` (`true`, `false` or `{ dir, maxBytes }`). */
function resolveCodeCache(option: string, value: unknown): ResolvedCodeCache | false {
  if (value === false) return false;
  if (value === undefined || value === true)
    return { dir: defaultCodeCacheDir(), maxBytes: DEFAULTS.codeCacheMaxBytes };
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    wrongType(option, 'a boolean or { dir, maxBytes }', value);
  const o = plainObject(option, value) ?? {};
  knownKeys(option, o, CODE_CACHE_KEYS);
  const dir = optionalString(`${option}.dir`, o['dir']);
  if (dir === '') throw new PluginOptionRangeError(`${option}.dir`, 'expected a folder path, got an empty string');
  return {
    dir: dir === undefined ? defaultCodeCacheDir() : resolvePath(dir),
    maxBytes: count(`${option}.maxBytes`, o['maxBytes'], DEFAULTS.codeCacheMaxBytes, 1),
  };
}

/** Validates `loadPlugin()` options; throws a TypeError/RangeError naming the option. */
export function resolveLoadOptions(
  options: unknown,
  extraKeys?: ReadonlySet<string>,
  prefix = 'options',
): ResolvedLoadOptions {
  const o = plainObject(prefix, options) ?? {};
  knownKeys(prefix, o, extraKeys ? new Set([...LOAD_KEYS, ...extraKeys]) : LOAD_KEYS);
  const limits = plainObject(`${prefix}.resourceLimits`, o['resourceLimits']);
  if (limits) {
    knownKeys(`${prefix}.resourceLimits`, limits, RESOURCE_LIMIT_KEYS, 'resource limit');
    for (const key of Object.keys(limits)) {
      const value = limits[key];
      if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
        throw new PluginOptionRangeError(
          `${prefix}.resourceLimits.${key}`,
          `expected a positive number of MB, got ${typeName(value)}`,
        );
      }
    }
  }
  const env = plainObject(`${prefix}.env`, o['env']);
  if (env) {
    for (const [key, value] of Object.entries(env)) {
      if (value !== undefined && typeof value !== 'string') wrongType(`${prefix}.env.${key}`, 'a string', value);
    }
  }
  const execArgv = o['execArgv'];
  if (execArgv !== undefined && (!Array.isArray(execArgv) || !execArgv.every((a) => typeof a === 'string'))) {
    wrongType(`${prefix}.execArgv`, 'an array of strings', execArgv);
  }
  return {
    data: o['data'],
    version: optionalString(`${prefix}.version`, o['version']),
    name: optionalString(`${prefix}.name`, o['name']),
    callTimeoutMs: duration(`${prefix}.callTimeoutMs`, o['callTimeoutMs'], DEFAULTS.callTimeoutMs),
    readyTimeoutMs: duration(`${prefix}.readyTimeoutMs`, o['readyTimeoutMs'], DEFAULTS.readyTimeoutMs, false),
    resourceLimits: limits,
    env: env as Record<string, string | undefined> | undefined,
    execArgv: execArgv ?? [],
    maxPayloadBytes: limit(`${prefix}.maxPayloadBytes`, o['maxPayloadBytes']),
    maxArrayBufferMb: limit(`${prefix}.maxArrayBufferMb`, o['maxArrayBufferMb']),
    threads: count(`${prefix}.threads`, o['threads'], DEFAULTS.threads, 1, MAX_THREADS),
    output: outputMode(`${prefix}.output`, o['output']),
    childKillGraceMs: duration(`${prefix}.childKillGraceMs`, o['childKillGraceMs'], DEFAULTS.childKillGraceMs, false),
    codeCache: resolveCodeCache(`${prefix}.codeCache`, o['codeCache']),
  };
}

const CALL_KEYS: ReadonlySet<string> = new Set(['timeoutMs', 'signal', 'transfer']);
const CLOSE_KEYS: ReadonlySet<string> = new Set(['timeoutMs', 'terminateTimeoutMs']);

/** Validates per-call options. */
export function resolveCallOptions(options: unknown): CallOptions {
  const o = plainObject('callOptions', options) ?? {};
  knownKeys('callOptions', o, CALL_KEYS);
  const signal = o['signal'];
  if (signal !== undefined && !(signal instanceof AbortSignal))
    wrongType('callOptions.signal', 'an AbortSignal', signal);
  const transfer = o['transfer'];
  if (transfer !== undefined && !Array.isArray(transfer)) wrongType('callOptions.transfer', 'an array', transfer);
  const timeoutMs = o['timeoutMs'] === undefined ? undefined : duration('callOptions.timeoutMs', o['timeoutMs'], 0);
  return {
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(signal === undefined ? {} : { signal }),
    ...(transfer === undefined ? {} : { transfer: transfer as Transferable[] }),
  };
}

/** Validates `close()` options. */
export function resolveCloseOptions(options: unknown): Required<CloseOptions> {
  const o = plainObject('closeOptions', options) ?? {};
  knownKeys('closeOptions', o, CLOSE_KEYS);
  return {
    timeoutMs: duration('closeOptions.timeoutMs', o['timeoutMs'], DEFAULTS.closeTimeoutMs),
    terminateTimeoutMs: duration(
      'closeOptions.terminateTimeoutMs',
      o['terminateTimeoutMs'],
      DEFAULTS.terminateTimeoutMs,
      false,
    ),
  };
}
