import { describe, expect, it } from 'vitest';
import { loadPlugin } from '../src/index.js';
import { fixture, Gate } from './helpers.js';

type Guards = typeof import('./fixtures/g-guards.mjs');

describe('size guard: maxPayloadBytes (F11)', () => {
  it('F11: arguments over the limit are refused before posting; the version stays usable', async () => {
    const plugin = await loadPlugin<Guards>(fixture('g-guards.mjs'), { maxPayloadBytes: 64 * 1024 });
    await expect(plugin.api.echo('x'.repeat(100_000))).rejects.toMatchObject({
      code: 'ERR_PLUGIN_PAYLOAD_TOO_LARGE',
      direction: 'argument',
      limitBytes: 64 * 1024,
      method: 'echo',
      version: plugin.version,
    });
    expect(plugin.stats.calls).toBe(0);
    expect(await plugin.api.echo('small')).toBe('small');
    await plugin.close();
  });

  it('F11: a huge object graph (1M objects) is refused by the estimate, which stops early', async () => {
    const plugin = await loadPlugin<Guards>(fixture('g-guards.mjs'), { maxPayloadBytes: 2 ** 20 });
    const graph = Array.from({ length: 1_000_000 }, (_, i) => ({ i }));
    await expect(plugin.api.echo(graph)).rejects.toMatchObject({
      code: 'ERR_PLUGIN_PAYLOAD_TOO_LARGE',
      direction: 'argument',
    });
    const nested: Record<string, unknown> = {};
    let cursor = nested;
    for (let i = 0; i < 200_000; i++) cursor = cursor['a'] = {};
    await expect(plugin.api.echo(nested)).rejects.toMatchObject({ code: 'ERR_PLUGIN_PAYLOAD_TOO_LARGE' });
    await plugin.close();
  });

  it('F11: a result over the limit fails its call, not the version', async () => {
    const plugin = await loadPlugin<Guards>(fixture('g-guards.mjs'), { maxPayloadBytes: 64 * 1024 });
    await expect(plugin.api.bigString(100_000)).rejects.toMatchObject({
      code: 'ERR_PLUGIN_PAYLOAD_TOO_LARGE',
      direction: 'result',
      method: 'bigString',
    });
    expect(await plugin.api.bigString(10)).toBe('x'.repeat(10));
    expect(plugin.inFlight).toBe(0);
    await plugin.close();
  });

  it('rejects a bad limit naming the option', async () => {
    await expect(loadPlugin(fixture('g-guards.mjs'), { maxPayloadBytes: 0 })).rejects.toMatchObject({
      code: 'ERR_PLUGIN_INVALID_OPTION',
      option: 'options.maxPayloadBytes',
    });
    await expect(loadPlugin(fixture('g-guards.mjs'), { maxArrayBufferMb: -1 })).rejects.toMatchObject({
      option: 'options.maxArrayBufferMb',
    });
  });
});

describe('ArrayBuffer guard: maxArrayBufferMb (F7)', () => {
  it('F7: ArrayBuffers past the limit (which resourceLimits does not count) end the version: calls in flight reject ERR_PLUGIN_OOM', async () => {
    const gate = new Gate();
    const plugin = await loadPlugin<Guards>(fixture('g-guards.mjs'), {
      data: { gate: gate.buffer },
      maxArrayBufferMb: 64,
      resourceLimits: { maxOldGenerationSizeMb: 32 },
    });
    const crashed = new Promise((resolve) => plugin.once('crash', resolve));
    const held = plugin.api.hold();
    const outcome = expect(held).rejects.toMatchObject({
      code: 'ERR_PLUGIN_OOM',
      method: 'hold',
      cause: { code: 'ERR_PLUGIN_ARRAYBUFFER_LIMIT' },
    });
    await gate.entered(1);
    expect(await plugin.api.keepArrayBuffer(32)).toBe(1);
    // 128 MB more than the limit: well past 32 MB of heap, which resourceLimits alone would never see.
    await plugin.api.keepArrayBuffer(128).catch(() => {});
    await crashed;
    await outcome;
    expect(plugin.state).toBe('crashed');
    await expect(plugin.api.echo(1)).rejects.toMatchObject({ code: 'ERR_PLUGIN_CRASHED' });
    expect(await plugin.close()).toMatchObject({ outcome: 'crashed' });
  });
});
