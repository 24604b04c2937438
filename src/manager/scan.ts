/**
 * Finds the plugins in the manager's directory and hashes their content. Reads through an injectable
 * `fs` (anything shaped like `node:fs/promises`), so the directory logic is testable on memfs.
 *
 * A plugin is a module file (`.js`, `.mjs`, `.cjs`, `.ts`, `.mts`, `.cts`), named by its base name, or
 * a folder, named by the folder, whose entry `loadPlugin()`'s rule finds (entry.ts: package.json
 * `exports`/`main`, else an index file). A file's hash covers its bytes; a folder's covers every file
 * in it (relative paths sorted, each path and its bytes) except what is under a `node_modules`: for
 * those, what decides the installed versions counts instead, the folder's lock files (ordinary files
 * of the folder), npm's record of the install (`node_modules/.package-lock.json`) and the `version` of
 * each dependency its package.json names. So a reload beside a large install reads a few files.
 * Dot-files and editors' backup files (`~`, `.swp`, `.tmp`) at the top level are ignored.
 */
import { createHash } from 'node:crypto';
import { basename, extname, join } from 'node:path';
import { MODULE_EXTENSIONS, resolveEntry } from '../entry.js';
import { ManagerScanError } from '../shared/errors.js';

/** The part of `node:fs/promises` the scan uses. */
export interface ManagerFs {
  readdir(path: string): Promise<unknown[]>;
  stat(path: string): Promise<{ isFile(): boolean; isDirectory(): boolean }>;
  readFile(path: string): Promise<Uint8Array | string>;
}

export interface ScannedPlugin {
  readonly name: string;
  /** The module the version loads: the file, or the folder's entry. */
  readonly entry: string;
  /** 16 hex digits of the SHA-256 of its content (the version label). */
  readonly hash: string;
}

function ignored(name: string): boolean {
  return (
    name.startsWith('.') ||
    name.endsWith('~') ||
    name.endsWith('.swp') ||
    name.endsWith('.tmp') ||
    name === 'node_modules'
  );
}

async function names(fs: ManagerFs, dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).map(String).sort();
}

/** Every file under `dir`, as sorted relative paths, not descending into `node_modules`. */
async function walk(fs: ManagerFs, dir: string, prefix = ''): Promise<string[]> {
  const files: string[] = [];
  for (const name of await names(fs, dir)) {
    if (name === 'node_modules') continue;
    const stat = await fs.stat(join(dir, name));
    if (stat.isDirectory()) files.push(...(await walk(fs, join(dir, name), `${prefix}${name}/`)));
    else if (stat.isFile()) files.push(`${prefix}${name}`);
  }
  return files;
}

async function folderEntry(fs: ManagerFs, folder: string): Promise<string> {
  try {
    return (await resolveEntry(folder, fs)).entry;
  } catch (error) {
    throw new ManagerScanError(`plugin folder ${folder} has no entry: ${(error as Error).message}`, {
      pluginName: basename(folder),
      cause: error,
    });
  }
}

const DEPENDENCY_FIELDS = ['dependencies', 'optionalDependencies', 'peerDependencies'];

async function readOptional(fs: ManagerFs, path: string): Promise<Uint8Array | string | undefined> {
  try {
    return await fs.readFile(path);
  } catch {
    return undefined;
  }
}

/** What decides a folder's installed packages: npm's install record and each declared dependency's version. */
async function installed(fs: ManagerFs, folder: string): Promise<Array<[string, Uint8Array | string]>> {
  const parts: Array<[string, Uint8Array | string]> = [];
  const record = await readOptional(fs, join(folder, 'node_modules', '.package-lock.json'));
  if (record !== undefined) parts.push(['node_modules/.package-lock.json', record]);
  const manifest = await readOptional(fs, join(folder, 'package.json'));
  if (manifest === undefined) return parts;
  let names: string[] = [];
  try {
    const parsed = JSON.parse(String(manifest)) as Record<string, unknown>;
    names = DEPENDENCY_FIELDS.flatMap((field) => {
      const deps = parsed[field];
      return deps !== null && typeof deps === 'object' ? Object.keys(deps) : [];
    });
  } catch {
    return parts; // the entry resolver reports a bad package.json
  }
  for (const name of [...new Set(names)].sort()) {
    const path = `node_modules/${name}/package.json`;
    const bytes = await readOptional(fs, join(folder, path));
    let version = 'missing';
    try {
      if (bytes !== undefined) version = String((JSON.parse(String(bytes)) as { version?: unknown }).version);
    } catch {
      version = 'unreadable';
    }
    parts.push([path, version]);
  }
  return parts;
}

function hashOf(parts: Array<[string, Uint8Array | string]>): string {
  const hash = createHash('sha256');
  for (const [path, bytes] of parts) {
    hash.update(`${path}\0${bytes.length}\0`);
    hash.update(bytes);
  }
  return hash.digest('hex').slice(0, 16);
}

/** The plugins in `dir`, by name. Rejects `ERR_MANAGER_SCAN` when two entries claim one name or a folder has no entry. */
export async function scanPlugins(fs: ManagerFs, dir: string): Promise<Map<string, ScannedPlugin>> {
  const found = new Map<string, ScannedPlugin>();
  let entries: string[];
  try {
    entries = await names(fs, dir);
  } catch (error) {
    throw new ManagerScanError(`cannot read the plugin directory ${dir}`, { cause: error });
  }
  for (const entryName of entries) {
    if (ignored(entryName)) continue;
    const path = join(dir, entryName);
    let stat;
    try {
      stat = await fs.stat(path);
    } catch {
      continue; // removed while we looked: the next scan sees the directory as it settles
    }
    let plugin: ScannedPlugin;
    if (stat.isFile()) {
      const ext = extname(entryName);
      if (!MODULE_EXTENSIONS.includes(ext)) continue;
      const name = basename(entryName, ext);
      plugin = { name, entry: path, hash: hashOf([[entryName, await fs.readFile(path)]]) };
    } else if (stat.isDirectory()) {
      const entry = await folderEntry(fs, path);
      const files = await walk(fs, path);
      const parts: Array<[string, Uint8Array | string]> = [];
      for (const file of files) parts.push([file, await fs.readFile(join(path, file))]);
      parts.push(...(await installed(fs, path)));
      plugin = { name: entryName, entry, hash: hashOf(parts) };
    } else {
      continue;
    }
    if (found.has(plugin.name))
      throw new ManagerScanError(`two entries in ${dir} are named ${plugin.name}`, { pluginName: plugin.name });
    found.set(plugin.name, plugin);
  }
  return found;
}

/** What changed between the hashes of the current set and a scan. */
export interface ScanDiff {
  readonly unchanged: string[];
  readonly changed: string[];
  readonly added: string[];
  readonly removed: string[];
}

/** Sorts a scan against the current set's hashes (`reload()` starts from it); lists keep the scan's order. */
export function diffScan(current: ReadonlyMap<string, string>, scanned: ReadonlyMap<string, ScannedPlugin>): ScanDiff {
  const diff: ScanDiff = { unchanged: [], changed: [], added: [], removed: [] };
  for (const [name, plugin] of scanned) {
    const hash = current.get(name);
    if (hash === undefined) diff.added.push(name);
    else (hash === plugin.hash ? diff.unchanged : diff.changed).push(name);
  }
  for (const name of current.keys()) if (!scanned.has(name)) diff.removed.push(name);
  return diff;
}
