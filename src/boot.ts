/**
 * Booting a version: the workers (fresh, or a hot swap's standby) get the `Load` message, import the
 * module and run `onLoad`; the version is ready once every worker is. While they boot the workers
 * belong to a `Boot`, which owns their events; a Plugin is made only from a boot that succeeded. A
 * bounded boot queue (how many versions may boot at once) would wrap `bootThreads`.
 */
import type { LoadFailedMessage, LoadMessage, ReadyMessage, WorkerMessage } from './shared/protocol.js';
import { Tag } from './shared/protocol.js';
import { DEFAULTS } from './options.js';
import { sleep } from './time.js';
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
  #rejected = false;

  constructor(readonly threads: readonly Thread[]) {
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

/**
 * Boots `threads` with `module`: resolves once all are ready, or with the load error once every worker
 * is ended. Never rejects. The threads are referenced while they boot (a load keeps the process alive).
 * The first worker is the one asked for the code cache's data (`module.code.harvest`, `code-cache.ts`).
 */
export async function bootThreads(
  threads: readonly Thread[],
  module: Omit<LoadMessage, 't' | 'k'>,
  readyTimeoutMs: number,
  errors: VersionErrors,
): Promise<BootResult> {
  const boot = new Boot(threads);
  threads.forEach((thread, lane) => {
    thread.attach(boot, lane);
    thread.ref(true);
  });
  const timer = sleep(readyTimeoutMs);
  void timer.promise.then(() => boot.settle({ t: 'timeout' }));
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
  timer.cancel();
  if (outcome.t === Tag.Ready) return { ok: true, ready: outcome };
  let cause: unknown;
  switch (outcome.t) {
    case Tag.LoadFailed:
      cause = errors.remote(outcome.error, outcome.stage);
      break;
    case 'timeout':
      cause = errors.readyTimeout(readyTimeoutMs);
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
  await Promise.all(threads.map((thread) => thread.terminate(DEFAULTS.terminateTimeoutMs)));
  return {
    ok: false,
    error: errors.load(module.url, outcome.t === Tag.LoadFailed ? outcome.stage : undefined, cause),
    silentExit: outcome.t === 'exit' && outcome.silent,
  };
}
