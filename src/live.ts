/**
 * What is live in this process, for `closeAll()`: every plugin version not yet ended, and the owners of
 * versions (hot swaps, plugin managers), which close their own versions in their own order. Entries
 * leave when they end, so the registry holds only what would otherwise be left running at exit.
 */
import { duration } from './validate.js';

/** Something `closeAll()` can close: `close(timeoutMs)` drains within the deadline, then ends. */
export interface Live {
  close(timeoutMs: number | undefined): Promise<unknown>;
}

const owners = new Set<Live>();
const versions = new Set<Live>();

/** Registers a version (`'version'`) or an owner of versions (`'owner'`); the returned function removes it. */
export function trackLive(kind: 'version' | 'owner', live: Live): () => void {
  const set = kind === 'owner' ? owners : versions;
  set.add(live);
  return () => void set.delete(live);
}

/** Options of `closeAll()`. */
export interface CloseAllOptions {
  /**
   * The drain deadline given to each version (and each hot swap) closed: calls still running past it
   * reject `ERR_PLUGIN_TERMINATED`. A plugin manager drains with its own `drainTimeoutMs`.
   * @default each version's own close default (`drainTimeoutMs` for a hot swap, 30000 for a plugin)
   */
  timeoutMs?: number;
}

/**
 * Closes every live plugin version in this process: plugin managers and hot swaps first (each closes
 * its versions its own way: dependents first, draining ones too), then every version loaded with
 * `loadPlugin()` that is still open. Each drains, runs `onFree`, and ends, as `close()` does. Meant
 * for a process that is about to exit (`SIGTERM`, `beforeExit`): without it, a version's `onFree`
 * never runs when the process exits. Resolves once all are closed; rejects only for a bad option
 * (`PluginOptionTypeError`/`PluginOptionRangeError`). Versions, hot swaps and managers created
 * meanwhile are closed too.
 *
 * @example
 * process.once('SIGTERM', () => void closeAll({ timeoutMs: 5_000 }).then(() => process.exit(0)));
 */
export async function closeAll(options?: CloseAllOptions): Promise<void> {
  const given = options?.timeoutMs;
  const timeoutMs = given === undefined ? undefined : duration('options.timeoutMs', given, 0);
  while (owners.size > 0 || versions.size > 0) {
    const now = owners.size > 0 ? [...owners] : [...versions];
    // close() removes each from its set when it ends; a close that fails must not loop for ever.
    for (const live of now) (owners.has(live) ? owners : versions).delete(live);
    await Promise.allSettled(now.map((live) => live.close(timeoutMs)));
  }
}
