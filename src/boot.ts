/**
 * Booting a version: the workers (fresh, or a hot swap's standby) get the `Load` message, import the
 * module and run `onLoad`; the version is ready once every worker is. While they boot the workers
 * belong to a `Boot`, which owns their events; a Plugin is made only from a boot that succeeded. The
 * boot queue (boot-queue.ts) is held until every worker has imported the module (`Imported`).
 */
import type { LoadFailedMessage, LoadMessage, ReadyMessage, WorkerMessage } from './shared/protocol.js';
import { Tag } from './shared/protocol.js';
import { DEFAULTS } from './options.js';
import type { Deadline } from './time.js';
import type { Thread, ThreadOwner } from './thread.js';
import { arrayBufferLimit, type VersionErrors } from './version-errors.js';

/** What a boot ended with: the workers ready, or the load error (every worker is then ended). */
export type BootResult =
  | { readonly ok: true; readonly ready: ReadyMessage }
  | {
      readonly ok: false;
      readonly error: Error;
      /**
       * A worker exited before it said anything: it may have died before the load began (a standby
       * already gone), so the same load on fresh workers may succeed.
       */
      readonly silentExit: boolean;
    };

/** What ended a boot: every worker ready, one failed, exited, timed out, or the Load message could not travel. */
type BootOutcome =
  | ReadyMessage
  | LoadFailedMessage
  | { t: 'exit'; cause: unknown; silent: boolean }
  | { t: 'timeout' }
  | { t: 'unsendable'; cause: unknown }
  | { t: 'lost' };

/** The owner of a version's workers while they boot. */
class Boot implements ThreadOwner {
  readonly outcome: Promise<BootOutcome>;
  /** The exit code of the first worker that exited. */
  exitCode: number | undefined;
  #settle!: (outcome: BootOutcome) => void;
  #ready = 0;
  #imported = 0;
  #rejected = false;

  constructor(
    readonly threads: readonly Thread[],
    readonly onImported: () => void,
  ) {
    this.outcome = new Promise((resolve) => (this.#settle = resolve));
  }

  settle(outcome: BootOutcome): void {
    this.#settle(outcome);
  }

  message(thread: Thread, message: WorkerMessage): void {
    if (Array.isArray(message)) return void thread.stray++;
    switch (message.t) {
      case Tag.Ready:
        // One worker's cache rejected is the version's: the report says so.
        if (message.code === 'rejected') this.#rejected = true;
        if (++this.#ready === this.threads.length)
          this.#settle(this.#rejected ? { ...message, code: 'rejected' } : message);
        return;
      case Tag.Imported:
        if (++this.#imported === this.threads.length) this.onImported();
        return;
      case Tag.LoadFailed:
        return this.#settle(message);
      case Tag.OverLimit:
        // Its exit ends the boot.
        return thread.fail(arrayBufferLimit(message.bytes, message.limit));
      default:
        thread.stray++;
    }
  }

  lost(): void {
    this.#settle({ t: 'lost' });
  }

  unsendable(): void {}

  resent(): void {}

  exit(thread: Thread, code: number, cause: unknown): void {
    this.exitCode ??= code;
    this.#settle({ t: 'exit', cause, silent: !thread.heard });
  }
}

/** How long a boot may take: the load's deadline, and the error its passing makes. */
export interface BootLimit {
  readonly deadline: Deadline;
  /** The `ERR_PLUGIN_TIMEOUT` cause when the deadline passes during the boot. */
  timedOut(errors: VersionErrors): Error;
  /** Called once every worker has imported the module (or the boot ended): frees the boot slot. */
  readonly imported: () => void;
}

/**
 * Boots `threads` with `module`: resolves once all are ready, or with the load error. Never rejects.
 * The workers are ended before it resolves, except at the deadline: the load fails then, and they
 * end in the background (one may be blocked). The threads are referenced while they boot (a load
 * keeps the process alive). The first worker is the one asked for the code cache's data
 * (`module.code.harvest`, `code-cache.ts`).
 */
export async function bootThreads(
  threads: readonly Thread[],
  module: Omit<LoadMessage, 't' | 'k'>,
  limit: BootLimit,
  errors: VersionErrors,
): Promise<BootResult> {
  const boot = new Boot(threads, limit.imported);
  threads.forEach((thread, lane) => {
    thread.attach(boot, lane);
    thread.ref(true);
  });
  void limit.deadline.race(boot.outcome, undefined).then((outcome) => {
    if (outcome === undefined) boot.settle({ t: 'timeout' });
  });
  for (const [lane, thread] of threads.entries()) {
    try {
      thread.load(
        lane === 0 || module.code === undefined ? module : { ...module, code: { ...module.code, harvest: false } },
      );
    } catch (error) {
      boot.settle({ t: 'unsendable', cause: error });
      break;
    }
  }
  const outcome = await boot.outcome;
  limit.imported();
  if (outcome.t === Tag.Ready) return { ok: true, ready: outcome };
  let cause: unknown;
  switch (outcome.t) {
    case Tag.LoadFailed:
      cause = errors.remote(outcome.error, outcome.stage);
      break;
    case 'timeout':
      cause = limit.timedOut(errors);
      break;
    case 'unsendable':
      cause = errors.dataUnsendable(outcome.cause);
      break;
    case 'lost':
      cause = errors.dataUnsendable(undefined);
      break;
    case 'exit':
      cause = outcome.cause ?? errors.exitedWhileLoading(boot.exitCode);
  }
  const ended = Promise.all(threads.map((thread) => thread.terminate(DEFAULTS.terminateTimeoutMs)));
  if (outcome.t !== 'timeout') await ended;
  return {
    ok: false,
    error: errors.load(module.url, outcome.t === Tag.LoadFailed ? outcome.stage : undefined, cause),
    silentExit: outcome.t === 'exit' && outcome.silent,
  };
}
