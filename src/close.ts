/**
 * The close path of one version, in order: refuse new calls (state `closing`), drain the calls in
 * flight within the deadline, run `onFree` in every worker, reject what still runs at the deadline,
 * end what else the version started (its output is flushed, its child processes ended: `End`), terminate
 * the workers, report. A crash or a destroy can land at any await; each step reads the state again.
 */
import type { Dispatch } from './dispatch.js';
import type { Pack } from './shared/envelope.js';
import type { PluginCrashedError } from './shared/errors.js';
import { withEndSlot } from './boot-queue.js';
import { Tag } from './shared/protocol.js';
import { deadline, type Deadline } from './time.js';
import type { Thread } from './thread.js';
import type { VersionErrors } from './version-errors.js';

export type PluginState = 'loading' | 'ready' | 'closing' | 'closed' | 'crashed' | 'destroyed';

/** What `close()` resolves with. */
export interface CloseReport {
  readonly name: string;
  readonly version: string;
  /** How the version ended: closed by this close, or it crashed or was destroyed while closing (or before). */
  readonly outcome: 'closed' | 'crashed' | 'destroyed';
  /**
   * True when every call in flight at close settled on its own before the deadline, and (when the module
   * has `onFree`) no server or socket of the plugin's was still open after it: ending the worker cuts those.
   */
  readonly drained: boolean;
  /** Calls in flight when close() was called. */
  readonly inFlightAtClose: number;
  /** Calls rejected `ERR_PLUGIN_TERMINATED` at the deadline. */
  readonly terminatedCalls: number;
  /** Calls that timed out or were aborted earlier and may still be running in the worker. */
  readonly abandonedCalls: number;
  /** What became of `onFree`. */
  readonly onFree: 'absent' | 'ok' | 'threw' | 'timeout' | 'skipped';
  /** The error `onFree` threw, when it threw. */
  readonly onFreeError: Error | undefined;
  /** True when every worker had exited when close() resolved; false when a terminate() was still pending (a worker blocked in a system call). */
  readonly terminated: boolean;
  readonly durationMs: number;
  /**
   * Child processes of the version ended by its close (still running then), plus those the host killed
   * on any path (`childrenForced`). Children ended by a crash's own runtime are not counted.
   */
  readonly childrenEnded: number;
  /**
   * The version's children the host killed because the worker could not end them itself (stuck at the
   * deadline, or gone): such a child may stay a zombie until the host process exits (see the README).
   */
  readonly childrenForced: number;
}

/** What the close path reads and drives of a version (the Plugin's view of itself). */
export interface Closable {
  readonly threads: readonly Thread[];
  readonly calls: Dispatch;
  readonly errors: VersionErrors;
  readonly hasOnFree: boolean;
  /** `LoadOptions.childKillGraceMs`. */
  readonly childKillGraceMs: number;
  /** The state now: it can change at every await (a crash, a destroy). */
  state(): PluginState;
  setState(next: PluginState): void;
  ref(on: boolean): void;
  /** True once any worker of the version has exited. */
  anyExited(): boolean;
  crash(): PluginCrashedError | undefined;
  /** The drain's deadline while it runs (a second `close()` can bring it forward). */
  closeDeadline: Deadline | undefined;
  /** The round of `onFree` that `Freed` messages and worker exits answer, while it runs. */
  freeing: FreeRound | undefined;
}

/** Closes `version` (see the file comment). Never rejects. */
export async function closeVersion(
  version: Closable,
  timeoutMs: number,
  terminateTimeoutMs: number,
): Promise<Omit<CloseReport, 'name' | 'version'>> {
  const started = performance.now();
  const { calls } = version;
  const inFlightAtClose = calls.inFlight;
  const abandonedCalls = calls.abandoned;
  let drained = false;
  let terminatedCalls = 0;
  let onFree: CloseReport['onFree'] = 'skipped';
  let onFreeError: Error | undefined;
  // What is left of the deadline once onFree is done: the grace children get, and how long End may take.
  let left = 0;
  let open = 0;
  if (version.state() === 'ready') {
    version.setState('closing');
    version.ref(true);
    const limit = deadline(timeoutMs);
    version.closeDeadline = limit;
    drained = await limit.race(
      calls.whenIdle().then(() => true),
      false,
    );
    // Calls rejected because a worker crashed or the version was destroyed did not settle on their own.
    if (version.state() !== 'closing') drained = false;
    // The drain may have ended in a crash or a destroy: only a version still closing runs onFree.
    if (version.state() === 'closing') {
      if (drained && !version.anyExited()) [onFree, onFreeError, open] = await runOnFree(version, limit);
      terminatedCalls = calls.rejectAll((call) => version.errors.terminatedAtDeadline(call.method, timeoutMs));
    }
    left = limit.left();
    limit.cancel();
  }
  const state = version.state();
  const outcome = state === 'crashed' || state === 'destroyed' ? state : 'closed';
  // A worker that ran into the deadline may be stuck: no grace, and End gets a short wait.
  const grace = drained && terminatedCalls === 0 ? Math.min(version.childKillGraceMs, left) : 0;
  const ended = await endAll(version.threads, grace, Math.max(left, END_WAIT_MS));
  const terminated = await terminateAll(version.threads, terminateTimeoutMs);
  const childrenForced = forcedIn(version.threads);
  calls.releaseCallbacks();
  if (outcome === 'closed') version.setState('closed');
  return {
    outcome,
    drained: drained && terminatedCalls === 0 && open === 0,
    inFlightAtClose,
    terminatedCalls,
    abandonedCalls,
    onFree,
    onFreeError,
    terminated,
    durationMs: performance.now() - started,
    childrenEnded: ended + childrenForced,
    childrenForced,
  };
}

