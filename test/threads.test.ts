/**
 * `threads: N`: one version runs in N workers (isolates) of the same module. Each call goes to the
 * thread with the fewest calls in flight (ties to the lowest index); close, crash and destroy act on
 * every thread at once. Synchronization is through the shared-memory gate of n-gate.mjs (calls enter,
 * the test opens the gate to a level) and through events and promises, never through time.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createHotSwap,
  loadPlugin,
  PluginCrashedError,
  PluginDestroyedError,
  PluginManager,
  type LoadOptions,
  type PluginManagerOptions,
} from '../src/index.js';
import { caught, fixture, Gate, tempDir } from './helpers.js';
import { install } from './manager-helpers.js';
import { leftovers, settleLeftovers } from './setup/leaks.js';

type NGate = typeof import('./fixtures/n-gate.mjs');
type Refuse = typeof import('./fixtures/n-refuse.mjs');
const N = fixture('n-gate.mjs');

/** n-gate.mjs loaded in `threads` threads, with its gate and its shared counters (onLoad runs, the thread that exited). */
async function threaded(threads: number, extra: LoadOptions = {}) {
  const gate = new Gate();
  const counters = new Int32Array(new SharedArrayBuffer(8));
  const plugin = await loadPlugin<NGate>(N, {
    threads,
    data: { gate: gate.buffer, counters: counters.buffer },
    ...extra,
  });
  return { gate, counters, plugin };
}

/** The thread ids of a version, as a pair (every test here uses two threads unless it says otherwise). */
function pair(plugin: { readonly threadIds: readonly number[] }): [number, number] {
  const [t0, t1] = plugin.threadIds;
  expect(typeof t0).toBe('number');
  expect(typeof t1).toBe('number');
  return [t0!, t1!];
}

describe('threads: validation', () => {
  const bad: Array<[label: string, threads: unknown, kind: typeof TypeError | typeof RangeError]> = [
    ["'2' (not a number)", '2', TypeError],
    ['null (not a number)', null, TypeError],
    ['true (not a number)', true, TypeError],
    ['1.5 (not an integer)', 1.5, RangeError],
    ['Infinity (not an integer)', Infinity, RangeError],
    ['NaN (not a number)', Number.NaN, TypeError],
    ['0 (below 1)', 0, RangeError],
    ['-1 (below 1)', -1, RangeError],
    ['65 (above 64)', 65, RangeError],
  ];

  it.each(bad)(
    'threads: %s rejects ERR_PLUGIN_INVALID_OPTION naming options.threads, never throws synchronously, starts no worker',
    async (_label, threads, kind) => {
      let returned: unknown;
      expect(() => {
        returned = loadPlugin(N, { threads } as never);
      }).not.toThrow();
      expect(returned).toBeInstanceOf(Promise);
      const error = await caught(returned as Promise<unknown>);
      expect(error).toMatchObject({ code: 'ERR_PLUGIN_INVALID_OPTION', option: 'options.threads' });
      expect(error).toBeInstanceOf(kind);
      expect(leftovers()).toEqual({ workers: 0, ports: 0 });
    },
  );

  it('createHotSwap() validates threads like loadPlugin(); so does swap(), and the current version keeps serving', async () => {
    await expect(createHotSwap(N, { threads: 0 })).rejects.toMatchObject({
      code: 'ERR_PLUGIN_INVALID_OPTION',
      option: 'options.threads',
    });
    await expect(createHotSwap(N, { threads: 'two' as never })).rejects.toBeInstanceOf(TypeError);
    const hs = await createHotSwap<NGate>(N, { data: { label: 'v0' } });
    const swapped = await caught(hs.swap(N, { threads: 1.5 }));
    expect(swapped).toMatchObject({
      code: 'ERR_PLUGIN_INVALID_OPTION',
      option: expect.stringMatching(/(^|\.)threads$/),
    });
    expect(swapped).toBeInstanceOf(RangeError);
    expect(hs.state).toBe('ready');
    expect(await hs.api.label()).toBe('v0');
    await hs.close();
  });
});

