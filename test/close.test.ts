import { describe, expect, it } from 'vitest';
import { FreeRound } from '../src/close.js';
import { loadPlugin } from '../src/index.js';
import type { Thread } from '../src/thread.js';
import { fixture, Gate } from './helpers.js';

type GateApi = typeof import('./fixtures/gate.mjs');

async function gated() {
  const gate = new Gate();
  const plugin = await loadPlugin<GateApi>(fixture('gate.mjs'), { data: { gate: gate.buffer } });
  return { gate, plugin };
}

describe('close()', () => {
  it('C2: lets 50 calls in flight finish, refuses new ones with ERR_PLUGIN_CLOSED, runs onFree, ends the worker', async () => {
    const { gate, plugin } = await gated();
    const calls = Array.from({ length: 50 }, (_, i) => plugin.api.wait(i));
    await gate.entered(50);

    const closing = plugin.close();
    expect(plugin.state).toBe('closing');
    await expect(plugin.api.echo(1)).rejects.toMatchObject({
      code: 'ERR_PLUGIN_CLOSED',
      version: plugin.version,
      method: 'echo',
    });
    expect(plugin.inFlight).toBe(50);

    gate.open();
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const report = await closing;
    expect(report).toMatchObject({
      outcome: 'closed',
      drained: true,
      inFlightAtClose: 50,
      terminatedCalls: 0,
      onFree: 'ok',
      terminated: true,
    });
    expect(gate.freed).toBe(1);
    expect(plugin.state).toBe('closed');
    expect(plugin.inFlight).toBe(0);
    await expect(plugin.call('echo', 1)).rejects.toMatchObject({ code: 'ERR_PLUGIN_CLOSED' });
  });

  it('C3: terminates at the deadline: a never-ending call rejects ERR_PLUGIN_TERMINATED and the report says not drained', async () => {
    const { gate, plugin } = await gated();
    const stuck = expect(plugin.api.forever()).rejects.toMatchObject({
      code: 'ERR_PLUGIN_TERMINATED',
      method: 'forever',
      version: plugin.version,
    });
    await gate.entered(1);
    const report = await plugin.close({ timeoutMs: 50 });
    await stuck;
    expect(report).toMatchObject({
      outcome: 'closed',
      drained: false,
      inFlightAtClose: 1,
      terminatedCalls: 1,
      onFree: 'skipped',
      terminated: true,
    });
    expect(gate.freed).toBe(0);
  });

  it('C7: a second or concurrent close() returns the same promise; close after close resolves with the first report', async () => {
    const { plugin } = await gated();
    const first = plugin.close();
    const second = plugin.close({ timeoutMs: 1 });
    expect(second).toBe(first);
    const report = await first;
    expect(await plugin.close()).toBe(report);
  });

  it('C7: close() called again from a state listener returns the same promise; no call is orphaned', async () => {
    const { gate, plugin } = await gated();
    const stuck = expect(plugin.api.forever()).rejects.toMatchObject({ code: 'ERR_PLUGIN_TERMINATED' });
    await gate.entered(1);
    let fromListener: Promise<unknown> | undefined;
    plugin.once('state', (state) => {
      if (state === 'closing') fromListener = plugin.close();
    });
    const first = plugin.close({ timeoutMs: 50 });
    expect(fromListener).toBe(first);
    expect(await first).toMatchObject({ outcome: 'closed', terminatedCalls: 1 });
    await stuck;
    expect(plugin.inFlight).toBe(0);
  });

  it('C1: closes with nothing in flight', async () => {
    const { plugin } = await gated();
    const states: string[] = [];
    plugin.on('state', (state) => states.push(state));
    const closed = new Promise((resolve) => plugin.once('close', resolve));
    const before = performance.now();
    const report = await plugin.close();
    const after = performance.now();
    expect(report).toMatchObject({ drained: true, inFlightAtClose: 0, terminated: true });
    // The close's own duration lies within the time the caller waited for it.
    expect(report.durationMs).toBeGreaterThanOrEqual(0);
    expect(report.durationMs).toBeLessThanOrEqual(after - before);
    expect(await closed).toBe(report);
    expect(states).toEqual(['closing', 'closed']);
  });

  it('rejects bad close options without changing state', async () => {
    const { plugin } = await gated();
    await expect(plugin.close({ timeoutMs: -1 })).rejects.toMatchObject({
      code: 'ERR_PLUGIN_INVALID_OPTION',
      option: 'closeOptions.timeoutMs',
    });
    await expect(plugin.close({ bogus: 1 } as never)).rejects.toBeInstanceOf(TypeError);
    expect(plugin.state).toBe('ready');
    await plugin.close();
  });

  it('await using closes at the end of the scope', async () => {
    let captured: Awaited<ReturnType<typeof gated>>['plugin'] | undefined;
    {
      await using plugin = (await gated()).plugin;
      captured = plugin;
      expect(await plugin.api.echo('x')).toBe('x');
    }
    expect(captured.state).toBe('closed');
  });
});

describe('a round of onFree', () => {
  // FreeRound only keys its workers by identity: plain objects stand in for them.
  const threads = () => [{}, {}] as unknown as Thread[];

  it('is done once every worker asked has answered, with the first error and the sum of what they left open', async () => {
    const [a, b] = threads() as [Thread, Thread];
    const round = new FreeRound([a, b]);
    let done = false;
    void round.done.then(() => (done = true));
    const first = { e: 'first' } as never;
    expect(round.answered(a, first, 2)).toBe(true);
    // A second answer from the same worker, or one from a worker not asked, is not this round's.
    expect(round.answered(a, undefined, 5)).toBe(false);
    expect(round.answered({} as Thread, undefined, 5)).toBe(false);
    await Promise.resolve();
    expect(done).toBe(false);
    expect(round.answered(b, { e: 'second' } as never, 1)).toBe(true);
    expect(await round.done).toBe(first);
    expect(round.open).toBe(3);
  });

  it('keeps a later error when the first answers were clean', async () => {
    const [a, b] = threads() as [Thread, Thread];
    const round = new FreeRound([a, b]);
    const error = { e: 'late' } as never;
    round.answered(a, undefined);
    round.answered(b, error);
    expect(await round.done).toBe(error);
    expect(round.open).toBe(0);
  });
});
