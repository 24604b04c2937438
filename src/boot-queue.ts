/**
 * The process-wide bound on workers starting and ending at once. A worker's boot (its isolate, Node's
 * bootstrap, the runtime, the plugin's import) is 30-50 ms of CPU on a thread of its own; hundreds at
 * once leave the host thread runnable but not scheduled, and its event loop stalls for seconds. So
 * loads wait here, first come first served: a slot is held from `new Worker()` until the module is
 * imported (`onLoad` runs outside the bound: it is the plugin's own work). Endings are bounded the same
 * way: a version's `End` handshake and each worker's terminate wake a thread that competes with the host
 * for the cores (200 closes at once stalled the host's loop 100-180 ms with 16 in flight).
 *
 * A load that gives up while queued (its deadline passed) leaves the queue without having spawned.
 */
import { availableParallelism } from 'node:os';
import { count, knownKeys, plainObject, wrongType } from './validate.js';
import { sleep } from './time.js';

/** What `bootStats()` reports. */
export interface BootStats {
  /** How many versions may boot at once (`configureBoots`). */
  readonly concurrency: number;
  /** Loads waiting for a boot slot. */
  readonly queued: number;
  /** Loads holding a slot: spawning, or importing their module. */
  readonly booting: number;
  /** Endings in flight: `End` handshakes and worker terminations. */
  readonly ending: number;
}

/** Options of `configureBoots()`. */
export interface BootOptions {
  /**
   * How many versions may boot at once in this process (from the worker's spawn until its module is
   * imported). Past the core count only the host's event-loop delay grows (README, Performance).
   * @default os.availableParallelism()
   */
  concurrency?: number;
  /**
   * How many endings may be in flight at once in this process: a version's `End` handshake (its
   * output flushed, its children ended) and each worker's terminate take one each.
   * @default os.availableParallelism()
   */
  endConcurrency?: number;
}

/** The most either bound may be set to. */
const MAX_BOUND = 4096;

/** The defaults of `configureBoots()`. */
export const BOOT_DEFAULTS = Object.freeze({
  concurrency: availableParallelism(),
  endConcurrency: availableParallelism(),
});

/** A place in the boot queue. */
export interface BootTicket {
  /** Resolves once this load may spawn its workers. */
  readonly admitted: Promise<void>;
  /** True once admitted (until then the load has spawned nothing). */
  readonly isAdmitted: boolean;
  /** Frees the slot, or leaves the queue when still waiting. Idempotent. */
  release(): void;
}

class Gate {
  limit: number;
  running = 0;
  /** Waiting, in arrival order (a Set keeps insertion order and deletes in O(1)). */
  readonly waiting = new Set<() => void>();

  constructor(limit: number) {
    this.limit = limit;
  }

  pump(): void {
    while (this.running < this.limit && this.waiting.size > 0) {
      const next = this.waiting.values().next().value!;
      this.waiting.delete(next);
      this.running++;
      next();
    }
  }
}

const BOOT_KEYS: ReadonlySet<string> = new Set(['concurrency', 'endConcurrency']);
const boots = new Gate(BOOT_DEFAULTS.concurrency);
const ends = new Gate(BOOT_DEFAULTS.endConcurrency);

/**
 * Sets the process-wide bounds on versions booting and workers ending at once. Raising a bound
 * admits waiting loads at once; lowering it lets those running finish. Throws a
 * `PluginOptionTypeError`/`PluginOptionRangeError` naming a bad option.
 *
 * @example
 * configureBoots({ concurrency: 4 }); // a host with cores to spare for boots
 */
export function configureBoots(options: BootOptions): void {
  const o = plainObject('options', options);
  if (o === undefined) wrongType('options', 'an object', options);
  knownKeys('options', o, BOOT_KEYS);
  const concurrency = count('options.concurrency', o['concurrency'], boots.limit, 1, MAX_BOUND);
  const endConcurrency = count('options.endConcurrency', o['endConcurrency'], ends.limit, 1, MAX_BOUND);
  boots.limit = concurrency;
  ends.limit = endConcurrency;
  boots.pump();
  ends.pump();
}

/** The boot queue as it is now: its bound, loads waiting, booting, and terminations in flight. */
export function bootStats(): BootStats {
  return { concurrency: boots.limit, queued: boots.waiting.size, booting: boots.running, ending: ends.running };
}

/** Takes a place in the boot queue. */
export function enterBootQueue(): BootTicket {
  let state: 'queued' | 'admitted' | 'done' = 'queued';
  let admit!: () => void;
  const admitted = new Promise<void>((resolve) => (admit = resolve));
  const entry = () => {
    state = 'admitted';
    admit();
  };
  boots.waiting.add(entry);
  boots.pump();
  return {
    admitted,
    get isAdmitted() {
      return state === 'admitted';
    },
    release() {
      if (state === 'queued') boots.waiting.delete(entry);
      else if (state === 'admitted') {
        boots.running--;
        boots.pump();
      }
      state = 'done';
    },
  };
}

/**
 * Runs `start` once fewer than `endConcurrency` endings are in flight, and holds the slot until what it
 * returns settles, or at most `boundMs`: a worker blocked in a system call may never answer or exit, and
 * must not hold a slot for ever. Resolves with what `start` returns.
 */
export function withEndSlot<T>(start: () => Promise<T>, boundMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    ends.waiting.add(() => {
      const timer = sleep(boundMs);
      let done = false;
      const release = () => {
        if (done) return;
        done = true;
        timer.cancel();
        ends.running--;
        ends.pump();
      };
      let ending: Promise<T>;
      try {
        ending = start();
      } catch (error) {
        release();
        reject(error);
        return;
      }
      void Promise.race([ending, timer.promise]).then(release, release);
      ending.then(resolve, reject);
    });
    ends.pump();
  });
}
