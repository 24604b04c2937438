/**
 * How an inline version is bundled (esbuild, the pipeline `isoplug build` uses): the entry and its
 * relative imports become one script that belongs to this version alone; bare packages are bundled
 * too (each version gets its own instances, as in a worker), except those named in `external`.
 * Node built-ins and external packages come from the host through small facade modules over a
 * namespace imported once: shared by every version, and never reclaimed (like node_modules in any
 * process).
 *
 * `import.meta` becomes a per-file constant written on the file's first line, so line numbers (and
 * the source map) are untouched and each module sees its own URL.
 */
import { builtinModules } from 'node:module';
import { readFile } from 'node:fs/promises';
import { dirname, extname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Loader, Plugin as EsbuildPlugin } from 'esbuild';
import { importEsbuild } from '../esbuild.js';

/**
 * The parameters the bundle is evaluated with (inline-eval.ts). Bundled CommonJS code finds `require`
 * (for what it requires at run time), `__filename` and `__dirname` here: the entry's.
 */
export const BUNDLE_PARAMS = ['__isoplug_done', '__isoplug_host', 'require', '__filename', '__dirname'] as const;

/**
 * V8 puts two lines before an AsyncFunction's body. The bundle starts with a two-line banner, which
 * esbuild's source map counts, and inline-eval.ts cuts it: the body's lines then sit where the map
 * says, with no decoding or re-encoding of the map.
 */
export const BANNER = '//\n//';

const BUILTINS = new Set(builtinModules);
const IDENT = /^[A-Za-z_$][\w$]*$/;
const HOST = 'isoplug-host';
/** Host modules by specifier (`node:fs`, or an external package's file URL): imported once. */
const hostModules = new Map<string, Record<string, unknown>>();

/** A module the bundle takes from the host (`__isoplug_host(url)`). */
export function hostModule(url: string): Record<string, unknown> | undefined {
  return hostModules.get(url);
}

function isBuiltin(spec: string): boolean {
  return spec.startsWith('node:') || BUILTINS.has(spec) || BUILTINS.has(spec.split('/')[0]!);
}

function isExternal(spec: string, external: readonly string[]): boolean {
  return external.some((name) => spec === name || spec.startsWith(`${name}/`));
}

function loaderOf(path: string): Loader {
  const ext = extname(path);
  if (ext === '.tsx' || ext === '.jsx') return ext.slice(1) as Loader;
  return /^\.[cm]?ts$/.test(ext) ? 'ts' : 'js';
}

/** One facade module: the host namespace's exports, read once when the version is evaluated. */
function facade(url: string, ns: Record<string, unknown>): string {
  const lines = [`const m = __isoplug_host(${JSON.stringify(url)});`];
  let i = 0;
  for (const key of Object.keys(ns)) {
    if (key === 'default') lines.push('export default m.default;');
    else if (IDENT.test(key)) lines.push(`export const ${key} = m.${key};`);
    else lines.push(`const x${i} = m[${JSON.stringify(key)}]; export { x${i++} as ${JSON.stringify(key)} };`);
  }
  return lines.join('\n');
}

function inlinePlugin(external: readonly string[]): EsbuildPlugin {
  return {
    name: 'isoplug-inline',
    setup(build) {
      // Node imports `file:` URLs; esbuild resolves paths.
      build.onResolve({ filter: /^file:/ }, (args) => ({ path: fileURLToPath(args.path) }));
      build.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.pluginData === 'inner' || args.kind === 'entry-point') return undefined;
        if (isBuiltin(args.path))
          return { path: args.path.startsWith('node:') ? args.path : `node:${args.path}`, namespace: HOST };
        if (!isExternal(args.path, external)) return undefined;
        const found = await build.resolve(args.path, {
          kind: args.kind,
          resolveDir: args.resolveDir,
          importer: args.importer,
          pluginData: 'inner',
        });
        if (found.errors.length > 0) return { errors: found.errors };
        return { path: pathToFileURL(found.path).href, namespace: HOST };
      });
      build.onLoad({ filter: /.*/, namespace: HOST }, async (args) => {
        let ns = hostModules.get(args.path);
        if (ns === undefined) {
          ns = (await import(args.path)) as Record<string, unknown>;
          hostModules.set(args.path, ns);
        }
        return { contents: facade(args.path, ns), loader: 'js' };
      });
      build.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, async (args) => {
        const source = await readFile(args.path, 'utf8');
        if (!source.includes('import.meta')) return undefined;
        const meta = JSON.stringify({
          url: pathToFileURL(args.path).href,
          filename: args.path,
          dirname: dirname(args.path),
        });
        return { contents: `const __isoplug_meta = ${meta};${source}`, loader: loaderOf(args.path) };
      });
    },
  };
}

/** Bundles `entry` for evaluation (inline-eval.ts): ESM with an inline source map, the banner first. */
export async function bundleInline(entry: string, external: readonly string[]): Promise<string> {
  const esbuild = await importEsbuild();
  const result = await esbuild.build({
    stdin: {
      contents: `import * as ns from ${JSON.stringify(entry)}; __isoplug_done(ns);`,
      resolveDir: dirname(entry),
      sourcefile: 'isoplug-inline-entry',
    },
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    write: false,
    logLevel: 'silent',
    charset: 'utf8',
    sourcemap: 'inline',
    sourcesContent: true,
    // Absolute file URLs in the map, so a debugger and stack traces name the files themselves.
    outdir: '/',
    sourceRoot: 'file:///',
    define: { 'import.meta': '__isoplug_meta' },
    banner: { js: BANNER },
    plugins: [inlinePlugin(external)],
  });
  return result.outputFiles[0]!.text;
}
