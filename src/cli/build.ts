/**
 * Bundles one plugin version into one content-hashed ESM file: `<name>.<hash8>.mjs`. Published as
 * `isoplug/build`, and used by the `isoplug build` command.
 *
 * The plugin and everything it imports (its own copies of its dependencies) go into that one file,
 * so each version carries its own identity and its own dependencies: the host and a plugin, or two
 * versions of a plugin, may use different versions of one library. Same sources, same bytes, same
 * file name; any change gives a new file, and the old one stays for the version still draining.
 */
import {
  BuildError,
  emit,
  esbuildOptions,
  failure,
  loadEsbuild,
  prepareOutDir,
  resolvePluginEntry,
  safeName,
  type BuildPluginOptions,
  type BuiltPlugin,
} from './bundle.js';

export { BuildError, resolvePluginEntry } from './bundle.js';
export type { BuildErrorCode, BuildMessage, BuildPluginOptions, BuiltPlugin, PluginEntry } from './bundle.js';
export { watchPlugin } from './watch.js';
export type { PluginWatcher, RebuildInfo, WatchPluginOptions } from './watch.js';

/**
 * Bundles the plugin at `entry` (a file, or a folder: see `resolvePluginEntry`) into
 * `<outDir>/<name>.<hash8>.mjs` and resolves with what was built. Rejects with a `BuildError`:
 * `ERR_BUILD_ENTRY`, `ERR_BUILD_OUT_DIR`, `ERR_BUILD_FAILED` (esbuild's errors in `errors`) or
 * `ERR_BUILD_NO_ESBUILD`.
 *
 * @example
 * const built = await buildPlugin('./plugins/greeter', './dist/plugins');
 * const plugin = await loadPlugin(built.file);
 */
export async function buildPlugin(
  entry: string,
  outDir: string,
  options: BuildPluginOptions = {},
): Promise<BuiltPlugin> {
  const started = performance.now();
  const found = await resolvePluginEntry(entry);
  const esbuild = await loadEsbuild();
  const out = await prepareOutDir(outDir);
  const name = safeName(options.name ?? found.name);
  let result;
  try {
    result = await esbuild.build(esbuildOptions(found, out, name, options));
  } catch (cause) {
    throw failure(found, cause);
  }
  const output = result.outputFiles.find((file) => file.path.endsWith('.mjs'));
  if (!output)
    throw new BuildError('ERR_BUILD_FAILED', `esbuild produced no output for ${entry}`, { path: found.entry });
  return emit(found, out, name, output.contents, result.metafile, started);
}
