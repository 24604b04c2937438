import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { loadPlugin, PluginAbortedError, PluginTimeoutError, type LoadOptions } from '../src/index.js';
import { fixture, Gate, caught } from './helpers.js';

type SpinApi = typeof import('./fixtures/t-spin.mjs');
type LateApi = typeof import('./fixtures/t-late.mjs');

async function spinner(options: LoadOptions = {}) {
  const gate = new Gate();
  const plugin = await loadPlugin<SpinApi>(fixture('t-spin.mjs'), { ...options, data: { gate: gate.buffer } });
  return { gate, plugin };
}

describe('call timeouts', () => {
  it('F8: callTimeoutMs rejects an endless loop ERR_PLUGIN_TIMEOUT; close({ timeoutMs: 100 }) still ends the worker', async () => {
    const { gate, plugin } = await spinner({ callTimeoutMs: 50 });
    const spinning = caught(plugin.api.spin());
    await gate.entered(1);
    // Started later, queued behind the loop: it times out on its own clock.
    const queued = caught(plugin.api.echo('never answered'));
    const error = await spinning;
    expect(error).toBeInstanceOf(PluginTimeoutError);
    expect(error).toMatchObject({ code: 'ERR_PLUGIN_TIMEOUT', timeoutMs: 50, method: 'spin', version: plugin.version });
    expect(await queued).toMatchObject({
      code: 'ERR_PLUGIN_TIMEOUT',
      timeoutMs: 50,
      method: 'echo',
      version: plugin.version,
    });
    expect(plugin.state).toBe('ready');
    expect(plugin.stats).toMatchObject({ calls: 2, failures: 2, inFlight: 0 });

    const report = await plugin.close({ timeoutMs: 100 });
    expect(report).toMatchObject({
      outcome: 'closed',
      inFlightAtClose: 0,
      terminatedCalls: 0,
      abandonedCalls: 2,
      onFree: 'absent',
      terminated: true,
    });
    expect(plugin.state).toBe('closed');
  });

  it('F8: a per-call timeoutMs from with() overrides callTimeoutMs Infinity', async () => {
    const { gate, plugin } = await spinner({ callTimeoutMs: Infinity });
    const view = plugin.with({ timeoutMs: 50 });
    const byApi = caught(view.api.spin());
    const byName = caught(view.call('spin'));
    expect(await byApi).toMatchObject({
      code: 'ERR_PLUGIN_TIMEOUT',
      timeoutMs: 50,
      method: 'spin',
      version: plugin.version,
    });
    expect(await byName).toMatchObject({
      code: 'ERR_PLUGIN_TIMEOUT',
      timeoutMs: 50,
      method: 'spin',
      version: plugin.version,
    });
    await gate.entered(1);

    const report = await plugin.close({ timeoutMs: 100 });
    expect(report).toMatchObject({
      outcome: 'closed',
      inFlightAtClose: 0,
      abandonedCalls: 2,
      onFree: 'absent',
      terminated: true,
    });
  });

  it('a late reply after a timeout is expected, not stray', async () => {
    const gate = new Gate();
    const plugin = await loadPlugin<LateApi>(fixture('t-late.mjs'), { data: { gate: gate.buffer } });
    const timedOut = caught(plugin.with({ timeoutMs: 50 }).api.slow('late'));
    await gate.entered(1);
    expect(await timedOut).toMatchObject({ code: 'ERR_PLUGIN_TIMEOUT', timeoutMs: 50, method: 'slow' });

    gate.open();
    // finished() answers after slow()'s reply was posted on the same channel: that reply has arrived.
    expect(await plugin.api.finished()).toBeUndefined();
    expect(plugin.stats).toMatchObject({ calls: 2, failures: 1, inFlight: 0, strayMessages: 0 });
    // The late reply was matched to the abandoned call, so close no longer counts it as abandoned.
    expect(await plugin.close()).toMatchObject({ outcome: 'closed', abandonedCalls: 0, drained: true });
    expect(plugin.stats.strayMessages).toBe(0);
  });
});

