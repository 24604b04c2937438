/**
 * What `buildPlugin()` and `watchPlugin()` share: finding a plugin's entry, esbuild's options,
 * turning esbuild's output into `<name>.<hash8>.mjs`, and the errors.
 *
 * esbuild is an optional peer dependency of isoplug, imported on first use.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { BuildFailure, BuildOptions, Message, Metafile } from 'esbuild';

type Esbuild = typeof import('esbuild');

export type BuildErrorCode =
  'ERR_BUILD_ENTRY' | 'ERR_BUILD_OUT_DIR' | 'ERR_BUILD_FAILED' | 'ERR_BUILD_NO_ESBUILD' | 'ERR_BUILD_ON_BUILD';

/** One esbuild diagnostic, flattened. */
export interface BuildMessage {
  readonly text: string;
  /** Relative to the folder built from; absent when esbuild gives no location. */
  readonly file?: string | undefined;
  readonly line?: number | undefined;
  readonly column?: number | undefined;
}

/** Why a build failed; match on `code`. `path` names the entry or out dir concerned. */
export class BuildError extends Error {
  readonly code: BuildErrorCode;
  readonly path: string | undefined;
  /** esbuild's errors, for `ERR_BUILD_FAILED`. */
  readonly errors: readonly BuildMessage[];

  constructor(
    code: BuildErrorCode,
    message: string,
    options: { path?: string; errors?: BuildMessage[]; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    Object.defineProperty(this, 'name', { value: 'BuildError', configurable: true, writable: true });
    this.code = code;
    this.path = options.path;
    this.errors = options.errors ?? [];
  }
}

/** Options of `buildPlugin()` and `watchPlugin()`. */
export interface BuildPluginOptions {
  /**
   * Base name of the output file (`<name>.<hash8>.mjs`).
   * @default the folder's package.json `name` without its scope, else the entry file's base name (the folder's name for an `index` file)
   */
  name?: string;
  /**
   * Identifiers replaced by expressions at build time (esbuild `define`), e.g. `{ __VERSION__: '"v2"' }`.
   * @default {}
   */
  define?: Record<string, string>;
  /**
   * Packages left out of the bundle. They are then resolved at run time from the output file's folder;
   * native addons must be listed here.
   * @default []
   */
  external?: string[];
  /**
   * Appends an inline source map (its paths are relative to `outDir`).
   * @default false
   */
  sourcemap?: boolean;
  /** @default false */
  minify?: boolean;
  /**
   * esbuild `target`.
   * @default 'node20'
   */
  target?: string;
}

/** One built version. */
export interface BuiltPlugin {
  /** Base name, without hash and extension. */
  readonly name: string;
  /** Absolute path of `<outDir>/<name>.<hash>.mjs`. */
  readonly file: string;
  /** 8 hex digits of the SHA-256 of the output (the first 8 of the version label `loadPlugin` gives it by default). */
  readonly hash: string;
  /** Size of the output file. */
  readonly bytes: number;
  /** Absolute path of the entry file. */
  readonly entry: string;
  /** Absolute paths of the source files bundled, dependencies included. */
  readonly inputs: readonly string[];
  /** `false` when a file with this name (so these bytes) was already there. */
  readonly written: boolean;
  /** Time spent in esbuild and writing, in ms. */
  readonly durationMs: number;
}

/** The entry file of a plugin given as a file or a folder, and its default name. */
export interface PluginEntry {
  readonly entry: string;
  readonly name: string;
  /** The folder paths in the output are relative to (the plugin folder, or the entry file's folder). */
  readonly root: string;
}

const INDEX_FILES = ['index.ts', 'index.mts', 'index.js', 'index.mjs'];
const MAIN_EXTENSIONS = ['', '.ts', '.mts', '.js', '.mjs', '/index.ts', '/index.mts', '/index.js', '/index.mjs'];

/**
 * Bundled CommonJS dependencies call `require()` for Node built-ins; an ES module has no `require`,
 * so give the bundle one.
 */
const REQUIRE_SHIM =
  "import { createRequire as __isoplugCreateRequire } from 'node:module';\nconst require = __isoplugCreateRequire(import.meta.url);";

let esbuildModule: Promise<Esbuild> | undefined;

/** Imports esbuild once; `ERR_BUILD_NO_ESBUILD` when it is not installed. */
export function loadEsbuild(): Promise<Esbuild> {
  esbuildModule ??= import('esbuild').catch((cause: unknown) => {
    esbuildModule = undefined;
    throw new BuildError(
      'ERR_BUILD_NO_ESBUILD',
      'esbuild is not installed; isoplug build needs it: npm install --save-dev esbuild',
      { cause },
    );
  });
  return esbuildModule;
}

async function kind(path: string): Promise<'file' | 'directory' | 'other' | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? 'file' : info.isDirectory() ? 'directory' : 'other';
  } catch {
    return undefined;
  }
}

