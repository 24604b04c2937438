/**
 * A hot swap's queue (src/swap-queue.ts) on its own: one swap at a time, the latest waiting request wins,
 * `cancel()` rejects the one waiting, and the queue starts again after it went idle. hotswap.test.ts runs
 * the same rules through real versions; here each one is pinned where a change to it shows.
 */
import { describe, expect, it } from 'vitest';
import { SwapQueue } from '../src/swap-queue.js';

interface Request {
  readonly name: string;
  readonly reject: (error: Error) => void;
}

/** A queue whose runs finish when the test says so, with a log of what happened in order. */
function harness() {
  const log: string[] = [];
  const finish = new Map<string, () => void>();
  let running = 0;
  const queue = new SwapQueue<Request>(
    (request) => {
      running++;
      log.push(`run ${request.name}${running > 1 ? ' (overlapping)' : ''}`);
      return new Promise<void>((resolve) =>
        finish.set(request.name, () => {
          running--;
          resolve();
        }),
      );
    },
    () => log.push('ran'),
    () => log.push('idle'),
  );
  const request = (name: string): Request => ({ name, reject: (error) => log.push(`reject ${name}: ${error.name}`) });
  /** Lets run `name` finish, and the queue take its next step. */
  const done = async (name: string) => {
    finish.get(name)!();
    for (let i = 0; i < 3; i++) await Promise.resolve();
  };
  return { queue, log, request, done };
}

class SupersededError extends Error {
  override name = 'Superseded';
}
class CancelledError extends Error {
  override name = 'Cancelled';
}

describe('SwapQueue', () => {
  it('runs a request at once when idle, one at a time, then reports ran and idle', async () => {
    const { queue, log, request, done } = harness();
    queue.push(request('a'), () => new SupersededError());
    expect(log).toEqual(['run a']);
    expect(queue.waiting).toBe(false);
    queue.push(request('b'), () => new SupersededError());
    expect(queue.waiting).toBe(true);
    expect(log).toEqual(['run a']);
    await done('a');
    expect(log).toEqual(['run a', 'ran', 'run b']);
    expect(queue.waiting).toBe(false);
    let stopped = false;
    const pumping = queue.pumping.then(() => (stopped = true));
    await Promise.resolve();
    expect(stopped).toBe(false);
    await done('b');
    await pumping;
    expect(log).toEqual(['run a', 'ran', 'run b', 'ran', 'idle']);
  });

  it('the latest waiting request wins: the one it replaces is rejected with superseded()', async () => {
    const { queue, log, request, done } = harness();
    queue.push(request('a'), () => new SupersededError());
    queue.push(request('b'), () => new SupersededError());
    queue.push(request('c'), () => new SupersededError());
    expect(log).toEqual(['run a', 'reject b: Superseded']);
    await done('a');
    await done('c');
    await queue.pumping;
    expect(log).toEqual(['run a', 'reject b: Superseded', 'ran', 'run c', 'ran', 'idle']);
  });

  it('cancel() rejects the waiting request, which then never runs; with none waiting it does nothing', async () => {
    const { queue, log, request, done } = harness();
    queue.cancel(() => new CancelledError());
    expect(log).toEqual([]);
    queue.push(request('a'), () => new SupersededError());
    queue.push(request('b'), () => new SupersededError());
    queue.cancel(() => new CancelledError());
    expect(queue.waiting).toBe(false);
    queue.cancel(() => new CancelledError());
    await done('a');
    await queue.pumping;
    expect(log).toEqual(['run a', 'reject b: Cancelled', 'ran', 'idle']);
  });

  it('starts again after it went idle', async () => {
    const { queue, log, request, done } = harness();
    queue.push(request('a'), () => new SupersededError());
    await done('a');
    await queue.pumping;
    queue.push(request('b'), () => new SupersededError());
    expect(log).toEqual(['run a', 'ran', 'idle', 'run b']);
    await done('b');
    await queue.pumping;
    expect(log).toEqual(['run a', 'ran', 'idle', 'run b', 'ran', 'idle']);
  });
});