describe('AbortSignal', () => {
  it('F8: aborting mid-call rejects ERR_PLUGIN_ABORTED with the signal reason as cause', async () => {
    const { gate, plugin } = await spinner();
    const controller = new AbortController();
    const spinning = caught(plugin.with({ signal: controller.signal }).api.spin());
    await gate.entered(1);
    expect(plugin.inFlight).toBe(1);

    const reason = new Error('the caller gave up');
    controller.abort(reason);
    const error = await spinning;
    expect(error).toBeInstanceOf(PluginAbortedError);
    expect(error).toMatchObject({ code: 'ERR_PLUGIN_ABORTED', method: 'spin', version: plugin.version });
    expect((error as PluginAbortedError).cause).toBe(reason);
    expect(plugin.inFlight).toBe(0);

    expect(await plugin.close({ timeoutMs: 100 })).toMatchObject({
      outcome: 'closed',
      abandonedCalls: 1,
      terminated: true,
    });
  });

  it('the default abort reason becomes the cause too', async () => {
    const { gate, plugin } = await spinner();
    const controller = new AbortController();
    const spinning = caught(plugin.with({ signal: controller.signal }).call('spin'));
    await gate.entered(1);
    controller.abort();
    const error = await spinning;
    expect(error).toMatchObject({ code: 'ERR_PLUGIN_ABORTED', method: 'spin' });
    expect((error as PluginAbortedError).cause).toBe(controller.signal.reason);
    expect((error as PluginAbortedError).cause).toMatchObject({ name: 'AbortError' });
    await plugin.close({ timeoutMs: 100 });
  });

  it('an already-aborted signal rejects before the call reaches the worker', async () => {
    const { plugin } = await spinner();
    const reason = new Error('aborted before the call');
    const signal = AbortSignal.abort(reason);
    const error = await caught(plugin.with({ signal }).api.spin());
    expect(error).toMatchObject({ code: 'ERR_PLUGIN_ABORTED', method: 'spin', version: plugin.version });
    expect((error as PluginAbortedError).cause).toBe(reason);
    expect(plugin.stats).toMatchObject({ calls: 0, inFlight: 0 });
    expect(getEventListeners(signal, 'abort')).toEqual([]);

    // The worker never ran spin() (it would loop forever): it still answers, and only this call is counted.
    expect(await plugin.api.echo('free')).toBe('free');
    expect(plugin.stats.calls).toBe(1);
    expect(await plugin.close()).toMatchObject({ outcome: 'closed', abandonedCalls: 0, terminated: true });
  });

  it('one signal shared by 20 calls in flight adds one listener (no MaxListeners warning) and aborts all 20', async () => {
    const gate = new Gate();
    const plugin = await loadPlugin<typeof import('./fixtures/gate.mjs')>(fixture('gate.mjs'), {
      data: { gate: gate.buffer },
    });
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    const controller = new AbortController();
    const calls = Array.from({ length: 20 }, (_, i) => caught(plugin.with({ signal: controller.signal }).api.wait(i)));
    await gate.entered(20);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort('request cancelled');
    for (const error of await Promise.all(calls))
      expect(error).toMatchObject({ code: 'ERR_PLUGIN_ABORTED', method: 'wait', cause: 'request cancelled' });
    expect(getEventListeners(controller.signal, 'abort')).toEqual([]);
    expect(plugin.inFlight).toBe(0);
    process.off('warning', onWarning);
    expect(warnings).toEqual([]);
    gate.open();
    await plugin.close();
  });

  it('removes its abort listener when the call resolves, times out or is aborted', async () => {
    const { gate, plugin } = await spinner();
    const controller = new AbortController();
    const { signal } = controller;

    const answered = plugin.with({ signal }).api.echo('x');
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    expect(await answered).toBe('x');
    expect(getEventListeners(signal, 'abort')).toEqual([]);

    const timingOut = caught(plugin.with({ signal, timeoutMs: 50 }).api.spin());
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    expect(await timingOut).toMatchObject({ code: 'ERR_PLUGIN_TIMEOUT' });
    expect(getEventListeners(signal, 'abort')).toEqual([]);
    await gate.entered(1);

    // The worker is still spinning: this call waits behind it until aborted.
    const aborted = caught(plugin.with({ signal }).api.echo('never'));
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    controller.abort();
    expect(await aborted).toMatchObject({ code: 'ERR_PLUGIN_ABORTED', method: 'echo' });
    expect(getEventListeners(signal, 'abort')).toEqual([]);

    expect(await plugin.close({ timeoutMs: 100 })).toMatchObject({
      outcome: 'closed',
      abandonedCalls: 2,
      terminated: true,
    });
  });
});