export function safeName(name: string): string {
  const cleaned = name
    .replace(/^@[^/]+\//, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[.-]+/, '');
  return cleaned.length > 0 ? cleaned : 'plugin';
}

/**
 * Finds the entry of a plugin given as a file or a folder. For a folder: its package.json `main`
 * (which must exist), else `index.ts`, `index.mts`, `index.js`, `index.mjs`. Rejects `ERR_BUILD_ENTRY`.
 */
export async function resolvePluginEntry(input: string): Promise<PluginEntry> {
  const path = resolve(input);
  const found = await kind(path);
  if (found === undefined) throw new BuildError('ERR_BUILD_ENTRY', `plugin not found: ${input}`, { path: input });
  if (found === 'file') {
    const base = basename(path, extname(path));
    return { entry: path, name: safeName(base === 'index' ? basename(dirname(path)) : base), root: dirname(path) };
  }
  if (found !== 'directory')
    throw new BuildError('ERR_BUILD_ENTRY', `plugin is neither a file nor a folder: ${input}`, { path: input });

  let manifest: { name?: unknown; main?: unknown } | undefined;
  const manifestPath = join(path, 'package.json');
  if ((await kind(manifestPath)) === 'file') {
    try {
      manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as typeof manifest;
    } catch (cause) {
      throw new BuildError(
        'ERR_BUILD_ENTRY',
        `cannot read ${join(input, 'package.json')}: ${(cause as Error).message}`,
        { path: manifestPath, cause },
      );
    }
  }
  const name = safeName(typeof manifest?.name === 'string' ? manifest.name : basename(path));
  if (typeof manifest?.main === 'string') {
    for (const extension of MAIN_EXTENSIONS) {
      const candidate = resolve(path, manifest.main + extension);
      if ((await kind(candidate)) === 'file') return { entry: candidate, name, root: path };
    }
    throw new BuildError('ERR_BUILD_ENTRY', `main of ${join(input, 'package.json')} not found: ${manifest.main}`, {
      path: resolve(path, manifest.main),
    });
  }
  for (const file of INDEX_FILES) {
    const candidate = join(path, file);
    if ((await kind(candidate)) === 'file') return { entry: candidate, name, root: path };
  }
  throw new BuildError(
    'ERR_BUILD_ENTRY',
    `no entry in ${input}: no package.json main and no ${INDEX_FILES.join(', ')}`,
    { path: input },
  );
}

export function esbuildOptions(
  found: PluginEntry,
  outDir: string,
  name: string,
  options: BuildPluginOptions,
): BuildOptions & { write: false; metafile: true } {
  return {
    entryPoints: [found.entry],
    absWorkingDir: found.root,
    outfile: join(outDir, `${name}.mjs`),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: options.target ?? 'node20',
    write: false,
    metafile: true,
    logLevel: 'silent',
    charset: 'utf8',
    banner: { js: REQUIRE_SHIM },
    define: options.define ?? {},
    external: options.external ?? [],
    minify: options.minify ?? false,
    sourcemap: options.sourcemap ? 'inline' : false,
  };
}

function isBuildFailure(error: unknown): error is BuildFailure {
  return error instanceof Error && Array.isArray((error as Partial<BuildFailure>).errors);
}

function flatten(message: Message): BuildMessage {
  return {
    text: message.text,
    file: message.location?.file,
    line: message.location?.line,
    column: message.location?.column,
  };
}

/** `file:line:col: text` of the first error, and how many more there are. */
export function failure(entry: PluginEntry, cause: unknown): BuildError {
  if (!isBuildFailure(cause))
    return new BuildError(
      'ERR_BUILD_FAILED',
      `build of ${entry.entry} failed: ${(cause as Error)?.message ?? String(cause)}`,
      { path: entry.entry, cause },
    );
  const errors = cause.errors.map(flatten);
  const first = errors[0];
  const where = first?.file ? `${first.file}:${first.line ?? 0}:${first.column ?? 0}: ` : '';
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? 's' : ''})` : '';
  return new BuildError('ERR_BUILD_FAILED', `${where}${first?.text ?? 'build failed'}${more}`, {
    path: entry.entry,
    errors,
    cause,
  });
}

export async function prepareOutDir(outDir: string): Promise<string> {
  const path = resolve(outDir);
  try {
    await mkdir(path, { recursive: true });
  } catch (cause) {
    throw new BuildError(
      'ERR_BUILD_OUT_DIR',
      `cannot create the out dir ${outDir}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`,
      { path: outDir, cause },
    );
  }
  return path;
}

function inputsOf(root: string, metafile: Metafile): string[] {
  // Inputs in esbuild's other namespaces (`<define:…>`, `(disabled):…`) are not files.
  return Object.keys(metafile.inputs)
    .filter((key) => !/^[<(]|^[a-z-]+:/i.test(key))
    .map((key) => resolve(root, key));
}

/** Hashes the output and writes it as `<name>.<hash8>.mjs`, atomically (write aside, then rename). */
export async function emit(
  found: PluginEntry,
  outDir: string,
  name: string,
  contents: Uint8Array,
  metafile: Metafile,
  started: number,
): Promise<BuiltPlugin> {
  const hash = createHash('sha256').update(contents).digest('hex').slice(0, 8);
  const file = join(outDir, `${name}.${hash}.mjs`);
  let written = false;
  if ((await kind(file)) !== 'file') {
    const aside = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await writeFile(aside, contents);
      await rename(aside, file);
    } catch (cause) {
      await rm(aside, { force: true });
      throw new BuildError(
        'ERR_BUILD_OUT_DIR',
        `cannot write ${file}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`,
        { path: outDir, cause },
      );
    }
    written = true;
  }
  return {
    name,
    file,
    hash,
    bytes: contents.byteLength,
    entry: found.entry,
    inputs: inputsOf(found.root, metafile),
    written,
    durationMs: performance.now() - started,
  };
}
