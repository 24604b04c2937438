/**
 * How a version's worker ends what it started besides its heap, on every path:
 * - close: the host sends `End` after `onFree`; the output is flushed, the children ended (SIGTERM,
 *   SIGKILL after the grace), then `Ended` is answered and the host terminates the worker;
 * - destroy, a sibling thread's crash: the same `End` with no grace;
 * - an uncaught error (or unhandled rejection) with no listener of the plugin's: `Fatal`, the children
 *   ended, then `process.exit(1)` as Node would have;
 * - `process.exit()`: the loop stops after this pass, so the children are SIGKILLed and waited for
 *   synchronously (reaped by the loop's last poll), and output waiting for the window is posted.
 * A worker stuck in a call at the deadline answers nothing: the host kills what it reported.
 */
import { pack } from '../src/shared/envelope.js';
import { EndTag, type StreamId } from '../src/shared/ending-wire.js';
import type { WorkerMessage } from '../src/shared/protocol.js';
import { endChildren, killChildrenNow, threadId, trackChildren } from './children.js';
import { acknowledgeOutput, flushOutput, releaseOutput, routeOutput } from './stdio.js';

// Captured before plugin code runs: it may replace `process` (the X5 fault row).
const proc = process;
const listenerCount = proc.listenerCount.bind(proc);
const exit = proc.exit.bind(proc);

export interface Ending {
  /** Once the module is about to load: tells the host this thread's OS id. */
  announce(): void;
  /** `End`: flush, end the children with `graceMs`, answer `Ended` (a second `End` waits for the first). */
  end(graceMs: number): void;
  /** `OutAck`. */
  acknowledge(stream: StreamId, units: number): void;
}

/**
 * Installs the output transport, the child tracking and the listeners; call before plugin code runs.
 * `post` sends a message as is, `send` after the replies settled before it.
 */
export function installEnding(post: (message: WorkerMessage) => void, send: (message: WorkerMessage) => void): Ending {
  routeOutput((s, c, n) => post({ t: EndTag.Out, s, c, n }));
  trackChildren((pid, detached, alive) => post({ t: EndTag.Child, pid, detached, alive }));
  let fatal = false;
  proc.on('uncaughtException', (error) => {
    // A plugin that listens itself keeps Node's behaviour: it survives.
    if (fatal || listenerCount('uncaughtException') > 1) return;
    fatal = true;
    try {
      send({ t: EndTag.Fatal, error: pack(error) });
    } catch {
      // The host still learns of the crash from the exit.
    }
    void endChildren(0).then(() => exit(1));
  });
  proc.on('exit', () => {
    killChildrenNow();
    releaseOutput();
  });
  let ending: Promise<number> | undefined;
  return {
    announce: () => post({ t: EndTag.Tid, tid: threadId() }),
    end(graceMs) {
      ending ??= flushOutput().then(() => endChildren(graceMs));
      void ending.then((children) => send({ t: EndTag.Ended, children }));
    },
    acknowledge: acknowledgeOutput,
  };
}
