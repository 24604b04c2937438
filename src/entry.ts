/**
 * The one rule for what module a plugin path stands for, used by `loadPlugin()`, hot swap, the
 * manager and the build CLI alike. A file is its own entry. A folder's entry is, in this order:
 * its package.json `exports['.']` (conditions `node`, `import`, `module-sync`, `default`, in the
 * object's order, as Node picks them for an `import`), else its `main` (tried as written, then with a
 * module extension, then as a folder with an index file), else the first index file present of
 * `index.js`, `index.mjs`, `index.cjs`, `index.ts`, `index.mts`, `index.cts`.
 *
 * Reads through an `fs` shaped like `node:fs/promises`, so the manager's scan can run it on memfs.
 */
import * as nodeFs from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { PluginEntryError } from './shared/errors.js';

/** The part of `node:fs/promises` the resolver uses. */
export interface EntryFs {
  stat(path: string): Promise<{ isFile(): boolean; isDirectory(): boolean }>;
  readFile(path: string): Promise<Uint8Array | string>;
}

/** The extensions a plugin module may have. */
export const MODULE_EXTENSIONS: readonly string[] = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'];
/** TypeScript ones: stripped by Node where it can, else compiled with esbuild. */
export const TS_EXTENSIONS: readonly string[] = ['.ts', '.mts', '.cts'];
export const INDEX_FILES: readonly string[] = MODULE_EXTENSIONS.map((ext) => `index${ext}`);

/** Export conditions Node matches for an `import()` of the package. */
const CONDITIONS = new Set(['node', 'import', 'module-sync', 'default']);

export interface PluginEntry {
  /** Absolute path of the module to run. */
  readonly entry: string;
  /** The folder given, or the entry file's folder. */
  readonly root: string;
  /** Whether a folder was given. */
  readonly folder: boolean;
  /** The folder's package.json `name`, when it has one. */
  readonly packageName: string | undefined;
}

type Kind = 'file' | 'directory' | 'other' | undefined;

async function kind(fs: EntryFs, path: string): Promise<Kind> {
  return (await inspect(fs, path)).kind;
}

/** What is at `path`, and why nothing when nothing. */
async function inspect(fs: EntryFs, path: string): Promise<{ kind: Kind; error?: unknown }> {
  try {
    const info = await fs.stat(path);
    return { kind: info.isFile() ? 'file' : info.isDirectory() ? 'directory' : 'other' };
  } catch (error) {
    return { kind: undefined, error };
  }
}

/** The target of an `exports` value for `.`, or undefined when it gives none for an import. */
function exportTarget(value: unknown, depth = 0): string | undefined {
  if (typeof value === 'string') return value;
  if (depth > 8 || value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (const item of value as unknown[]) {
      const found = exportTarget(item, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.some((key) => key.startsWith('.')))
    return Object.hasOwn(record, '.') ? exportTarget(record['.'], depth + 1) : undefined;
  for (const key of keys) {
    if (!CONDITIONS.has(key)) continue;
    const found = exportTarget(record[key], depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

async function readManifest(fs: EntryFs, folder: string): Promise<Record<string, unknown> | undefined> {
  const path = join(folder, 'package.json');
  if ((await kind(fs, path)) !== 'file') return undefined;
  try {
    const parsed: unknown = JSON.parse(String(await fs.readFile(path)));
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch (cause) {
    throw new PluginEntryError(`${path} cannot be read as JSON`, { pluginName: basename(folder), cause });
  }
}

/**
 * The entry of the plugin at `path` (absolute). Rejects `ERR_PLUGIN_ENTRY` (`PluginEntryError`)
 * when nothing is there, or a folder gives no entry that exists.
 */
export async function resolveEntry(path: string, fs: EntryFs = nodeFs): Promise<PluginEntry> {
  const { kind: found, error } = await inspect(fs, path);
  if (found === 'file') return { entry: path, root: resolve(path, '..'), folder: false, packageName: undefined };
  if (found !== 'directory')
    throw new PluginEntryError(
      found === undefined ? `plugin not found: ${path}` : `plugin is neither a file nor a folder: ${path}`,
      { cause: error },
    );
  const pluginName = basename(path);
  const manifest = await readManifest(fs, path);
  const packageName = typeof manifest?.['name'] === 'string' ? manifest['name'] : undefined;
  const at = (entry: string): PluginEntry => ({ entry, root: path, folder: true, packageName });
  if (manifest?.['exports'] !== undefined) {
    const target = exportTarget(manifest['exports']);
    if (target === undefined)
      throw new PluginEntryError(`package.json "exports" of ${path} has no "." entry for an import`, { pluginName });
    const entry = resolve(path, target);
    if ((await kind(fs, entry)) !== 'file')
      throw new PluginEntryError(`package.json "exports" of ${path} names ${target}, which is not a file`, {
        pluginName,
      });
    return at(entry);
  }
  const main = manifest?.['main'];
  if (typeof main === 'string' && main.length > 0) {
    const candidates = ['', ...MODULE_EXTENSIONS, ...INDEX_FILES.map((file) => `/${file}`)];
    for (const suffix of candidates) {
      const entry = resolve(path, main + suffix);
      if ((await kind(fs, entry)) === 'file') return at(entry);
    }
    throw new PluginEntryError(`package.json "main" of ${path} names ${main}, which is not there`, { pluginName });
  }
  for (const file of INDEX_FILES) {
    const entry = join(path, file);
    if ((await kind(fs, entry)) === 'file') return at(entry);
  }
  throw new PluginEntryError(
    `plugin folder ${path} has no entry: no package.json "exports" or "main", and none of ${INDEX_FILES.join(', ')}`,
    { pluginName },
  );
}

/** Whether the module at `path` is TypeScript. */
export function isTypeScript(path: string): boolean {
  return TS_EXTENSIONS.includes(extname(path));
}
