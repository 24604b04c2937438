import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadPlugin, PluginDestroyedError, type CloseReport } from '../src/index.js';
import { fixture, Gate, caught, tempDir, writePlugin } from './helpers.js';

type GateApi = typeof import('./fixtures/gate.mjs');
type EchoApi = typeof import('./fixtures/echo.mjs');
type ExitApi = typeof import('./fixtures/f-exit.mjs');
type OnFreeApi = typeof import('./fixtures/d-onfree-throws.mjs');

const PENDING = Symbol('pending');

/** What `promise` rejects with if it settles before the event loop turns once (a refused call never waits on the worker). */
async function rejectedAtOnce(promise: Promise<unknown>): Promise<unknown> {
  const turn = new Promise<typeof PENDING>((resolve) => setImmediate(() => resolve(PENDING)));
  return Promise.race([caught(promise), turn]);
}

async function gated() {
  const gate = new Gate();
  const plugin = await loadPlugin<GateApi>(fixture('gate.mjs'), { data: { gate: gate.buffer } });
  return { gate, plugin };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('destroy()', () => {
  it('C5: rejects every call in flight ERR_PLUGIN_DESTROYED with the reason as cause, at once, and ends the worker', async () => {
    const { gate, plugin } = await gated();
    const states: string[] = [];
    plugin.on('state', (state) => states.push(state));
    const calls = Array.from({ length: 5 }, (_, i) => caught(plugin.api.wait(i)));
    await gate.entered(5);

    const reason = new Error('shutting down now');
    const destroyed = plugin.destroy(reason);
    expect(plugin.state).toBe('destroyed');
    expect(plugin.inFlight).toBe(0);
    for (const error of await Promise.all(calls)) {
      expect(error).toBeInstanceOf(PluginDestroyedError);
      expect(error).toMatchObject({ code: 'ERR_PLUGIN_DESTROYED', version: plugin.version, method: 'wait' });
      expect((error as PluginDestroyedError).cause).toBe(reason);
    }
    await destroyed;
    // Terminated, not exited on its own: exit code 1.
    expect(await plugin.exited).toBe(1);
    expect(gate.freed).toBe(0);

    const accepted = plugin.stats.calls;
    const later = await caught(plugin.api.echo(1));
    expect(later).toMatchObject({ code: 'ERR_PLUGIN_DESTROYED', version: plugin.version, method: 'echo' });
    expect((later as PluginDestroyedError).cause).toBe(reason);
    expect(plugin.stats.calls).toBe(accepted);

    // A second destroy is harmless and keeps the first reason.
    await plugin.destroy(new Error('again'));
    expect(plugin.state).toBe('destroyed');
    expect(((await caught(plugin.call('echo', 2))) as PluginDestroyedError).cause).toBe(reason);
    expect(states).toEqual(['destroyed']);
  });

  it('destroy during close: the calls reject ERR_PLUGIN_DESTROYED and close() resolves with outcome destroyed', async () => {
    const { gate, plugin } = await gated();
    const calls = Array.from({ length: 3 }, (_, i) => caught(plugin.api.wait(i)));
    await gate.entered(3);
    const closeEvents: CloseReport[] = [];
    plugin.on('close', (report) => closeEvents.push(report));

    const closing = plugin.close();
    expect(plugin.state).toBe('closing');
    const reason = new Error('no time to drain');
    await plugin.destroy(reason);
    for (const error of await Promise.all(calls)) {
      expect(error).toMatchObject({ code: 'ERR_PLUGIN_DESTROYED', method: 'wait' });
      expect((error as PluginDestroyedError).cause).toBe(reason);
    }
    const report = await closing;
    expect(report).toMatchObject({
      outcome: 'destroyed',
      inFlightAtClose: 3,
      terminatedCalls: 0,
      onFree: 'skipped',
      terminated: true,
    });
    expect(plugin.state).toBe('destroyed');
    expect(gate.freed).toBe(0);
    expect(closeEvents).toEqual([report]);
  });

  it('close after destroy resolves with outcome destroyed', async () => {
    const { gate, plugin } = await gated();
    await plugin.destroy();
    const report = await plugin.close();
    expect(report).toMatchObject({ outcome: 'destroyed', inFlightAtClose: 0, onFree: 'skipped', terminated: true });
    expect(plugin.state).toBe('destroyed');
    expect(gate.freed).toBe(0);
    await expect(plugin.api.echo(1)).rejects.toMatchObject({ code: 'ERR_PLUGIN_DESTROYED', method: 'echo' });
  });

  it('C7: two concurrent close() calls then destroy give one outcome and no throw', async () => {
    const { gate, plugin } = await gated();
    const call = caught(plugin.api.wait(1));
    await gate.entered(1);
    const closeEvents: CloseReport[] = [];
    plugin.on('close', (report) => closeEvents.push(report));

    const first = plugin.close();
    const second = plugin.close();
    expect(second).toBe(first);
    await plugin.destroy('enough');
    expect(await call).toMatchObject({ code: 'ERR_PLUGIN_DESTROYED', cause: 'enough' });
    const report = await first;
    expect(report).toMatchObject({ outcome: 'destroyed', terminated: true });
    expect(await second).toBe(report);
    expect(await plugin.close()).toBe(report);
    expect(closeEvents).toEqual([report]);
    expect(plugin.state).toBe('destroyed');
  });

  it('C7: close twice then destroy terminates the worker once', async () => {
    const terminate = vi.spyOn(Worker.prototype, 'terminate');
    const { gate, plugin } = await gated();
    const call = caught(plugin.api.wait(1));
    await gate.entered(1);

    const closing = [plugin.close(), plugin.close()];
    await plugin.destroy();
    await call;
    await Promise.all(closing);
    expect(terminate).toHaveBeenCalledTimes(1);
  });

  it('C10: an onFree that throws does not stop close; the report carries its error and code', async () => {
    const plugin = await loadPlugin<OnFreeApi>(fixture('d-onfree-throws.mjs'));
    expect(await plugin.api.echo(1)).toBe(1);
    const report = await plugin.close();
    expect(report).toMatchObject({ outcome: 'closed', drained: true, onFree: 'threw', terminated: true });
    expect(report.onFreeError).toBeInstanceOf(Error);
    expect(report.onFreeError).toMatchObject({
      code: 'E_FREE_FAILED',
      plugin: { version: plugin.version, method: 'onFree' },
    });
    expect(plugin.state).toBe('closed');
  });

  it('C10: an onFree that never resolves: close({ timeoutMs: 100 }) completes and reports onFree timeout', async () => {
    const plugin = await loadPlugin<OnFreeApi>(fixture('d-onfree-hangs.mjs'));
    expect(await plugin.api.echo(1)).toBe(1);
    const report = await plugin.close({ timeoutMs: 100 });
    expect(report).toMatchObject({
      outcome: 'closed',
      onFree: 'timeout',
      onFreeError: undefined,
      terminatedCalls: 0,
      terminated: true,
    });
    expect(plugin.state).toBe('closed');
  });

  it('C10: destroy() while a close waits on a hanging onFree: the close reports onFree skipped, outcome destroyed', async () => {
    const plugin = await loadPlugin(
      writePlugin(
        tempDir(),
        'free-hangs.mjs',
        `export const ok = () => 1;\nexport function onFree() { console.log('in onFree'); return new Promise(() => {}); }\n`,
      ),
      { output: 'pipe' },
    );
    plugin.stderr!.resume();
    // The line arrives once onFree runs: then the close is waiting on it.
    const inOnFree = new Promise<void>((resolve) =>
      plugin.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('in onFree') && resolve()),
    );
    const closing = plugin.close({ timeoutMs: 60_000 });
    await inOnFree;
    await plugin.destroy();
    expect(await closing).toMatchObject({ outcome: 'destroyed', onFree: 'skipped' });
  });

  it('F13: calls after close, after destroy and after a crash reject at once with their own codes', async () => {
    const closed = await loadPlugin<EchoApi>(fixture('echo.mjs'));
    const destroyed = await loadPlugin<EchoApi>(fixture('echo.mjs'));
    const crashed = await loadPlugin<ExitApi>(fixture('f-exit.mjs'));
    await closed.close();
    const reason = new Error('gone');
    await destroyed.destroy(reason);
    await expect(crashed.api.exit(3)).rejects.toMatchObject({ code: 'ERR_PLUGIN_CRASHED', exitCode: 3 });
    expect(crashed.state).toBe('crashed');

    const cases = [
      {
        plugin: closed,
        code: 'ERR_PLUGIN_CLOSED',
        calls: [() => closed.api.echo(1), () => closed.call('add', 1, 2), () => closed.with({}).api.later(1, 'x')],
      },
      {
        plugin: destroyed,
        code: 'ERR_PLUGIN_DESTROYED',
        calls: [() => destroyed.api.echo(1), () => destroyed.call('add', 1, 2), () => destroyed.with({}).api.loaded()],
      },
      {
        plugin: crashed,
        code: 'ERR_PLUGIN_CRASHED',
        calls: [
          () => crashed.api.enter(),
          () => crashed.call('exit', 1),
          () => crashed.with({ timeoutMs: 10 }).api.enter(),
        ],
      },
    ] as const;
    for (const { plugin, code, calls } of cases) {
      const accepted = plugin.stats.calls;
      for (const call of calls) {
        const error = await rejectedAtOnce(call());
        expect(error).toMatchObject({ code, version: plugin.version });
      }
      expect(plugin.stats).toMatchObject({ calls: accepted, inFlight: 0 });
    }
    expect(((await caught(destroyed.api.echo(1))) as PluginDestroyedError).cause).toBe(reason);
    expect(await crashed.close()).toMatchObject({ outcome: 'crashed' });
  });
});
