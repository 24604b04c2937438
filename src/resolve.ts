import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { basename, extname, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveEntry, type PluginEntry } from './entry.js';
import { versionLabel } from './label.js';
import { runnableUrl } from './typescript.js';
import { PluginOptionTypeError } from './shared/errors.js';

/** A plugin module on disk: its entry, the URL its workers import, its default label and name. */
export interface ResolvedModule {
  readonly path: string;
  readonly url: string;
  /** The default version label: 12 hex digits of the hash of what the version runs (label.ts). */
  readonly hash: string;
  readonly name: string;
}

/** What `loadPlugin()` accepts: a path (relative to the current directory) or a `file:` URL. */
export type PluginSpecifier = string | URL;

/**
 * Turns a specifier into an absolute path. Throws a TypeError for anything that is not a path or a
 * `file:` URL (`data:`, `http:`, `node:` …): a plugin version is a file whose bytes we can hash.
 */
export function specifierPath(specifier: unknown): string {
  if (specifier instanceof URL) {
    if (specifier.protocol !== 'file:')
      throw new PluginOptionTypeError('specifier', `only file: URLs can be loaded, got ${specifier.protocol}`);
    return fileURLToPath(specifier);
  }
  if (typeof specifier !== 'string' || specifier.length === 0) {
    throw new PluginOptionTypeError(
      'specifier',
      `expected a path or a file: URL, got ${specifier === null ? 'null' : typeof specifier}`,
    );
  }
  if (/^[a-z][a-z0-9+.-]+:/i.test(specifier)) {
    if (!specifier.startsWith('file:')) {
      throw new PluginOptionTypeError(
        'specifier',
        `only file: URLs can be loaded, got ${specifier.slice(0, specifier.indexOf(':') + 1)}`,
      );
    }
    return fileURLToPath(specifier);
  }
  return resolvePath(specifier);
}

/** Short content hash. */
export function contentHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 12);
}

/** A module file as read for a load: the module, and the bytes the workers run and their full SHA-256 (for the code cache). */
export interface ModuleFile {
  readonly module: ResolvedModule;
  readonly bytes: Buffer;
  /** 64 hex digits. */
  readonly digest: string;
}

/** The first line `isoplug build` writes into a bundle: the plugin's own name (the file's name carries the hash). */
const BUILT_NAME = /^\/\/ isoplug build: name=([^\s]+)\r?\n/;

async function defaultName(found: PluginEntry): Promise<string> {
  if (found.folder) return found.packageName?.replace(/^@[^/]+\//, '') ?? basename(found.root);
  const handle = await open(found.entry);
  try {
    const head = Buffer.alloc(256);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const built = BUILT_NAME.exec(head.subarray(0, bytesRead).toString('utf8'));
    if (built?.[1] !== undefined) return built[1];
  } finally {
    await handle.close();
  }
  return basename(found.entry, extname(found.entry));
}

/**
 * Finds the plugin's entry (a file, or a folder: see entry.ts), hashes what it runs (label.ts) and
 * gives the URL its workers import (typescript.ts: compiled when Node cannot strip types). Rejects
 * with `ERR_PLUGIN_ENTRY`, `ERR_PLUGIN_COMPILE`, `ERR_PLUGIN_NO_ESBUILD`, or what `fs` rejects with.
 */
export async function readModule(
  path: string,
  context: { pluginName?: string | undefined; version?: string | undefined } = {},
): Promise<ModuleFile> {
  const found = await resolveEntry(path);
  const name = await defaultName(found);
  const [label, url] = await Promise.all([
    context.version === undefined ? versionLabel(found.entry) : undefined,
    runnableUrl(found.entry, { pluginName: context.pluginName ?? name, version: context.version }),
  ]);
  // The bytes the workers run (the entry, or its compiled form), for the code cache.
  const runs = fileURLToPath(url);
  const bytes = await readFile(runs);
  const digest = createHash('sha256').update(bytes).digest('hex');
  return { module: { path: runs, url, hash: context.version ?? label!.hash, name }, bytes, digest };
}
