/**
 * A hot swap's standby (`HotSwapOptions.standby`): workers booted ahead, waiting for the next version's
 * code, so a swap pays only for the import and `onLoad`. A swap takes them when its spawn options match;
 * a new standby boots after the swap (`replenish`). A canary beside the current version would take its
 * workers from here too.
 */
import { DEFAULTS, type ResolvedLoadOptions } from './options.js';
import { spawnThreads, type SpawnOptions, type Thread } from './thread.js';

export class Standby {
  readonly #spawn: ResolvedLoadOptions;
  #threads: readonly Thread[] | undefined;

  /** `spawn`: the hot swap's load options (the workers' spawn options and `threads`). */
  constructor(spawn: ResolvedLoadOptions) {
    this.#spawn = spawn;
  }

  /** Boots a standby when none is waiting. A failure to spawn leaves none (the next swap boots its own). */
  replenish(): void {
    if (this.#threads !== undefined) return;
    try {
      this.#threads = spawnThreads(this.#spawn, this.#spawn.threads);
    } catch {
      // No standby this time: the next swap boots its own workers, and this is tried again after it.
    }
  }

  /** The standby, when it can run a version loaded with `load`; it is then that version's, no longer ours. */
  take(load: ResolvedLoadOptions): readonly Thread[] | undefined {
    const threads = this.#threads;
    if (threads === undefined || threads.length !== load.threads || !sameSpawn(threads[0]!.spawn, load))
      return undefined;
    this.#threads = undefined;
    if (threads.some((thread) => thread.gone)) {
      for (const thread of threads) void thread.terminate(DEFAULTS.terminateTimeoutMs);
      return undefined;
    }
    return threads;
  }

  /** Ends the standby waiting, if any. */
  async end(): Promise<void> {
    const threads = this.#threads;
    this.#threads = undefined;
    if (threads) await Promise.all(threads.map((thread) => thread.terminate(DEFAULTS.terminateTimeoutMs)));
  }
}

/** True when two spawn options would make the same worker. */
export function sameSpawn(a: SpawnOptions, b: SpawnOptions): boolean {
  return (
    json(a.resourceLimits) === json(b.resourceLimits) &&
    json(a.env) === json(b.env) &&
    json(a.execArgv) === json(b.execArgv)
  );
}

function json(value: unknown): string {
  return value === undefined
    ? ''
    : JSON.stringify(
        value,
        value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value).sort() : undefined,
      );
}
