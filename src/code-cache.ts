/**
 * The code cache in a load (`LoadOptions.codeCache`): whether the module can use it, its entry read
 * while the workers boot, and the cached data the first worker makes after a miss, stored for the next
 * load. The entries themselves, their checks and their bound are `code-store.ts`'s.
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { codeStore, type CodeStore } from './code-store.js';
import type { ResolvedCodeCache } from './options.js';
import type { ModuleFile } from './resolve.js';
import type { CodeLoad } from './shared/protocol.js';

/** The code cache's part in one load, when the module uses it. */
export interface CodeForLoad {
  /** For the `Load` message (without the harvest port, which goes to one worker: `harvest()`). */
  readonly load: CodeLoad;
  /**
   * A port for the worker that makes the cached data after a miss or a rejection; what it posts is
   * stored. Closed by the worker, or when it exits; `abandon()` closes it when the load ends early.
   */
  harvest(): MessagePort;
  /** The load failed, or its message could not be sent: nothing will be harvested. */
  abandon(): void;
}

/**
 * What the code cache offers a load of `file`: undefined when it is off, or the module is not CommonJS
 * (then it is imported as before). Reads the entry (any failure reads as a miss). Never rejects.
 */
export async function codeForLoad(
  file: ModuleFile,
  options: ResolvedCodeCache | undefined,
): Promise<CodeForLoad | undefined> {
  if (options === undefined || !(await isCommonJs(file.module.path))) return undefined;
  const store = codeStore(options.dir, options.maxBytes);
  const entry = await store.read(file.digest);
  const sourceBytes = file.bytes.byteLength;
  const cacheBytes = entry?.cache.byteLength ?? 0;
  const buffer = new SharedArrayBuffer(sourceBytes + cacheBytes);
  const view = new Uint8Array(buffer);
  view.set(file.bytes, 0);
  if (entry !== undefined) view.set(entry.cache, sourceBytes);
  const channels: MessageChannel[] = [];
  return {
    load: { filename: file.module.path, buffer, sourceBytes, cacheBytes },
    harvest: () => {
      const channel = new MessageChannel();
      channels.push(channel);
      listen(channel.port1, store, file);
      return channel.port2;
    },
    abandon: () => {
      for (const channel of channels) {
        channel.port1.close();
        channel.port2.close();
      }
    },
  };
}

/** Stores the one message the worker posts on `port` (its cached data), then closes the port. */
function listen(port: MessagePort, store: CodeStore, file: ModuleFile): void {
  port.once('message', (data: unknown) => {
    port.close();
    if (data instanceof Uint8Array && data.byteLength > 0) store.write(file.digest, file.bytes, data);
  });
  // A host with nothing else to do may exit before the worker posts: the entry is then made next time.
  port.unref();
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