describe('threads: loading', () => {
  it('defaults to one thread: threads is 1 and threadIds is [threadId]; threads: 1 is the same', async () => {
    const implicit = await loadPlugin<NGate>(N);
    const explicit = await loadPlugin<NGate>(N, { threads: 1 });
    try {
      for (const plugin of [implicit, explicit]) {
        expect(plugin.threads).toBe(1);
        expect(plugin.threadIds).toEqual([plugin.threadId]);
        expect(await plugin.api.thread()).toBe(plugin.threadId);
      }
    } finally {
      await Promise.all([implicit.close(), explicit.close()]);
    }
  });

  it('threads: 2 runs the module in two isolates, each running onLoad(data) on its own, and is ready once both are', async () => {
    const { counters, plugin } = await threaded(2);
    try {
      expect(plugin.state).toBe('ready');
      expect(plugin.threads).toBe(2);
      const [t0, t1] = pair(plugin);
      expect(t0).not.toBe(t1);
      expect(plugin.threadId).toBe(t0);
      // Both onLoads ran before loadPlugin resolved.
      expect(Atomics.load(counters, 0)).toBe(2);
      expect([...plugin.methods].sort()).toEqual(['exit', 'forever', 'hold', 'label', 'thread']);
    } finally {
      await plugin.close();
    }
  });

  it('three threads: three distinct isolates, three onLoads', async () => {
    const { counters, plugin } = await threaded(3);
    try {
      expect(plugin.threads).toBe(3);
      expect(new Set(plugin.threadIds).size).toBe(3);
      expect(Atomics.load(counters, 0)).toBe(3);
    } finally {
      await plugin.close();
    }
  });

  it.each([
    // The failing onLoad is the second to run: both threads got as far as onLoad (2 runs).
    ['onLoad throws', 'throw', {}, { code: 'E_N_REFUSED' }, 2],
    ['the worker exits in onLoad', 'exit', {}, { code: 'ERR_PLUGIN_CRASHED', exitCode: 4 }, 2],
    // Both threads must reach onLoad before the ready timeout fires, or the fault was never injected:
    // room for a slow boot of two workers on a loaded machine.
    ['onLoad never settles (readyTimeoutMs)', 'hang', { readyTimeoutMs: 3_000 }, { code: 'ERR_PLUGIN_TIMEOUT' }, 2],
  ])(
    'N1: when one of two threads fails to load (%s), loadPlugin rejects ERR_PLUGIN_LOAD and no worker is left',
    async (_label, mode, extra, cause, runs) => {
      const counters = new Int32Array(new SharedArrayBuffer(4));
      const error = await caught(
        loadPlugin<Refuse>(fixture('n-refuse.mjs'), {
          threads: 2,
          data: { mode, counters: counters.buffer },
          ...extra,
        }),
      );
      expect(error).toMatchObject({ code: 'ERR_PLUGIN_LOAD', pluginName: 'n-refuse', cause });
      expect(Atomics.load(counters, 0)).toBe(runs);
      // The thread that loaded fine is terminated too (the after-each check would also catch it; said here because it is the point).
      expect(await settleLeftovers()).toEqual({ workers: 0, ports: 0 });
    },
  );
});

describe('threads: dispatch', () => {
  it('calls awaited one after the other all go to the first thread (nothing in flight: the tie goes to the lowest index)', async () => {
    const { plugin } = await threaded(2);
    try {
      const [t0] = pair(plugin);
      for (let i = 0; i < 5; i++) expect(await plugin.api.thread()).toBe(t0);
    } finally {
      await plugin.close();
    }
  });

  it('two calls both still running land on different threads', async () => {
    const { gate, plugin } = await threaded(2);
    try {
      const [t0, t1] = pair(plugin);
      const both = [plugin.api.hold(1), plugin.api.hold(1)];
      await gate.entered(2);
      gate.open(1);
      expect(await Promise.all(both)).toEqual([t0, t1]);
    } finally {
      await plugin.close();
    }
  });

  it('each call goes to the thread with the fewest calls in flight, not round-robin; inFlight and stats count every thread', async () => {
    const { gate, plugin } = await threaded(2);
    try {
      const [t0, t1] = pair(plugin);
      // In flight per thread after each call, [t0, t1]:
      const a = plugin.api.hold(1); // [1, 0]
      const b = plugin.api.hold(2); // [1, 1]
      const c = plugin.api.hold(1); // [2, 1]  tie → lowest index
      const d = plugin.api.hold(2); // [2, 2]
      await gate.entered(4);
      expect(plugin.inFlight).toBe(4);
      expect(plugin.stats).toMatchObject({ calls: 4, inFlight: 4, failures: 0 });

      gate.open(1); // a and c (both on t0) return; b and d (on t1) keep running.
      expect(await Promise.all([a, c])).toEqual([t0, t0]);
      expect(plugin.inFlight).toBe(2);
      expect(await plugin.call('thread')).toBe(t0); // [0, 2] → t0
      const e = plugin.api.hold(3); // [1, 2]
      const f = plugin.api.hold(3); // [2, 2]
      const g = plugin.api.hold(3); // [3, 2]  tie → lowest index
      const h = plugin.api.hold(3); // [3, 3]
      await gate.entered(8);
      expect(plugin.inFlight).toBe(6);
      expect(plugin.stats).toMatchObject({ calls: 9, inFlight: 6 });

      gate.open(3);
      expect(await Promise.all([b, d, e, f, g, h])).toEqual([t1, t1, t0, t0, t0, t1]);
      expect(plugin.inFlight).toBe(0);
      expect(plugin.stats).toMatchObject({ calls: 9, inFlight: 0, failures: 0 });
    } finally {
      await plugin.close();
    }
  });
});

