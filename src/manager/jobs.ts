/**
 * Live jobs: a job is plain data (`{ plugin, fn, data }`, the data cloned at schedule time) and a timer.
 * When it fires it is run through the manager's ordinary routing, so it runs on the version current at
 * that moment. A pending job does not keep the process alive (its timer is unref'd), as idle plugins do
 * not: a job is work the application scheduled for while it runs, and a process that has nothing else to
 * do should be able to exit (or be closed with `closeAll()`) without cancelling each job first. An
 * application that must wait for a job keeps its own handle (a server, a ref'd timer) or awaits it.
 */
import { ManagerJobCloneError, PluginOptionRangeError } from '../shared/errors.js';
import { timerDelay } from '../time.js';
import { wrongType } from '../validate.js';

export interface LiveJob {
  readonly plugin: string;
  readonly fn: string;
  readonly data: unknown;
  /** When it fires (epoch ms). */
  readonly at: number;
}

interface Pending {
  readonly job: LiveJob;
  timer: NodeJS.Timeout | undefined;
  readonly reject: (error: unknown) => void;
}

/** Validates a live job and copies its data; throws option errors or `ERR_MANAGER_JOB_CLONE`. */
export function makeJob(when: unknown, plugin: unknown, fn: unknown, data: unknown): LiveJob {
  let at: number;
  if (when instanceof Date) {
    at = when.getTime();
    if (Number.isNaN(at)) throw new PluginOptionRangeError('when', 'expected a valid Date');
  } else if (typeof when === 'number' && !Number.isNaN(when)) {
    if (when < 0 || !Number.isFinite(when))
      throw new PluginOptionRangeError('when', `expected a finite non-negative delay in ms, got ${when}`);
    at = Date.now() + when;
  } else {
    wrongType('when', 'a delay in ms or a Date', when);
  }
  if (typeof plugin !== 'string' || plugin.length === 0) wrongType('plugin', 'a plugin name', plugin);
  if (typeof fn !== 'string' || !fn.startsWith('live_')) wrongType('fn', 'the name of a live_* function', fn);
  let copy: unknown;
  try {
    copy = structuredClone(data);
  } catch (error) {
    throw new ManagerJobCloneError(`the data of live job ${plugin}.${fn} cannot be cloned`, {
      pluginName: plugin,
      method: fn,
      cause: error,
    });
  }
  return Object.freeze({ plugin, fn, data: copy, at });
}

export class LiveJobs {
  readonly #pending = new Set<Pending>();

  constructor(private readonly run: (job: LiveJob) => Promise<unknown>) {}

  get size(): number {
    return this.#pending.size;
  }

  schedule(job: LiveJob): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const pending: Pending = { job, timer: undefined, reject };
      this.#pending.add(pending);
      const arm = () => {
        const left = job.at - Date.now();
        // setTimeout caps at 2^31-1 ms: re-arm until the date comes.
        const delay = timerDelay(Math.max(0, left)) ?? 0;
        pending.timer = setTimeout(() => {
          if (job.at - Date.now() > 0 && delay < left) return arm();
          this.#pending.delete(pending);
          this.run(job).then(resolve, reject);
        }, delay);
        pending.timer.unref();
      };
      arm();
    });
  }

  /** Cancels every pending job; each rejects with `error()`. */
  cancelAll(error: (job: LiveJob) => Error): void {
    for (const pending of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(error(pending.job));
    }
    this.#pending.clear();
  }
}
