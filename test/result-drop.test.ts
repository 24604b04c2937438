// E4: the worker drops its reference to a result once the host received it, even when no other call
// follows (the host acknowledges replies when it has nothing else to send).
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { loadPlugin } from '../src/index.js';
import { tempDir, writePlugin } from './helpers.js';

const SOURCE = `
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
let last;
export function make() {
  const big = Array.from({ length: 10_000 }, (_, i) => ({ i }));
  last = new WeakRef(big);
  return big;
}
export function collected() {
  gc();
  return last.deref() === undefined;
}
`;

describe('results', () => {
  it('E4: a posted result is not kept alive by the worker once the host has it', async () => {
    const plugin = await loadPlugin(writePlugin(tempDir(), 'r-big.mjs', SOURCE));
    expect(await plugin.call('make')).toHaveLength(10_000);
    // One turn: the host's acknowledgement (scheduled when the reply arrived) goes before the next call.
    await nextTurn();
    expect(await plugin.call('collected')).toBe(true);
    await plugin.close();
  });
});
