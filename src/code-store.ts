/**
 * The code cache on disk: V8's compiled code of a plugin module, kept across isolates and processes.
 *
 * V8 trusts the bytes it is given (it checks only the source length, its own version and flags), and
 * a flipped bit can crash or hang the isolate. So an entry is found by the SHA-256 of the exact bytes
 * that are compiled, under a folder named for the Node version, the architecture and
 * `v8.cachedDataVersionTag()` (which changes with any V8 flag), and its CRC-32 is checked before V8
 * sees it. The folder is private (0700, ours), entries are written to a temporary file and renamed.
 * Whatever goes wrong here (I/O, a bad checksum, a full disk) makes a load slower, never fail it.
 */
import { mkdir, open, readdir, rename, stat, unlink, utimes, writeFile, lstat, chmod } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { cachedDataVersionTag } from 'node:v8';
import * as zlib from 'node:zlib';

/** CRC-32 where Node has it (20.15+, 22.2+); without it the cache is off. */
const crc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/** What an entry holds: magic, format, CRC-32 and length of the payload, the source's SHA-256. */
const MAGIC = 0x49_53_4f_43; // "ISOC"
const FORMAT = 1;
const HEADER_BYTES = 16 + 32;

/** The code cache's folder when the options name none: per user, outside any project. */
export function defaultCodeCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_CACHE_HOME'];
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'isoplug', 'code');
}

/** The subfolder for this process: a cache made by another Node, architecture or set of V8 flags never matches. */
export const RUNTIME_KEY = `${process.version}-${process.arch}-${cachedDataVersionTag()}`;

/** What a read found: V8's cached data of a verified entry, or that the entry was damaged (and is deleted). */
export type CodeEntry = { readonly cache: Uint8Array } | { readonly damaged: true };

/**
 * One cache folder, bounded to `maxBytes`. Opened once per folder per process (`codeStore`): the
 * running total comes from one scan, and writes of one process go through it.
 */
export class CodeStore {
  readonly #root: string;
  readonly #dir: string;
  #maxBytes: number;
  /** The folder checked or made (private, ours); undefined until the first use, false when it cannot be used. */
  #ready: Promise<boolean> | undefined;
  /** Bytes of the entries, from the first scan on. */
  #total = 0;
  /** Writes and evictions under way (`idle()`). */
  readonly #pending = new Set<Promise<unknown>>();

  constructor(root: string, maxBytes: number) {
    this.#root = root;
    this.#dir = join(root, RUNTIME_KEY);
    this.#maxBytes = maxBytes;
  }

  /** The bound in force: the smallest asked for by any version using this folder. */
  bound(maxBytes: number): void {
    this.#maxBytes = Math.min(this.#maxBytes, maxBytes);
  }