describe('threads: dispatch after a call is given up on', () => {
  it('N4: a call given up on (aborted) still occupies its thread until its late reply: the next call goes to the free thread', async () => {
    const { gate, plugin } = await threaded(2);
    try {
      const [t0, t1] = pair(plugin);
      const controller = new AbortController();
      const stuck = plugin.with({ signal: controller.signal }).api.hold(2); // on t0, keeps running after the abort
      await gate.entered(1);
      controller.abort(new Error('caller gave up'));
      expect(await caught(stuck)).toMatchObject({ code: 'ERR_PLUGIN_ABORTED' });
      expect(plugin.inFlight).toBe(0);
      // t0 is still running hold(2): both calls below go to t1, which is free.
      expect(await plugin.api.thread()).toBe(t1);
      expect(await plugin.api.thread()).toBe(t1);
      gate.open(2);
      // Its late reply frees t0: from then on a call goes there again (the tie goes to the lowest index).
      // Calls go to t1 until that reply is in; each is awaited, so this waits on the reply, not on time.
      let served = await plugin.api.thread();
      while (served !== t0) served = await plugin.api.thread();
      expect(plugin.inFlight).toBe(0);
    } finally {
      await plugin.close();
    }
  });
});

describe('threads: close and destroy', () => {
  it('N3: close() refuses new calls, drains the calls in flight on every thread, runs onFree in every thread, then ends every worker', async () => {
    const { gate, plugin } = await threaded(2);
    const [t0, t1] = pair(plugin);
    const calls = Array.from({ length: 6 }, () => plugin.api.hold(1));
    await gate.entered(6);

    const closing = plugin.close();
    expect(plugin.state).toBe('closing');
    await expect(plugin.api.thread()).rejects.toMatchObject({
      code: 'ERR_PLUGIN_CLOSED',
      version: plugin.version,
      method: 'thread',
    });
    expect(plugin.inFlight).toBe(6);

    gate.open(1);
    expect(await Promise.all(calls)).toEqual([t0, t1, t0, t1, t0, t1]);
    const report = await closing;
    expect(report).toMatchObject({
      outcome: 'closed',
      drained: true,
      inFlightAtClose: 6,
      terminatedCalls: 0,
      onFree: 'ok',
      terminated: true,
    });
    expect(gate.freed).toBe(2);
    expect(plugin.state).toBe('closed');
    expect(plugin.inFlight).toBe(0);
    expect(await plugin.exited).toBe(1);
    await expect(plugin.call('thread')).rejects.toMatchObject({ code: 'ERR_PLUGIN_CLOSED' });
  });

  it('close() with nothing in flight runs onFree once per thread', async () => {
    const { gate, plugin } = await threaded(3);
    expect(await plugin.close()).toMatchObject({
      outcome: 'closed',
      drained: true,
      inFlightAtClose: 0,
      onFree: 'ok',
      terminated: true,
    });
    expect(gate.freed).toBe(3);
    expect(await plugin.exited).toBe(1);
  });

  it('N3: at the close deadline the calls still running on every thread reject ERR_PLUGIN_TERMINATED', async () => {
    const { gate, plugin } = await threaded(2);
    const stuck = [caught(plugin.api.forever()), caught(plugin.api.forever())];
    await gate.entered(2);
    const report = await plugin.close({ timeoutMs: 50 });
    for (const error of await Promise.all(stuck)) {
      expect(error).toMatchObject({ code: 'ERR_PLUGIN_TERMINATED', method: 'forever', version: plugin.version });
    }
    expect(report).toMatchObject({
      outcome: 'closed',
      drained: false,
      inFlightAtClose: 2,
      terminatedCalls: 2,
      onFree: 'skipped',
      terminated: true,
    });
    expect(gate.freed).toBe(0);
    expect(await plugin.exited).toBe(1);
  });

  it('a call that drained on one thread resolves; the one still running on the other rejects ERR_PLUGIN_TERMINATED at the deadline', async () => {
    const { gate, plugin } = await threaded(2);
    const [t0] = pair(plugin);
    const drains = plugin.api.hold(1); // t0
    const stuck = caught(plugin.api.forever()); // t1
    await gate.entered(2);

    const closing = plugin.close();
    gate.open(1);
    expect(await drains).toBe(t0);
    // A sooner deadline brings the close forward: now.
    const report = await plugin.close({ timeoutMs: 0 });
    expect(await closing).toBe(report);
    expect(await stuck).toMatchObject({ code: 'ERR_PLUGIN_TERMINATED', method: 'forever', version: plugin.version });
    expect(report).toMatchObject({
      outcome: 'closed',
      drained: false,
      inFlightAtClose: 2,
      terminatedCalls: 1,
      terminated: true,
    });
    expect(plugin.state).toBe('closed');
  });

  it('destroy() rejects the calls in flight on every thread ERR_PLUGIN_DESTROYED with the reason, at once, and ends every worker', async () => {
    const { gate, plugin } = await threaded(2);
    const calls = Array.from({ length: 4 }, () => caught(plugin.api.hold(1)));
    await gate.entered(4);

    const reason = new Error('shutting down now');
    const destroyed = plugin.destroy(reason);
    expect(plugin.state).toBe('destroyed');
    expect(plugin.inFlight).toBe(0);
    for (const error of await Promise.all(calls)) {
      expect(error).toBeInstanceOf(PluginDestroyedError);
      expect(error).toMatchObject({ code: 'ERR_PLUGIN_DESTROYED', version: plugin.version, method: 'hold' });
      expect((error as PluginDestroyedError).cause).toBe(reason);
    }
    await destroyed;
    expect(await plugin.exited).toBe(1);
    expect(gate.freed).toBe(0);
    await expect(plugin.api.thread()).rejects.toMatchObject({ code: 'ERR_PLUGIN_DESTROYED' });
    expect(await plugin.close()).toMatchObject({ outcome: 'destroyed', onFree: 'skipped', terminated: true });
  });
});

