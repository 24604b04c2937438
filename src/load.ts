import { Admission, type LoadBounds } from './admission.js';
import { bootThreads } from './boot.js';
import { loadTrace, type LoadContext } from './diagnostics.js';
import { DEFAULTS, resolveLoadOptions, type LoadOptions, type ResolvedLoadOptions } from './options.js';
import { Plugin, pluginToken } from './plugin.js';
import { codeForLoad, nodeCompileCacheDir, ranAheadCode } from './code-cache.js';
import { readModule, specifierPath, type ModuleFile, type PluginSpecifier } from './resolve.js';
import type { CodeCacheStatus } from './shared/protocol.js';
import { PluginCompileError, PluginLoadError, PluginNoEsbuildError } from './shared/errors.js';
import { spawnThreads, type Thread } from './thread.js';
import { VersionErrors } from './version-errors.js';
import { VersionOutput } from './output.js';
import { trackLive } from './live.js';

/**
 * Loads one plugin version in a fresh worker and resolves once its module is imported and its
 * `onLoad(data)` resolved. Each call is independent: loading the same path twice gives two versions,
 * and loading a path after its file changed runs the new code.
 *
 * `specifier` is a module file (`.js`, `.mjs`, `.cjs`, `.ts`, `.mts`, `.cts`) or a folder (its package.json
 * `exports`/`main`, else an index file). TypeScript runs with Node's type stripping where the line has it,
 * else compiled with esbuild (an optional peer dependency); types are not checked.
 *
 * Rejects (never throws synchronously) with a `PluginOptionTypeError`/`PluginOptionRangeError` for
 * bad options, `ERR_PLUGIN_NO_ESBUILD` (TypeScript without type stripping or esbuild) or
 * `ERR_PLUGIN_COMPILE` (esbuild could not compile it), or `ERR_PLUGIN_LOAD` (`PluginLoadError`, with the
 * cause) when the module cannot be loaded; no worker is left running then (at the deadline, those still
 * ending end in the background).
 *
 * `readyTimeoutMs` counts from this call: the wait in the process-wide boot queue (`configureBoots`),
 * the spawn, the read of the file, the import and `onLoad` all count. Past it the load rejects
 * `ERR_PLUGIN_LOAD` with an `ERR_PLUGIN_TIMEOUT` cause (`queued: true` when no worker was started).
 *
 * @example
 * const plugin = await loadPlugin<typeof import('./greeter.js')>('./greeter.js');
 * await plugin.api.greet('Ada');
 * await plugin.close();
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- an untyped plugin: any exports, any method
export async function loadPlugin<T = Record<string, any>>(
  specifier: PluginSpecifier,
  options?: LoadOptions,
): Promise<Plugin<T>> {
  return (await loadVersion<T>(specifier, resolveLoadOptions(options))).plugin;
}

/** A loaded version, and whether it runs on the standby it was offered. */
export interface LoadedVersion<T> {
  readonly plugin: Plugin<T>;
  readonly standby: boolean;
  readonly codeCache: CodeCacheStatus;
}

