/**
 * The code cache in a load (`LoadOptions.codeCache`): whether the module can use it, its entry read
 * while the workers boot, and the cached data the first worker makes after a miss, stored for the next
 * load. The entries themselves, their checks and their bound are `code-store.ts`'s.
 */
import { readFile } from 'node:fs/promises';
import * as nodeModule from 'node:module';
import { dirname, extname, join } from 'node:path';
import { codeStore } from './code-store.js';
import type { ResolvedCodeCache } from './options.js';
import type { ModuleFile } from './resolve.js';
import type { CodeLoad } from './shared/protocol.js';
import type { Thread } from './thread.js';

/** The code cache's part in one load, when the module uses it. */
export interface CodeForLoad {
  /** For the `Load` message. */
  readonly load: CodeLoad;
  /** The entry found failed its checks: the load compiles from source, and reports `'rejected'`. */
  readonly damaged: boolean;
  /** Stores the cached data the first of `threads` posts after its load (after a miss or a rejection). */
  harvest(threads: readonly Thread[]): void;
}

/**
 * A load of `file` on a standby that already ran those bytes (`prepare`): the worker needs no source
 * and no cached data, only the digest that names what it ran, and it has nothing to harvest.
 */
export function ranAheadCode(file: ModuleFile): CodeForLoad {
  const load = {
    filename: file.module.path,
    digest: file.digest,
    buffer: new SharedArrayBuffer(0),
    sourceBytes: 0,
    cacheBytes: 0,
    harvest: false,
  };
  return { load, damaged: false, harvest: () => {} };
}

/**
 * What the code cache offers a load of `file`: undefined when it is off, or the module is not CommonJS
 * (then it is imported as before). Reads the entry (any failure reads as a miss). Never rejects.
 */
export async function codeForLoad(
  file: ModuleFile,
  options: ResolvedCodeCache | false,
): Promise<CodeForLoad | undefined> {
  if (options === false || !(await isCommonJs(file.module.path))) return undefined;
  const store = codeStore(options.dir, options.maxBytes);
  if (!(await store.usable())) return undefined;
  const entry = await store.read(file.digest);
  const cache = entry !== undefined && 'cache' in entry ? entry.cache : undefined;
  const sourceBytes = file.bytes.byteLength;
  const cacheBytes = cache?.byteLength ?? 0;
  // One copy for every thread of the version (a copy per Load message grows the host's memory).
  const buffer = new SharedArrayBuffer(sourceBytes + cacheBytes);
  const view = new Uint8Array(buffer);
  view.set(file.bytes, 0);
  if (cache !== undefined) view.set(cache, sourceBytes);
  return {
    load: { filename: file.module.path, digest: file.digest, buffer, sourceBytes, cacheBytes, harvest: true },
    damaged: entry !== undefined && 'damaged' in entry,
    harvest: (threads) => {
      store.track(
        new Promise<void>((resolve) =>
          threads[0]?.harvest((data) => {
            if (data instanceof Uint8Array && data.byteLength > 0) store.write(file.digest, file.bytes, data);
            resolve();
          }),
        ),
      );
    },
  };
}

/** Node's own compile cache (`module.enableCompileCache`, 22.1+), when this Node has it. */
const nodeCompileCache = typeof (nodeModule as { enableCompileCache?: unknown }).enableCompileCache === 'function';

/**
 * For a module the code cache does not compile itself (an ES module): the folder where Node's own compile
 * cache keeps its code and that of its imports, on Node 22.1+; `node/` in the cache folder, which must be
 * usable. Undefined when off, on Node 20, or when the folder is not ours. Never rejects.
 */
export async function nodeCompileCacheDir(options: ResolvedCodeCache | false): Promise<string | undefined> {
  if (options === false || !nodeCompileCache) return undefined;
  return (await codeStore(options.dir, options.maxBytes).usable()) ? join(options.dir, 'node') : undefined;
}

/**
 * True when Node would load `path` as CommonJS: `.cjs`, or `.js` whose nearest package.json does not say
 * `"type": "module"`. Read at each load: the package.json may change between versions. When unsure (a
 * package.json that cannot be read or parsed) the module is imported as before.
 */
export async function isCommonJs(path: string): Promise<boolean> {
  const ext = extname(path);
  if (ext === '.cjs') return true;
  if (ext !== '.js') return false;
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    let text: string;
    try {
      text = await readFile(join(dir, 'package.json'), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return false;
      if (dirname(dir) === dir) return true;
      continue;
    }
    try {
      return (JSON.parse(text) as { type?: unknown } | null)?.type !== 'module';
    } catch {
      return false;
    }
  }
}

/**
 * @internal Resolves once the cache folder `dir` has no work under way in this process: the cached data
 * its loads will post (until each worker posted it or ended) and the writes and deletes that follow.
 */
export function codeCacheIdle(dir: string): Promise<void> {
  return codeStore(dir, Infinity).idle();
}