describe('threads: a crash of one thread crashes the version', () => {
  // Errors thrown or rejected anywhere in this process while a test runs (the host must see none).
  let hostErrors: unknown[] = [];
  const onHostError = (error: unknown) => hostErrors.push(error);
  beforeEach(() => {
    hostErrors = [];
    process.on('uncaughtException', onHostError);
    process.on('unhandledRejection', onHostError);
  });
  afterEach(() => {
    process.off('uncaughtException', onHostError);
    process.off('unhandledRejection', onHostError);
    expect(hostErrors).toEqual([]);
  });

  it.each([
    // Held calls before exit(): [t0, t1] → exit() goes to t0 (tie); [t0, t1, t0] → exit() goes to t1.
    ['the first thread', 0, 2],
    ['the second thread', 1, 3],
  ])(
    'N2: process.exit(3) in %s: state crashed, one crash event, every call in flight on every thread rejects ERR_PLUGIN_CRASHED, every worker ends',
    async (_label, lane, held) => {
      const { gate, counters, plugin } = await threaded(2);
      const threadIds = pair(plugin);
      const seen: PluginCrashedError[] = [];
      plugin.on('crash', (error) => seen.push(error));
      const first = new Promise<PluginCrashedError>((resolve) => plugin.once('crash', resolve));
      const waiting = Array.from({ length: held }, () => caught(plugin.api.hold(1)));
      await gate.entered(held);

      const exiting = caught(plugin.api.exit(3));
      const crash = await first;
      expect(crash).toBeInstanceOf(PluginCrashedError);
      expect(crash).toMatchObject({ code: 'ERR_PLUGIN_CRASHED', version: plugin.version, exitCode: 3 });
      // exit() ran where the dispatch rule sent it.
      expect(Atomics.load(counters, 1)).toBe(threadIds[lane]);
      expect(await exiting).toMatchObject({
        code: 'ERR_PLUGIN_CRASHED',
        version: plugin.version,
        method: 'exit',
        exitCode: 3,
      });
      for (const error of await Promise.all(waiting)) {
        expect(error).toBeInstanceOf(PluginCrashedError);
        expect(error).toMatchObject({ code: 'ERR_PLUGIN_CRASHED', version: plugin.version, method: 'hold' });
      }
      expect(plugin.state).toBe('crashed');
      expect(plugin.inFlight).toBe(0);
      // Resolves once every worker has exited (the other thread was terminated), with the first exit code.
      expect(await plugin.exited).toBe(3);
      const accepted = plugin.stats.calls;
      await expect(plugin.call('thread')).rejects.toMatchObject({
        code: 'ERR_PLUGIN_CRASHED',
        version: plugin.version,
        method: 'thread',
      });
      expect(plugin.stats.calls).toBe(accepted);
      expect(await plugin.close()).toMatchObject({ outcome: 'crashed', terminated: true });
      expect(gate.freed).toBe(0);
      // Every worker's exit has been seen by now: still one crash event.
      expect(seen).toHaveLength(1);
    },
  );
});

