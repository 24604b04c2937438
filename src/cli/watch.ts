/**
 * `watchPlugin()`: build a plugin, then rebuild it on every save, with esbuild's incremental context.
 * The dev loop and `isoplug build --watch` run on it.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';
import type { BuildContext } from 'esbuild';
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

/** What a watcher tells about one rebuild. */
export interface RebuildInfo {
  /** `false` when the output is the same as the last successful build's (a save without change). */
  readonly changed: boolean;
  /** `performance.now()` of the first file event behind this build (the build's start for the first one). */
  readonly triggeredAt: number;
  /** How many builds ran before this one. */
  readonly sequence: number;
}

/** Options of `watchPlugin()`. */
export interface WatchPluginOptions extends BuildPluginOptions {
  /**
   * Called after each successful build, the first one included. It may return a promise (a swap to
   * the new file, say): the watcher does not wait for it, and a throw or a rejection goes to `onError`
   * as `ERR_BUILD_ON_BUILD` (its `cause` is what was thrown); watching goes on.
   * @default undefined
   */
  onBuild?: (built: BuiltPlugin, info: RebuildInfo) => unknown;
  /**
   * Called when a build fails, or `onBuild` throws or rejects (`ERR_BUILD_ON_BUILD`); the watcher keeps
   * watching. Without it, such an error is a process warning (`process.emitWarning`), never an
   * uncaught error.
   * @default undefined
   */
  onError?: (error: BuildError, info: RebuildInfo) => void;
  /**
   * Quiet time after a file event before rebuilding: an editor's save is often several events
   * (write a temporary file, rename it over the old one).
   * @default 25
   */
  debounceMs?: number;
}

/** A running watcher: `close()` stops watching and frees esbuild's context. */
export interface PluginWatcher {
  /** The last successful build, if any. */
  readonly last: BuiltPlugin | undefined;
  close(): Promise<void>;
}

const SOURCE_FILE = /\.(?:[cm]?[jt]sx?|json)$/;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * Builds the plugin, then rebuilds it whenever one of its source files (outside node_modules)
 * changes, with esbuild's incremental context. Resolves after the first build (successful or not:
 * `onBuild` or `onError` has been called) once watching has started. Watches the folders that hold
 * the sources, not the files, so editors that save by renaming a new file over the old are seen.
 * Rejects only for `ERR_BUILD_ENTRY`, `ERR_BUILD_OUT_DIR` or `ERR_BUILD_NO_ESBUILD`.
 */
export async function watchPlugin(
  entry: string,
  outDir: string,
  options: WatchPluginOptions = {},
): Promise<PluginWatcher> {
  const found = await resolvePluginEntry(entry);
  const esbuild = await loadEsbuild();
  const out = await prepareOutDir(outDir);
  const name = safeName(options.name ?? found.name);
  const debounceMs = options.debounceMs ?? 25;
  const context: BuildContext = await esbuild.context(esbuildOptions(found, out, name, options));

  const watchers = new Map<string, FSWatcher>();
  let inputs = new Set<string>([found.entry]);
  let last: BuiltPlugin | undefined;
  let sequence = 0;
  let timer: NodeJS.Timeout | undefined;
  let firstEventAt: number | undefined;
  let building: Promise<void> | undefined;
  let dirty = false;
  let closed = false;

  const relevant = (folder: string, filename: string | null): boolean => {
    if (filename === null) return true;
    const path = join(folder, filename);
    if (inputs.has(path)) return true;
    if (folder === out || path.startsWith(out + sep)) return false; // our own output
    // A source that is not an input yet may be one after this change (a new import); editors' own
    // files (`.hello.ts.swp`, `hello.ts~`, `4913`) are not.
    return SOURCE_FILE.test(filename) && !basename(filename).startsWith('.');
  };

  const schedule = (): void => {
    if (closed) return;
    firstEventAt ??= performance.now();
    clearTimeout(timer);
    timer = setTimeout(run, debounceMs);
  };

  const follow = (folders: Set<string>): void => {
    for (const [folder, watcher] of watchers) {
      if (folders.has(folder)) continue;
      watcher.close();
      watchers.delete(folder);
    }
    for (const folder of folders) {
      if (watchers.has(folder)) continue;
      try {
        const watcher = watch(folder, { persistent: true }, (_event, filename) => {
          if (relevant(folder, filename)) schedule();
        });
        watcher.on('error', () => {
          // The folder went away: stop watching it; the next build says whether it is needed.
          watcher.close();
          watchers.delete(folder);
          schedule();
        });
        watchers.set(folder, watcher);
      } catch {
        // A folder that vanished between the build and now; the next build will tell.
      }
    }
  };

  const foldersOf = (files: Iterable<string>): Set<string> => {
    const folders = new Set<string>([found.root]);
    for (const file of files) if (!file.split(sep).includes('node_modules')) folders.add(dirname(file));
    return folders;
  };

  const buildOnce = async (triggeredAt: number): Promise<void> => {
    const started = performance.now();
    const info = (changed: boolean): RebuildInfo => ({ changed, triggeredAt, sequence: sequence++ });
    let built: BuiltPlugin;
    try {
      const result = await context.rebuild();
      const output = result.outputFiles?.find((file) => file.path.endsWith('.mjs'));
      if (!output || !result.metafile)
        throw new BuildError('ERR_BUILD_FAILED', `esbuild produced no output for ${entry}`, { path: found.entry });
      built = await emit(found, out, name, output.contents, result.metafile, started);
    } catch (cause) {
      if (closed) return;
      report(cause instanceof BuildError ? cause : failure(found, cause), info(false));
      return;
    }
    if (closed) return;
    inputs = new Set(built.inputs);
    follow(foldersOf(built.inputs));
    const changed = built.hash !== last?.hash;
    last = built;
    const about = info(changed);
    const handlerFailed = (cause: unknown) =>
      report(
        new BuildError('ERR_BUILD_ON_BUILD', `onBuild failed for ${built.file}`, { path: built.file, cause }),
        about,
      );
    try {
      const returned = options.onBuild?.(built, about);
      // A promise (the README's `changed && hs.swap(next.file)`): its rejection is reported, not left unhandled.
      if (isThenable(returned)) returned.then(undefined, handlerFailed);
    } catch (cause) {
      handlerFailed(cause);
    }
  };

  /** A failed build or onBuild: to `onError`, else a process warning; a throwing `onError` too. */
  const report = (error: BuildError, about: RebuildInfo): void => {
    if (options.onError === undefined) return process.emitWarning(error);
    try {
      options.onError(error, about);
    } catch (thrown) {
      process.emitWarning(
        new BuildError('ERR_BUILD_ON_BUILD', `onError threw for ${error.path ?? entry}`, {
          cause: thrown,
          ...(error.path === undefined ? {} : { path: error.path }),
        }),
      );
    }
  };

  const run = (): void => {
    timer = undefined;
    if (building) {
      dirty = true;
      return;
    }
    const triggeredAt = firstEventAt ?? performance.now();
    firstEventAt = undefined;
    building = buildOnce(triggeredAt).finally(() => {
      building = undefined;
      if (dirty && !closed) {
        dirty = false;
        run();
      }
    });
  };

  // Watch before the first build, so a save during it is not missed.
  follow(foldersOf([found.entry]));
  firstEventAt = performance.now();
  run();
  await building;

  return {
    get last() {
      return last;
    },
    async close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
      await building;
      await context.dispose();
    },
  };
}
