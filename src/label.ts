/**
 * The default version label: a hash of what a version runs. That is the entry module, every local
 * module it reaches (relative or absolute specifiers of static imports, re-exports, and dynamic
 * `import()`/`require()` with a literal specifier), and, for each bare package those modules import,
 * the package's name and the `version` of the copy Node would resolve (its package.json, found the way
 * Node looks through `node_modules`). The files of `node_modules` are never read beyond those
 * package.json files: a version is identified by what is installed, cheaply.
 *
 * Specifiers are found by a scan of the source text, not a parse: a specifier in a comment or string
 * may be followed too, which only makes the label cover a file more; an import built at run time
 * (`import(name)`) is not followed.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { INDEX_FILES, MODULE_EXTENSIONS } from './entry.js';

/** What a label covers. */
export interface VersionLabel {
  /** 12 hex digits of the SHA-256 over the modules' paths and bytes and the packages' versions. */
  readonly hash: string;
  /** Absolute paths of the local modules read, the entry first. */
  readonly files: readonly string[];
  /** `name@version` of each bare package imported (`name@?` when not installed), sorted. */
  readonly packages: readonly string[];
}

const SPECIFIER = /\b(?:from|import)\s*(['"])([^'"\r\n]+)\1|\b(?:import|require)\s*\(\s*(['"`])([^'"`\r\n]+)\3\s*[,)]/g;
/** A bare specifier: a package name (scoped or not), maybe a subpath. */
const PACKAGE = /^(?:@[a-z0-9][\w.~-]*\/)?[a-z0-9][\w.~-]*(?:\/[^\s'"]*)?$/i;
const TS_FOR_JS: Record<string, string> = { '.js': '.ts', '.mjs': '.mts', '.cjs': '.cts', '.jsx': '.tsx' };

/** The specifiers a module's text mentions. */
export function specifiers(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(SPECIFIER)) {
    const specifier = match[2] ?? match[4];
    if (specifier !== undefined && !specifier.includes('${')) found.push(specifier);
  }
  return found;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The file a relative specifier names: as written, its TypeScript twin, with an extension, or a folder's index. */
async function localFile(from: string, specifier: string): Promise<string | undefined> {
  const bare = specifier.replace(/[?#].*$/, '');
  const path = bare.startsWith('file:') ? fileURLToPath(bare) : resolve(dirname(from), bare);
  const ext = extname(path);
  const twin = TS_FOR_JS[ext];
  const candidates = [
    path,
    ...(twin ? [path.slice(0, -ext.length) + twin] : []),
    ...[...MODULE_EXTENSIONS, '.json'].map((extension) => path + extension),
    ...INDEX_FILES.map((file) => join(path, file)),
  ];
  for (const candidate of candidates) if (await isFile(candidate)) return candidate;
  return undefined;
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

/** Finds `name`'s package.json from `dir` up, as Node does, and reads its version. */
async function installedVersion(dir: string, name: string, cache: Map<string, Promise<string>>): Promise<string> {
  const key = `${dir}\0${name}`;
  let version = cache.get(key);
  if (version === undefined) {
    version = (async () => {
      try {
        const manifest = JSON.parse(await readFile(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as {
          version?: unknown;
        };
        return typeof manifest.version === 'string' ? manifest.version : '0.0.0';
      } catch {
        const parent = dirname(dir);
        return parent === dir ? '?' : installedVersion(parent, name, cache);
      }
    })();
    cache.set(key, version);
  }
  return version;
}

/**
 * The label `loadPlugin()` gives a version of the module at `entry` (an absolute or relative path of a
 * module file) when no `version` is set: reads its local module graph and the installed versions of the
 * packages it imports, and hashes them. A deploy script can compute it ahead, to know a version's label.
 *
 * @example
 * const { hash, files, packages } = await versionLabel('./plugins/greeter.ts');
 */
export async function versionLabel(path: string): Promise<VersionLabel> {
  const entry = resolve(path);
  const root = dirname(entry);
  const contents = new Map<string, Buffer>();
  const packages = new Set<string>();
  const versions = new Map<string, Promise<string>>();
  let frontier = [entry];
  while (frontier.length > 0) {
    const next: string[] = [];
    await Promise.all(
      frontier.map(async (file) => {
        const bytes = await readFile(file);
        contents.set(file, bytes);
        if (extname(file) === '.json') return;
        for (const specifier of specifiers(bytes.toString('utf8'))) {
          if (/^(?:\.{1,2}\/|\/|file:)/.test(specifier)) {
            const found = await localFile(file, specifier);
            if (found !== undefined && !contents.has(found) && !next.includes(found)) {
              contents.set(found, Buffer.alloc(0)); // claimed: read in the next round
              next.push(found);
            }
          } else if (PACKAGE.test(specifier) && !isBuiltin(specifier)) {
            const name = packageName(specifier);
            packages.add(`${name}@${await installedVersion(dirname(file), name, versions)}`);
          }
        }
      }),
    );
    frontier = next;
  }
  const files = [...contents.keys()];
  const hash = createHash('sha256');
  for (const file of [...files].sort()) {
    const bytes = contents.get(file)!;
    hash.update(`${relative(root, file)}\0${bytes.length}\0`);
    hash.update(bytes);
  }
  const sorted = [...packages].sort();
  for (const item of sorted) hash.update(`${item}\n`);
  return { hash: hash.digest('hex').slice(0, 12), files, packages: sorted };
}