describe('threads: hot swap', () => {
  it('each version runs in N threads; a swap drains every thread of the old version, onFree in each, before it resolves', async () => {
    const gate = new Gate();
    const data = (label: string) => ({ gate: gate.buffer, label });
    const hs = await createHotSwap<NGate>(N, { threads: 2, data: data('v0') });
    const old = hs.current;
    expect(old.threads).toBe(2);
    const [t0, t1] = pair(old);
    const held = [hs.api.hold(1), hs.api.hold(1)];
    await gate.entered(2);

    const swapped = hs.swap(N, { data: data('v1') });
    await new Promise((resolve) => hs.once('swap', resolve));
    expect(old.state).toBe('closing');
    expect(hs.current.threads).toBe(2);
    expect(new Set([...old.threadIds, ...hs.current.threadIds]).size).toBe(4);
    expect(await hs.api.label()).toBe('v1');

    gate.open(1);
    expect(await Promise.all(held)).toEqual([t0, t1]);
    const report = await swapped;
    expect(report.close).toMatchObject({
      outcome: 'closed',
      drained: true,
      inFlightAtClose: 2,
      terminatedCalls: 0,
      onFree: 'ok',
      terminated: true,
    });
    expect(gate.freed).toBe(2);
    expect(await old.exited).toBe(1);
    await hs.close();
    expect(gate.freed).toBe(4);
  });

  it("swap() takes threads for its version; a later swap without it gets the hot swap's", async () => {
    const hs = await createHotSwap<NGate>(N, { threads: 2 });
    await hs.swap(N, { threads: 1 });
    expect(hs.current.threads).toBe(1);
    await hs.swap(N, { threads: 3 });
    expect(hs.current.threads).toBe(3);
    expect(new Set(hs.current.threadIds).size).toBe(3);
    await hs.swap(N);
    expect(hs.current.threads).toBe(2);
    await hs.close();
  });

  it('a restart after a crash boots the version with its threads again', async () => {
    const hs = await createHotSwap<NGate>(N, {
      threads: 2,
      data: { label: 'v0' },
      restart: { maxRestarts: 3, withinMs: 60_000, backoffMs: 1 },
    });
    const crashed = hs.current;
    const restarted = new Promise((resolve) => hs.once('restart', resolve));
    await expect(hs.api.exit(3)).rejects.toMatchObject({ code: 'ERR_PLUGIN_CRASHED', exitCode: 3 });
    await restarted;
    expect(hs.state).toBe('ready');
    expect(hs.current).not.toBe(crashed);
    expect(hs.current.threads).toBe(2);
    expect(new Set(hs.current.threadIds).size).toBe(2);
    expect(await hs.api.label()).toBe('v0');
    await hs.close();
  });
});

describe('threads: PluginManager', () => {
  /** The error the manager gives for `options`: thrown by the constructor or rejected by the first reload. */
  async function refusal(options: PluginManagerOptions): Promise<unknown> {
    let manager: PluginManager;
    try {
      manager = new PluginManager(options);
    } catch (error) {
      return error;
    }
    try {
      await manager.reload();
    } catch (error) {
      return error;
    } finally {
      await manager.close();
    }
    throw new Error('expected the manager to refuse the options');
  }

  it.each([2, 64])('load.threads: %i is refused ERR_PLUGIN_INVALID_OPTION, and no worker starts', async (threads) => {
    const dir = tempDir();
    install(dir, 'm-basic.mjs', 'a.mjs', { V: 'a1' });
    const error = await refusal({ dir, load: { threads } });
    expect(error).toMatchObject({ code: 'ERR_PLUGIN_INVALID_OPTION', option: expect.stringMatching(/(^|\.)threads$/) });
    expect(await settleLeftovers()).toEqual({ workers: 0, ports: 0 });
  });

  it('load.threads: 1 is accepted', async () => {
    const dir = tempDir();
    install(dir, 'm-basic.mjs', 'a.mjs', { V: 'a1' });
    await using manager = new PluginManager({ dir, load: { threads: 1 } });
    expect(await manager.reload()).toMatchObject({ loaded: ['a'] });
    expect(await manager.invoke('a', 'whoami')).toBe('a1');
  });
});
