/**
 * Every test ends with nothing left behind. Counted independently of isoplug's own bookkeeping: an
 * async_hooks hook sees every Worker and MessagePort the test creates, and after each test we wait
 * (bounded, with gc) until each one created during the test is destroyed.
 */
import { createHook } from 'node:async_hooks';
import { afterEach, beforeEach, expect } from 'vitest';
import { soakState } from '../soak/state.js';

const TRACKED = new Set(['WORKER', 'MESSAGEPORT']);
const live = new Map<number, string>();
let createdInTest = new Set<number>();

createHook({
  init(id, type) {
    if (!TRACKED.has(type)) return;
    live.set(id, type);
    createdInTest.add(id);
  },
  destroy(id) {
    live.delete(id);
  },
}).enable();

/** Live Workers and MessagePorts created since the current test started. */
export function leftovers(): { workers: number; ports: number } {
  let workers = 0;
  let ports = 0;
  for (const id of createdInTest) {
    const type = live.get(id);
    if (type === 'WORKER') workers++;
    else if (type === 'MESSAGEPORT') ports++;
  }
  return { workers, ports };
}

/** Waits until nothing created since the test started is alive, at most `attempts` gc+timer turns. */
export async function settleLeftovers(attempts = 200): Promise<{ workers: number; ports: number }> {
  let left = leftovers();
  for (let i = 0; i < attempts && (left.workers > 0 || left.ports > 0); i++) {
    globalThis.gc?.();
    await new Promise((resolve) => setTimeout(resolve, 10));
    left = leftovers();
  }
  return left;
}

beforeEach(() => {
  createdInTest = new Set();
});

afterEach(async () => {
  const left = await settleLeftovers();
  if (left.workers > 0 || left.ports > 0) soakState.leftovers++;
  expect(left).toEqual({ workers: 0, ports: 0 });
});
