import { describe, expect, it } from 'vitest';
import { loadPlugin, proxy } from '../src/index.js';
import { fifo, fixture, Gate } from './helpers.js';
import { leftovers, settleUntil } from './setup/leaks.js';

describe('hostile plugins', () => {
  it('X3: cannot reach the private port; forged replies on parentPort resolve nobody and are counted', async () => {
    const gate = new Gate();
    const plugin = await loadPlugin<typeof import('./fixtures/x-forger.mjs')>(fixture('x-forger.mjs'), {
      data: { gate: gate.buffer },
    });
    // Best effort against accidents: not in workerData, not among listed handles, not the async resource of a call.
    expect(await plugin.api.privatePortVisible()).toEqual({ workerData: false, handles: false, asyncResource: false });
    const held = plugin.api.hold();
    await gate.entered(1);
    expect(await plugin.api.forge(100)).toBe(100);
    // Forged messages arrive before the reply to forge() on the ordered channel? They use another
    // channel, so wait for the count rather than assume an order.
    while (plugin.stats.strayMessages < 200) await new Promise((resolve) => setImmediate(resolve));
    expect(plugin.inFlight).toBe(1);
    gate.open();
    expect(await held).toBe('real');
    expect(plugin.stats.failures).toBe(0);
    await plugin.close();
  });

  it('X5: a plugin that overwrites its globals and prototypes leaves the host and the reply path intact', async () => {
    const plugin = await loadPlugin<typeof import('./fixtures/x-vandal.mjs')>(fixture('x-vandal.mjs'));
    expect(await plugin.api.vandalize()).toBe('done');
    expect(await plugin.api.echo([1, 2, 3])).toEqual([1, 2, 3]);
    // Sync and async replies, alone and batched (Array.prototype.push/slice, Promise.prototype.then,
    // Promise species, Map.prototype.get, queueMicrotask and AsyncResource are all replaced in the worker).
    expect(await plugin.api.later('async')).toBe('async');
    expect(
      await Promise.all([plugin.api.echo(1), plugin.api.later(2), plugin.api.echo(3), plugin.api.later(4)]),
    ).toEqual([1, 2, 3, 4]);
    expect(await plugin.api.probe()).toEqual({ polluted: 'yes', hasProcess: false });
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect([1].map((x) => x + 1)).toEqual([2]);
    expect(await plugin.close()).toMatchObject({ outcome: 'closed', terminated: true, onFree: 'ok' });
  });

  it('C8: a host callback that calls the closing plugin again is refused ERR_PLUGIN_CLOSED; the drain ends, no deadlock', async () => {
    type Api = typeof import('./fixtures/x-callbacks.mjs');
    const plugin = await loadPlugin<Api>(fixture('x-callbacks.mjs'));
    let reentry: unknown;
    let entered!: () => void;
    const inCallback = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const call = plugin.api.callBack(
      proxy(async (value: number) => {
        entered();
        await released;
        reentry = await plugin.api.keep(proxy(() => 0)).catch((error: unknown) => error);
        return value * 2;
      }),
      21,
    );
    await inCallback;
    const closing = plugin.close({ timeoutMs: 5_000 });
    release();
    expect(await call).toBe(42);
    expect(reentry).toMatchObject({ code: 'ERR_PLUGIN_CLOSED' });
    expect(await closing).toMatchObject({ drained: true, outcome: 'closed' });
  });

  it('C9/X4: 10,000 callbacks kept by the plugin are released at close', async () => {
    type Api = typeof import('./fixtures/x-callbacks.mjs');
    const plugin = await loadPlugin<Api>(fixture('x-callbacks.mjs'));
    const counts = await Promise.all(
      Array.from({ length: 10_000 }, (_, i) => plugin.api.keep(proxy((v: number) => v + i))),
    );
    expect(Math.max(...counts)).toBe(10_000);
    expect(await plugin.api.callKept(9_999, 1)).toBe(10_000);
    expect(leftovers().ports).toBeGreaterThanOrEqual(10_000);
    await plugin.close();
    // The setup file's afterEach checks that every port created here is gone.
  });

  it('C9/X4: callbacks kept by a version whose worker is still blocked in a system call are released when close() resolves (terminated: false)', async () => {
    const gate = new Gate();
    const plugin = await loadPlugin<typeof import('./fixtures/f-syscall.mjs')>(fixture('f-syscall.mjs'), {
      data: { gate: gate.buffer },
    });
    const baseline = leftovers().ports;
    const counts = await Promise.all(Array.from({ length: 100 }, (_, i) => plugin.api.keep(proxy(() => i))));
    expect(Math.max(...counts)).toBe(100);
    expect(leftovers().ports).toBeGreaterThanOrEqual(baseline + 100);
    const pipe = fifo();
    const blocked = plugin.api.block(pipe.path).catch((error: unknown) => error);
    await gate.entered(1);
    let exited = false;
    void plugin.exited.then(() => (exited = true));
    expect(await plugin.close({ timeoutMs: 0, terminateTimeoutMs: 50 })).toMatchObject({ terminated: false });
    // The worker lives on, so Node has not closed the callbacks' channels: isoplug must have.
    expect((await settleUntil(({ ports }) => ports <= baseline)).ports).toBeLessThanOrEqual(baseline);
    expect(exited).toBe(false);
    pipe.release();
    expect(await blocked).toMatchObject({ code: 'ERR_PLUGIN_TERMINATED' });
    expect(await plugin.exited).toBe(1);
  });

  it('X2: a callback cannot be walked, constructed, or used to create more endpoints', async () => {
    type Api = typeof import('./fixtures/x-walker.mjs');
    const plugin = await loadPlugin<Api>(fixture('x-walker.mjs'));
    const results = await plugin.api.walk(proxy(() => 'called'));
    expect(results).toEqual({
      call: 'called',
      ctor: 'refused',
      construct: 'refused',
      set: 'refused',
      get: 'refused',
      endpoint: 'refused',
    });
    expect((globalThis as Record<string, unknown>)['__pwned']).toBeUndefined();
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    await plugin.close();
  });
});
