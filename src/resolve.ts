import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, extname, resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PluginOptionTypeError } from './shared/errors.js';

/** A plugin module on disk, read once: its location, its content hash, and its default name. */
export interface ResolvedModule {
  readonly path: string;
  readonly url: string;
  /** 12 hex digits of the SHA-256 of the file's bytes. */
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

/** Short content hash used as the default version label. */
export function contentHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 12);
}

/** A module file as read for a load: the module, and the bytes and their full SHA-256 (for the code cache). */
export interface ModuleFile {
  readonly module: ResolvedModule;
  readonly bytes: Buffer;
  /** 64 hex digits. */
  readonly digest: string;
}

/** Reads the module file once (rejects with ENOENT/EISDIR… as it comes from `fs`). */
export async function readModule(path: string): Promise<ModuleFile> {
  const bytes = await readFile(path);
  const digest = createHash('sha256').update(bytes).digest('hex');
  return {
    module: {
      path,
      url: pathToFileURL(path).href,
      hash: digest.slice(0, 12),
      name: basename(path, extname(path)),
    },
    bytes,
    digest,
  };
}
