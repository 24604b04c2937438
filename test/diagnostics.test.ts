/**
 * What isoplug publishes on node:diagnostics_channel: the `isoplug:call`, `isoplug:load`, `isoplug:swap`
 * and `isoplug:close` tracing channels, and the `isoplug:crash` channel. Subscribed as an APM would,
 * through the public names only.
 */
import { channel, tracingChannel } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { createHotSwap, loadPlugin, type CrashMessage, type Plugin } from '../src/index.js';
import { caught, fixture, Gate } from './helpers.js';

type Phase = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error';
const PHASES: Phase[] = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'];

interface Seen {
  readonly phase: Phase;
  /** The context object as published (the same object for every event of one operation). */
  readonly context: Record<string, unknown>;
  /** Its fields at the time of the event. */
  readonly fields: Record<string, unknown>;
}

const unsubscribes: Array<() => void> = [];
afterEach(() => {
  for (const unsubscribe of unsubscribes.splice(0)) unsubscribe();
});

/** Every event of `tracingChannel(name)` from now until the end of the test. */
function record(name: string): Seen[] {
  const seen: Seen[] = [];
  const trace = tracingChannel(name);
  const handlers = Object.fromEntries(
    PHASES.map((phase) => [
      phase,
      (context: Record<string, unknown>) => seen.push({ phase, context, fields: { ...context } }),
    ]),
  ) as unknown as Record<Phase, (message: unknown) => void>;
  trace.subscribe(handlers);
  unsubscribes.push(() => trace.unsubscribe(handlers));
  return seen;
}

type Basic = { echo(value: unknown): unknown; fail(): never };

describe('isoplug:call', () => {
  it('a call that resolves: start, end, asyncStart, asyncEnd on one context naming plugin, version and method', async () => {
    const seen = record('isoplug:call');
    const plugin = await loadPlugin<Basic>(fixture('c-basic.mjs'), { name: 'basic' });
    try {
      expect(await plugin.api.echo('hi')).toBe('hi');
      expect(seen.map((e) => e.phase)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
      const context = seen[0]!.context;
      expect(seen.every((e) => e.context === context)).toBe(true);
      expect(seen[0]!.fields).toEqual({ pluginName: 'basic', version: plugin.version, method: 'echo' });
      expect(seen[3]!.fields).toMatchObject({ result: 'hi' });
    } finally {
      await plugin.close();
    }
  });

  it('a call that rejects publishes `error` with the rebuilt error before asyncStart and asyncEnd', async () => {
    const seen = record('isoplug:call');
    const plugin = await loadPlugin<Basic>(fixture('c-basic.mjs'));
    try {
      const error = await caught(plugin.api.fail());
      expect(seen.map((e) => e.phase)).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
      expect(seen[2]!.fields.error).toBe(error);
      expect(seen[2]!.fields).toMatchObject({ pluginName: plugin.name, method: 'fail' });
    } finally {
      await plugin.close();
    }
  });

  it('a refused call is traced too, its error coded', async () => {
    const plugin = await loadPlugin<Basic>(fixture('c-basic.mjs'));
    await plugin.close();
    const seen = record('isoplug:call');
    await expect(plugin.api.echo(1)).rejects.toMatchObject({ code: 'ERR_PLUGIN_CLOSED' });
    expect(seen.find((e) => e.phase === 'error')!.fields.error).toMatchObject({ code: 'ERR_PLUGIN_CLOSED' });
    expect(seen.map((e) => e.phase)).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
  });

  it('a call in flight has started and not ended; it ends when it settles', async () => {
    const gate = new Gate();
    const seen = record('isoplug:call');
    const plugin = await loadPlugin<{ wait(value: string): Promise<string> }>(fixture('gate.mjs'), {
      data: { gate: gate.buffer },
    });
    try {
      const call = plugin.api.wait('x');
      await gate.entered(1);
      expect(seen.map((e) => e.phase)).toEqual(['start', 'end']);
      gate.open();
      await call;
      expect(seen.map((e) => e.phase)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    } finally {
      await plugin.close();
    }
  });
});

describe('isoplug:load and isoplug:close', () => {
  it('a load is traced from its start to the loaded plugin, its name and version filled in', async () => {
    const seen = record('isoplug:load');
    const plugin = await loadPlugin(fixture('c-basic.mjs'), { name: 'loaded', threads: 2 });
    try {
      expect(seen.map((e) => e.phase)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
      expect(seen[0]!.fields).toEqual({
        specifier: fixture('c-basic.mjs'),
        pluginName: 'loaded',
        version: undefined,
        threads: 2,
      });
      expect(seen[3]!.fields).toMatchObject({ pluginName: 'loaded', version: plugin.version, result: plugin });
    } finally {
      await plugin.close();
    }
  });

  it('a load that fails publishes `error` with ERR_PLUGIN_LOAD', async () => {
    const seen = record('isoplug:load');
    const error = await caught(loadPlugin(fixture('syntax-error.mjs')));
    expect(error).toMatchObject({ code: 'ERR_PLUGIN_LOAD' });
    expect(seen.map((e) => e.phase)).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    expect(seen[2]!.fields.error).toBe(error);
  });

  it('a close is traced from close() to its report', async () => {
    const plugin = await loadPlugin(fixture('c-basic.mjs'));
    const seen = record('isoplug:close');
    const report = await plugin.close({ timeoutMs: 5000 });
    expect(seen.map((e) => e.phase)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    expect(seen[0]!.fields).toEqual({ pluginName: plugin.name, version: plugin.version, timeoutMs: 5000 });
    expect(seen[3]!.fields.result).toBe(report);
  });
});

describe('isoplug:swap and isoplug:crash', () => {
  it('a swap is traced from its request to its report, with the versions it moved between', async () => {
    const hs = await createHotSwap(fixture('versioned.mjs'), { data: { label: 'v0' }, version: 'v0' });
    try {
      const name = hs.current.name;
      const seen = record('isoplug:swap');
      const loads = record('isoplug:load');
      const report = await hs.swap(fixture('versioned-b.mjs'), { data: { label: 'v1' }, version: 'v1' });
      expect(seen.map((e) => e.phase)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
      expect(seen[0]!.fields).toEqual({
        pluginName: name,
        reason: 'swap',
        specifier: fixture('versioned-b.mjs'),
        from: 'v0',
      });
      expect(seen[3]!.fields.result).toBe(report);
      expect(report).toMatchObject({ from: 'v0', to: 'v1' });
      // The new version's load is traced on its own channel, inside the swap.
      expect(loads.find((e) => e.phase === 'asyncEnd')!.fields).toMatchObject({ version: 'v1' });
    } finally {
      await hs.close();
    }
  });

  it('a crash publishes the version, exit code, state and the crash error', async () => {
    const crashes: CrashMessage[] = [];
    const onCrash = (message: unknown) => crashes.push(message as CrashMessage);
    channel('isoplug:crash').subscribe(onCrash);
    unsubscribes.push(() => channel('isoplug:crash').unsubscribe(onCrash));
    const plugin: Plugin<{ exit(code: number): never }> = await loadPlugin(fixture('f-exit.mjs'));
    const crashed = new Promise((resolve) => plugin.once('crash', resolve));
    await expect(plugin.api.exit(3)).rejects.toMatchObject({ code: 'ERR_PLUGIN_CRASHED' });
    const error = await crashed;
    await plugin.exited;
    expect(crashes).toEqual([{ pluginName: plugin.name, version: plugin.version, exitCode: 3, state: 'ready', error }]);
  });
});
