import { PluginLoadError } from './shared/errors.js';
import { DEFAULTS, resolveLoadOptions, type LoadOptions, type ResolvedLoadOptions } from './options.js';
import { Plugin, pluginToken } from './plugin.js';
import { spawnThreads, type Thread } from './thread.js';
import { readModule, specifierPath, type PluginSpecifier } from './resolve.js';

/**
 * Loads one plugin version in a fresh worker and resolves once its module is imported and its
 * `onLoad(data)` resolved. Each call is independent: loading the same path twice gives two versions,
 * and loading a path after its file changed runs the new code.
 *
 * Rejects (never throws synchronously) with a `PluginOptionTypeError`/`PluginOptionRangeError` for
 * bad options, or `ERR_PLUGIN_LOAD` (`PluginLoadError`, with the cause) when the module cannot be
 * loaded; no worker is left running then.
 *
 * @example
 * const plugin = await loadPlugin<typeof import('./greeter.js')>('./greeter.js');
 * await plugin.api.greet('Ada');
 * await plugin.close();
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function loadPlugin<T = Record<string, any>>(
  specifier: PluginSpecifier,
  options?: LoadOptions,
): Promise<Plugin<T>> {
  return loadResolved<T>(specifier, resolveLoadOptions(options));
}

/**
 * @internal `loadPlugin()` with validated options. `standby`, when given, is asked for spawned workers
 * to run the version on (a hot swap's standby); when it gives none, new workers are spawned.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function loadResolved<T = Record<string, any>>(
  specifier: PluginSpecifier,
  resolved: ResolvedLoadOptions,
  standby?: () => readonly Thread[] | undefined,
): Promise<Plugin<T>> {
  let path: string;
  try {
    path = specifierPath(specifier);
  } catch (error) {
    throw new PluginLoadError(`cannot load plugin from ${String(specifier)}`, {
      cause: error,
      pluginName: resolved.name,
      version: resolved.version,
    });
  }
  // The workers boot while the module file is read and hashed: a thread takes far longer to boot.
  let threads: readonly Thread[];
  try {
    threads = standby?.() ?? spawnThreads(resolved, resolved.threads);
  } catch (error) {
    throw new PluginLoadError(`cannot start a worker for ${path}`, {
      cause: error,
      pluginName: resolved.name,
      version: resolved.version,
    });
  }
  let module;
  try {
    module = await readModule(path);
  } catch (error) {
    for (const thread of threads) void thread.terminate(DEFAULTS.terminateTimeoutMs);
    throw new PluginLoadError(`cannot read plugin module ${path}`, {
      cause: error,
      pluginName: resolved.name,
      version: resolved.version,
    });
  }
  const plugin = new Plugin<T>(pluginToken, module, resolved, threads);
  await plugin[pluginToken](resolved.readyTimeoutMs, {
    url: module.url,
    data: resolved.data,
    maxPayloadBytes: resolved.maxPayloadBytes,
    maxArrayBufferBytes: resolved.maxArrayBufferMb === undefined ? undefined : resolved.maxArrayBufferMb * 2 ** 20,
  });
  return plugin;
}