  /** The path of the entry for a source digest (hex SHA-256). */
  path(digest: string): string {
    return join(this.#dir, `${digest}.bin`);
  }

  /** Whether the folder can be used (made or checked once): false turns the cache off. */
  usable(): Promise<boolean> {
    return this.#open();
  }

  /**
   * Reads and verifies the entry for `digest`. Resolves undefined when there is none, `damaged` when
   * it fails its checks (then it is deleted): a cold load follows either way. Never rejects.
   */
  async read(digest: string): Promise<CodeEntry | undefined> {
    if (!(await this.#open())) return undefined;
    const path = this.path(digest);
    let bytes: Buffer;
    try {
      const file = await open(path, 'r');
      try {
        bytes = await file.readFile();
      } finally {
        await file.close();
      }
    } catch {
      return undefined;
    }
    const payload = verify(bytes, digest);
    if (payload === undefined) {
      this.drop(digest);
      return { damaged: true };
    }
    // The access time for the LRU bound (mtime: atime is often not kept).
    const now = new Date();
    this.track(utimes(path, now, now));
    return { cache: payload };
  }

  /** Writes the entry for `digest` (temporary file, then rename), then evicts down to the bound. In the background. */
  write(digest: string, source: Uint8Array, cache: Uint8Array): void {
    this.#inTurn(digest, () => this.#write(digest, source, cache));
  }

  /** Deletes the entry for `digest` (it was damaged). In the background. */
  drop(digest: string): void {
    this.#inTurn(digest, async () => {
      const path = this.path(digest);
      const size = await stat(path).then((s) => s.size);
      await unlink(path);
      this.#total -= size;
    });
  }

  /** Resolves once the work tracked so far (writes, deletes, harvests awaited) is done. */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  /** The last operation on each digest: this process's writes and deletes of one entry run in turn. */
  readonly #turns = new Map<string, Promise<unknown>>();

  #inTurn(digest: string, work: () => Promise<unknown>): void {
    const next = (this.#turns.get(digest) ?? Promise.resolve()).then(work, work);
    this.#turns.set(digest, next);
    this.track(next);
    void next.then(
      () => this.#turns.get(digest) === next && this.#turns.delete(digest),
      () => this.#turns.get(digest) === next && this.#turns.delete(digest),
    );
  }

  /** Counts `work` until it settles (`idle()`). */
  track(work: Promise<unknown>): void {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.#pending.add(settled);
    void settled.then(() => this.#pending.delete(settled));
  }

  async #write(digest: string, source: Uint8Array, cache: Uint8Array): Promise<void> {
    if (!(await this.#open()) || HEADER_BYTES + cache.byteLength > this.#maxBytes) return;
    const entry = encode(digest, source, cache);
    const path = this.path(digest);
    const temp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await writeFile(temp, entry, { mode: 0o600, flag: 'wx' });
      const before = await stat(path).then(
        (s) => s.size,
        () => 0,
      );
      await rename(temp, path);
      this.#total += entry.byteLength - before;
    } catch {
      await unlink(temp).catch(() => {});
      return;
    }
    if (this.#total > this.#maxBytes) await this.#evict();
  }

  /** Deletes the least recently used entries (other runtimes' folders first) down to 80% of the bound. */
  async #evict(): Promise<void> {
    const entries = await scan(this.#root, this.#dir);
    entries.sort((a, b) => Number(b.other) - Number(a.other) || a.mtimeMs - b.mtimeMs);
    let total = entries.reduce((sum, e) => sum + e.size, 0);
    const target = this.#maxBytes * 0.8;
    for (const entry of entries) {
      if (total <= target) break;
      try {
        await unlink(entry.path);
        total -= entry.size;
      } catch {
        // Gone already (another process evicted it): it no longer counts either way.
        total -= entry.size;
      }
    }
    this.#total = total;
  }

  /** Makes or checks the folder once: private to this user, a real folder (not a link). */
  #open(): Promise<boolean> {
    if (crc32 === undefined) return Promise.resolve(false);
    this.#ready ??= (async () => {
      try {
        // One level at a time, each checked before the next is made in it.
        await mkdir(this.#root, { recursive: true, mode: 0o700 });
        if (!(await privateDir(this.#root))) return false;
        await mkdir(this.#dir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'EEXIST') throw error;
        });
        if (!(await privateDir(this.#dir))) return false;
        this.#total = (await scan(this.#root, this.#dir)).reduce((sum, e) => sum + e.size, 0);
        return true;
      } catch {
        return false;
      }
    })();
    return this.#ready;
  }
}

/**
 * True when `dir` is a folder owned by this user that no one else can write. A folder we made with
 * a looser mode (the umask) is tightened; someone else's, or a group- or world-writable one we cannot
 * fix, disables the cache: whoever can write an entry can run code in the host.
 */
async function privateDir(dir: string): Promise<boolean> {
  const info = await lstat(dir);
  if (!info.isDirectory()) return false;
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) return false;
  if ((info.mode & 0o077) !== 0) await chmod(dir, 0o700);
  return true;
}

interface Scanned {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** In another runtime's folder: this process can never use it. */
  readonly other: boolean;
}

/** Every entry under the cache folder (one level of runtime folders). */
async function scan(root: string, own: string): Promise<Scanned[]> {
  const found: Scanned[] = [];
  for (const runtime of await readdir(root, { withFileTypes: true })) {
    if (!runtime.isDirectory()) continue;
    const dir = join(root, runtime.name);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!name.endsWith('.bin')) continue;
      const path = join(dir, name);
      try {
        const info = await stat(path);
        found.push({ path, size: info.size, mtimeMs: info.mtimeMs, other: dir !== own });
      } catch {
        // Deleted meanwhile.
      }
    }
  }
  return found;
}

/** An entry's bytes: header, then V8's cached data. */
export function encode(digest: string, source: Uint8Array, cache: Uint8Array): Buffer {
  const entry = Buffer.allocUnsafe(HEADER_BYTES + cache.byteLength);
  entry.writeUInt32LE(MAGIC, 0);
  entry.writeUInt32LE(FORMAT, 4);
  entry.writeUInt32LE(crc32!(cache), 8);
  entry.writeUInt32LE(source.byteLength, 12);
  entry.write(digest, 16, 32, 'hex');
  entry.set(cache, HEADER_BYTES);
  return entry;
}

/** The payload of an entry when its header names `digest` and its CRC-32 holds; else undefined. */
export function verify(entry: Uint8Array, digest: string): Uint8Array | undefined {
  if (crc32 === undefined || entry.byteLength < HEADER_BYTES) return undefined;
  const bytes = Buffer.from(entry.buffer, entry.byteOffset, entry.byteLength);
  if (bytes.readUInt32LE(0) !== MAGIC || bytes.readUInt32LE(4) !== FORMAT) return undefined;
  if (bytes.toString('hex', 16, 48) !== digest) return undefined;
  const payload = bytes.subarray(HEADER_BYTES);
  return crc32(payload) === bytes.readUInt32LE(8) ? payload : undefined;
}

const stores = new Map<string, CodeStore>();

/** The store of a folder, one per folder in this process. */
export function codeStore(dir: string, maxBytes: number): CodeStore {
  let store = stores.get(dir);
  if (store === undefined) stores.set(dir, (store = new CodeStore(dir, maxBytes)));
  else store.bound(maxBytes);
  return store;
}
