/**
 * A hot swap's standby (`HotSwapOptions.standby`): workers booted ahead, waiting for the next version's
 * code, so a swap pays only for the import and `onLoad`. A swap takes them when its spawn options match;
 * a new standby boots after the swap (`replenish`). A canary beside the current version would take its
 * workers from here too. A standby boots through the process-wide boot queue like any load: a burst of
 * swaps across many hot swaps must not start their standbys all at once.
 */
import { enterBootQueue, type BootTicket } from './boot-queue.js';
import { codeForLoad } from './code-cache.js';
import { DEFAULTS, type ResolvedLoadOptions } from './options.js';
import { readModule, specifierPath, type PluginSpecifier } from './resolve.js';
import { sleep } from './time.js';
import { spawnThreads, type SpawnOptions, type Thread } from './thread.js';

export class Standby {
  readonly #spawn: ResolvedLoadOptions;
  #threads: readonly Thread[] | undefined;
  /** The standby's place in the boot queue while it waits there. */
  #queued: BootTicket | undefined;
  /** Settles once the standby queued last has spawned, or left the queue. */
  #spawning: Promise<void> = Promise.resolve();
  #spawned: (() => void) | undefined;
  /** Set by `close()`: no standby boots any more (a `prepare()` running then must not boot one). */
  #closed = false;

  /** `spawn`: the hot swap's load options (the workers' spawn options and `threads`). */
  constructor(spawn: ResolvedLoadOptions) {
    this.#spawn = spawn;
  }

  /**
   * Boots a standby when none is waiting or queued, once the boot queue admits it; its slot is held
   * until the workers are online. A failure to spawn leaves none (the next swap boots its own).
   */
  replenish(): void {
    if (this.#closed || this.#threads !== undefined || this.#queued !== undefined) return;
    const ticket = enterBootQueue();
    this.#queued = ticket;
    this.#spawning = new Promise((resolve) => (this.#spawned = resolve));
    void ticket.admitted.then(() => {
      // Ended while it waited: the ticket was released then.
      if (this.#queued !== ticket) return;
      this.#queued = undefined;
      try {
        const threads = spawnThreads(this.#spawn, this.#spawn.threads);
        this.#threads = threads;
        // A worker that never comes online holds the slot no longer than a load would.
        const bound = sleep(this.#spawn.readyTimeoutMs);
        void Promise.race([Promise.all(threads.map((thread) => thread.booted)), bound.promise]).then(() => {
          bound.cancel();
          ticket.release();
        });
      } catch {
        // No standby this time: the next swap boots its own workers, and this is tried again after it.
        ticket.release();
      }
      this.#spawned?.();
    });
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

  /**
   * Compiles `specifier` on the standby now (with the code cache's entry when there is one), and with
   * `run` runs its top level too, so the swap to those bytes runs only `onLoad` (a standby that ran one
   * module can serve only those bytes: preparing other bytes boots a new standby for them first).
   * Resolves true once the standby has, within `readyTimeoutMs`; false when there is no standby, the
   * module is not one the code cache serves, or it cannot be read. Never rejects.
   */
  async prepare(specifier: PluginSpecifier, load: ResolvedLoadOptions, run: boolean): Promise<boolean> {
    await this.#spawning;
    let code;
    try {
      code = await codeForLoad(await readModule(specifierPath(specifier)), load.codeCache);
    } catch {
      return false;
    }
    if (code === undefined) return false;
    const digest = code.load.digest;
    let threads = this.#threads;
    if (threads?.some((thread) => thread.ranAhead !== undefined)) {
      if (threads.every((thread) => thread.ranAhead === digest)) return true;
      await this.end();
      this.replenish();
      await this.#spawning;
      threads = this.#threads;
    }
    // Taken meanwhile by a swap, or none could be spawned.
    if (threads === undefined) return false;
    // The bound is a ref'd timer: the idle standby's workers do not keep the process alive, the wait does.
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<undefined>(
      (resolve) => (timer = setTimeout(() => resolve(undefined), load.readyTimeoutMs)),
    );
    try {
      const prepared = Promise.all(threads.map((thread) => thread.prepare({ ...code.load, harvest: false }, run)));
      const done = await Promise.race([prepared, bound]);
      return done !== undefined && done.every(Boolean);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the standby for good: the one waiting, and any `replenish()` or `prepare()` from now on. */
  close(): Promise<void> {
    this.#closed = true;
    return this.end();
  }

  /** Ends the standby waiting, if any, or leaves the boot queue. */
  async end(): Promise<void> {
    this.#queued?.release();
    this.#queued = undefined;
    this.#spawned?.();
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
