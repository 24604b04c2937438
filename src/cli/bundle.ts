/**
 * What `buildPlugin()` and `watchPlugin()` share: finding a plugin's entry, esbuild's options,
 * turning esbuild's output into `<name>.<hash8>.mjs`, and the errors.
 *
 * esbuild is an optional peer dependency of isoplug, imported on first use.
 */
import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import type { BuildFailure, BuildOptions, Message, Metafile } from 'esbuild';
import { resolveEntry } from '../entry.js';
import { importEsbuild, REQUIRE_SHIM, type Esbuild } from '../esbuild.js';
import { writeAtomic } from '../write-atomic.js';

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

/** Imports esbuild once; `ERR_BUILD_NO_ESBUILD` when it is not installed. */
export async function loadEsbuild(): Promise<Esbuild> {
  try {
    return await importEsbuild();
  } catch (cause) {
    throw new BuildError(
      'ERR_BUILD_NO_ESBUILD',
      'esbuild is not installed; isoplug build needs it: npm install --save-dev esbuild',
      { cause },
    );
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
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
 * Finds the entry of a plugin given as a file or a folder, by the rule `loadPlugin()` follows (a
 * folder's package.json `exports`, else `main`, else an index file). Rejects `ERR_BUILD_ENTRY`.
 */
export async function resolvePluginEntry(input: string): Promise<PluginEntry> {
  let found;
  try {
    found = await resolveEntry(resolve(input));
  } catch (cause) {
    throw new BuildError('ERR_BUILD_ENTRY', (cause as Error).message, { path: input, cause });
  }
  if (found.folder)
    return { entry: found.entry, name: safeName(found.packageName ?? basename(found.root)), root: found.root };
  const base = basename(found.entry, extname(found.entry));
  return { entry: found.entry, name: safeName(base === 'index' ? basename(found.root) : base), root: found.root };
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
    // The first line names the plugin: `loadPlugin()` takes its name from it, not from the hashed file name.
    banner: { js: `// isoplug build: name=${name}\n${REQUIRE_SHIM}` },
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
  if (!(await isFile(file))) {
    try {
      await writeAtomic(file, contents);
    } catch (cause) {
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