/**
 * @internal `loadPlugin()` with validated options. `standby`, when given, is asked for spawned workers
 * to run the version on (a hot swap's standby); when it gives none, new workers are spawned. `bounds`:
 * the manager's way of counting `readyTimeoutMs` (admission.ts).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- an untyped plugin: any exports, any method
export function loadVersion<T = Record<string, any>>(
  specifier: PluginSpecifier,
  resolved: ResolvedLoadOptions,
  standby?: () => readonly Thread[] | undefined,
  bounds: LoadBounds = {},
): Promise<LoadedVersion<T>> {
  if (!loadTrace.hasSubscribers) return load<T>(specifier, resolved, standby, bounds, undefined);
  const context: LoadContext = {
    specifier: String(specifier),
    pluginName: resolved.name,
    version: resolved.version,
    threads: resolved.threads,
  };
  // The plugin (not the internal pair) is what a subscriber sees as the result.
  let loaded: LoadedVersion<T> | undefined;
  const run = async () => (loaded = await load<T>(specifier, resolved, standby, bounds, context)).plugin;
  return loadTrace.tracePromise(run, context).then(() => loaded!);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- an untyped plugin: any exports, any method
async function load<T = Record<string, any>>(
  specifier: PluginSpecifier,
  resolved: ResolvedLoadOptions,
  standby: (() => readonly Thread[] | undefined) | undefined,
  bounds: LoadBounds,
  context: LoadContext | undefined,
): Promise<LoadedVersion<T>> {
  const identity = { pluginName: resolved.name, version: resolved.version };
  let path: string;
  try {
    path = specifierPath(specifier);
  } catch (error) {
    throw new PluginLoadError(`cannot load plugin from ${String(specifier)}`, { ...identity, cause: error });
  }
  const admission = new Admission(resolved.readyTimeoutMs, bounds);
  try {
    return await boot<T>(path, resolved, standby, admission, context);
  } finally {
    admission.end();
  }
}

type Read = { readonly file: ModuleFile } | { readonly error: unknown };

async function boot<T>(
  path: string,
  resolved: ResolvedLoadOptions,
  standby: (() => readonly Thread[] | undefined) | undefined,
  admission: Admission,
  context: LoadContext | undefined,
): Promise<LoadedVersion<T>> {
  const identity = { pluginName: resolved.name, version: resolved.version };
  // The file is read while the load waits for its boot slot and while its workers boot: a thread takes
  // far longer to boot. The read goes through libuv's pool, shared with every plugin (README): the
  // deadline bounds it too.
  let read: Read | undefined;
  const reading = readModule(path, identity).then(
    (file): Read => (read = { file }),
    (error: unknown): Read => (read = { error }),
  );
  // A missing compiler or a compile error is its own coded error: it names the fix.
  const readFailed = (error: unknown) =>
    error instanceof PluginCompileError || error instanceof PluginNoEsbuildError
      ? error
      : new PluginLoadError(`cannot read plugin module ${path}`, { ...identity, cause: error });
  if (!(await admission.admitted())) throw admission.failed(identity, path, true);
  // A file that cannot be read is known before a worker is started for it, when the read came first.
  if (read !== undefined && 'error' in read) throw readFailed(read.error);
  let threads = standby?.();
  let onStandby = threads !== undefined;
  threads ??= spawn(resolved, path);
  const got = await admission.deadline.race(reading, undefined);
  if (got === undefined || 'error' in got) {
    for (const thread of threads) void thread.terminate(DEFAULTS.terminateTimeoutMs);
    throw got === undefined ? admission.failed(identity, path, false) : readFailed(got.error);
  }
  const file = got.file;
  const { module } = file;
  // Read while the workers still boot; never rejects (a cache that fails is a miss). A standby that ran
  // these bytes ahead (prepare) needs none of them.
  const ranAhead =
    onStandby && resolved.codeCache !== false && threads.every((thread) => thread.ranAhead === file.digest);
  const code = ranAhead ? ranAheadCode(file) : await codeForLoad(file, resolved.codeCache);
  if (onStandby && !ranAhead && threads.some((thread) => thread.ranAhead !== undefined)) {
    // The standby ran another module ahead (`prepare`): it can serve only those bytes.
    for (const thread of threads) void thread.terminate(DEFAULTS.terminateTimeoutMs);
    threads = spawn(resolved, path);
    onStandby = false;
  }
  const errors = new VersionErrors(resolved.name ?? module.name, resolved.version ?? module.hash);
  if (context !== undefined) {
    context.pluginName = errors.name;
    context.version = errors.version;
  }
  const message = {
    url: module.url,
    data: resolved.data,
    maxPayloadBytes: resolved.maxPayloadBytes,
    maxArrayBufferBytes: resolved.maxArrayBufferMb === undefined ? undefined : resolved.maxArrayBufferMb * 2 ** 20,
    code: code?.load,
    compileCacheDir: code === undefined ? await nodeCompileCacheDir(resolved.codeCache) : undefined,
  };
  code?.harvest(threads);
  // The version's output (onLoad's too) goes where `output` says from the first line.
  const output = new VersionOutput(resolved.output, `${errors.name}@${errors.version}`);
  for (const thread of threads) thread.setOutput(output);
  let booted = await bootThreads(threads, message, admission, errors);
  if (!booted.ok && onStandby && booted.silentExit) {
    // A standby can die before the host sees its exit: then it is taken, and the version fails on it
    // without having started. Once, on fresh workers.
    onStandby = false;
    threads = spawn(resolved, path);
    code?.harvest(threads);
    for (const thread of threads) thread.setOutput(output);
    booted = await bootThreads(threads, message, admission, errors);
  }
  if (!booted.ok) throw booted.error;
  // A damaged entry was never shown to V8; the report says the cache was rejected all the same.
  const ready = code?.damaged === true ? { ...booted.ready, code: 'rejected' as const } : booted.ready;
  const plugin = new Plugin<T>(pluginToken, module, resolved, threads, ready, errors, output);
  // For closeAll(): until it ends, however it ends.
  plugin.once('exit', trackLive('version', { close: (timeoutMs) => plugin.close({ timeoutMs }) }));
  return { plugin, standby: onStandby, codeCache: ready.code };
}

/** New workers for a version; a failure to start one is a load error. */
function spawn(resolved: ResolvedLoadOptions, path: string): Thread[] {
  try {
    return spawnThreads(resolved, resolved.threads);
  } catch (error) {
    throw new PluginLoadError(`cannot start a worker for ${path}`, {
      pluginName: resolved.name,
      version: resolved.version,
      cause: error,
    });
  }
}