/** How long `End` may wait for a worker once the close deadline has passed (or on destroy). */
export const END_WAIT_MS = 250;

function forcedIn(threads: readonly Thread[]): number {
  return threads.reduce((n, thread) => n + thread.children.forced, 0);
}

/**
 * Asks every live worker to flush its output and end its children (`End`), SIGKILL after `graceMs`;
 * waits at most `ms` for the answers (from when they are asked). Resolves with how many children the
 * workers ended. One ending slot (boot-queue.ts) is held meanwhile, at most END_WAIT_MS: End wakes
 * every worker at once.
 */
export async function endAll(threads: readonly Thread[], graceMs: number, ms: number): Promise<number> {
  if (threads.every((thread) => thread.gone)) return 0;
  // A stuck worker holds the slot at most END_WAIT_MS, not the rest of its deadline: others wait behind it.
  const counts = await withEndSlot(() => Promise.all(threads.map((thread) => thread.end(graceMs, ms))), END_WAIT_MS);
  return counts.reduce<number>((n, c) => n + (c ?? 0), 0);
}

/** Runs `onFree` in every worker, within the close deadline; the first error thrown is the one reported. */
async function runOnFree(
  version: Closable,
  limit: Deadline,
): Promise<[CloseReport['onFree'], Error | undefined, open: number]> {
  // Without onFree the worker is not asked (it may be busy with a call given up on): its sockets are not known.
  if (!version.hasOnFree) return ['absent', undefined, 0];
  const round = new FreeRound(version.threads);
  version.freeing = round;
  for (const thread of version.threads) if (!thread.gone) thread.send({ t: Tag.Free, k: 0 });
  const result = await limit.race(
    round.done.then((error) => ({ error })),
    undefined,
  );
  version.freeing = undefined;
  if (result === undefined) return ['timeout', undefined, 0];
  // A worker died or the version was destroyed while onFree ran: it did not finish.
  const state = version.state();
  if (state === 'crashed') return ['threw', version.crash(), 0];
  if (state === 'destroyed') return ['skipped', undefined, 0];
  return result.error === undefined
    ? ['ok', undefined, round.open]
    : ['threw', version.errors.remote(result.error, 'onFree'), round.open];
}

/** One round of `onFree`: done once every worker has answered (or is gone), with the first error. */
export class FreeRound {
  readonly done: Promise<Pack | undefined>;
  readonly #pending: Set<Thread>;
  #error: Pack | undefined;
  #done!: (error: Pack | undefined) => void;
  /** Servers and sockets the workers still had open after onFree. */
  open = 0;

  constructor(threads: readonly Thread[]) {
    this.#pending = new Set(threads);
    this.done = new Promise((resolve) => (this.#done = resolve));
  }

  /** `thread`'s `onFree` finished (`error`: what it threw), or the thread is gone. False when it was not asked. */
  answered(thread: Thread, error: Pack | undefined, open = 0): boolean {
    if (!this.#pending.delete(thread)) return false;
    this.#error ??= error;
    this.open += open;
    if (this.#pending.size === 0) this.#done(this.#error);
    return true;
  }
}

/** Terminates every worker and waits for their exits, at most `ms`. True when all exited. */
export async function terminateAll(threads: readonly Thread[], ms: number): Promise<boolean> {
  const exits = await Promise.all(threads.map((thread) => thread.terminate(ms)));
  return exits.every(Boolean);
}
