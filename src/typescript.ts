/**
 * What a worker imports for a TypeScript plugin. Where Node strips types itself
 * (`process.features.typescript`: Node 22.18+ and 23.6+ by default, earlier 22 lines with
 * `--experimental-strip-types` on the host), the `.ts` file as it is: its workers inherit the feature.
 * Elsewhere (Node 20), and for files under `node_modules` (which Node refuses to strip), esbuild
 * compiles it: the entry and its local imports bundled into one ES module, every bare package left
 * external, pointed at the copy Node would resolve from the plugin's own folder. The output goes to a
 * cache outside the project, named by its content hash and written atomically, so equal sources share
 * one file and a version still draining keeps its own.
 *
 * Neither way checks types: that is the project's `tsc`.
 */
import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, extname, join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Plugin as EsbuildPlugin } from 'esbuild';
import { importEsbuild, REQUIRE_SHIM } from './esbuild.js';
import { isTypeScript } from './entry.js';
import { PluginCompileError, PluginNoEsbuildError } from './shared/errors.js';
import { writeAtomic } from './write-atomic.js';

/** Where compiled plugins go: `ISOPLUG_CACHE_DIR`, else `isoplug-ts` in the system's temp folder. */
export function cacheDir(): string {
  return process.env['ISOPLUG_CACHE_DIR'] || join(tmpdir(), 'isoplug-ts');
}

/** Whether this process (and so the workers it starts) strips TypeScript types itself. */
export function nativeTypeScript(): boolean {
  const features = process.features as { typescript?: unknown };
  return typeof features.typescript === 'string' && features.typescript.length > 0;
}

/**
 * Every bare import left external, as the absolute location Node resolves from the importing file:
 * the bundle lives in the cache, where a bare specifier would find nothing.
 */
const externalPackages: EsbuildPlugin = {
  name: 'isoplug-external-packages',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.pluginData === 'isoplug-inner') return undefined;
      if (isBuiltin(args.path) || /^[a-z][a-z0-9+.-]*:/i.test(args.path)) return { path: args.path, external: true };
      const found = await build.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: 'isoplug-inner',
      });
      if (found.errors.length > 0) return { errors: found.errors };
      // `require()` (the shim's) takes a path; `import` a URL.
      const path = args.kind === 'require-call' ? found.path : pathToFileURL(found.path).href;
      return { path, external: true };
    });
  },
};

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Compiles a TypeScript entry into the cache; resolves with the output's path. */
export async function compileTypeScript(
  entry: string,
  context: { pluginName?: string | undefined; version?: string | undefined },
): Promise<string> {
  let esbuild;
  try {
    esbuild = await importEsbuild();
  } catch (cause) {
    throw new PluginNoEsbuildError(
      `${entry} is TypeScript, and Node ${process.version} cannot strip types: install esbuild (npm install esbuild) to compile it on load, or build the plugin ahead (isoplug build)`,
      { ...context, cause },
    );
  }
  let result;
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: `node${process.versions.node.split('.')[0]}`,
      write: false,
      logLevel: 'silent',
      sourcemap: 'inline',
      banner: { js: REQUIRE_SHIM },
      plugins: [externalPackages],
      outfile: 'plugin.mjs',
    });
  } catch (cause) {
    const first = (cause as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> })
      .errors?.[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}: ` : '';
    throw new PluginCompileError(`cannot compile ${entry}: ${where}${first?.text ?? String(cause)}`, {
      ...context,
      cause,
    });
  }
  const output = result.outputFiles[0]!.contents;
  const hash = createHash('sha256').update(entry).update('\0').update(output).digest('hex').slice(0, 16);
  const dir = cacheDir();
  const file = join(dir, `${basename(entry, extname(entry))}.${hash}.mjs`);
  if (await exists(file)) return file;
  try {
    await mkdir(dir, { recursive: true });
    await writeAtomic(file, output);
  } catch (cause) {
    throw new PluginCompileError(`cannot write the compiled ${entry} to ${dir} (set ISOPLUG_CACHE_DIR)`, {
      ...context,
      cause,
    });
  }
  return file;
}

/** The URL a worker imports for the module at `entry`. */
export async function runnableUrl(
  entry: string,
  context: { pluginName?: string | undefined; version?: string | undefined } = {},
): Promise<string> {
  const underNodeModules = entry.split(sep).includes('node_modules');
  if (!isTypeScript(entry) || (nativeTypeScript() && !underNodeModules)) return pathToFileURL(entry).href;
  return pathToFileURL(await compileTypeScript(entry, context)).href;
}
