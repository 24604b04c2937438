/**
 * `standby: true`: a hot swap keeps pre-booted worker(s) with no plugin code yet, created with its
 * `resourceLimits`, `env` and `execArgv`; a swap (or restart) that keeps those three runs its new
 * version there, and a new standby boots behind it.
 *
 * Telling a standby from a fresh worker without timing anything: thread ids only grow, so a
 * `marker()` worker constructed just before `swap()` is called has a larger id than any worker booted
 * earlier (a standby) and a smaller one than any worker the swap boots itself. Everything else waits
 * on events, promises or the shared-memory gate; the after-each leak check proves that `close()` and
 * `destroy()` end the standby too.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  createHotSwap,
  loadPlugin,
  type HotSwap,
  type HotSwapOptions,
  type PluginApi,
  type SwapOptions,
} from '../src/index.js';
import { caught, fixture, Gate, tempDir, writePlugin } from './helpers.js';
import { settleLeftovers } from './setup/leaks.js';

type Probe = typeof import('./fixtures/s-probe.mjs');
type Versioned = typeof import('./fixtures/versioned.mjs');
type NGate = typeof import('./fixtures/n-gate.mjs');
const P = fixture('s-probe.mjs');
const A = fixture('versioned.mjs');
const B = fixture('versioned-b.mjs');
const N = fixture('n-gate.mjs');

interface Marker {
  readonly id: number;
  readonly exited: Promise<unknown>;
}

/**
 * A worker constructed now, which exits by itself at once. A worker constructed before it has a
 * smaller thread id; one constructed after it, a larger one.
 */
function marker(): Marker {
  const worker = new Worker('', { eval: true, execArgv: [], env: {} });
  return { id: worker.threadId, exited: once(worker, 'exit') };
}

/** Callers calling continuously until stopped; every call is accounted for (as in hotswap.test.ts). */
function traffic(hs: HotSwap<Versioned>, callers: number) {
  let running = true;
  // A test that fails before stop() must not leave its callers running into the next tests.
  onTestFinished(() => {
    running = false;
  });
  // Raised as traffic moves ('swap' fires in that synchronous step); versions are labelled v1, v2, … in order.
  let switched = 0;
  hs.on('swap', () => switched++);
  const tally = { ok: 0, failed: [] as unknown[], violations: 0 };
  const caller = async (id: number) => {
    while (running) {
      const floor = switched;
      try {
        const reply = await hs.api.work(id, 0);
        if (Number(String(reply.label).slice(1)) < floor) tally.violations++;
        tally.ok++;
      } catch (error) {
        tally.failed.push(error);
      }
    }
  };
  const done = Promise.all(Array.from({ length: callers }, (_, id) => caller(id)));
  return {
    stop: async () => {
      running = false;
      await done;
      return tally;
    },
  };
}

describe('standby: options', () => {
  it('without standby (the default, or false) a swap reports standby: false', async () => {
    for (const options of [{}, { standby: false }] as HotSwapOptions[]) {
      const hs = await createHotSwap<Versioned>(A, { ...options, data: { label: 'v0' } });
      const report = await hs.swap(B, { data: { label: 'v1' } });
      expect(report.standby).toBe(false);
      expect(await hs.api.whoami()).toBe('v1');
      await hs.close();
    }
  });

  it('standby must be a boolean: ERR_PLUGIN_INVALID_OPTION naming options.standby, and nothing is left running', async () => {
    for (const standby of ['yes', 1, null]) {
      const error = await caught(createHotSwap(A, { standby } as never));
      expect(error).toMatchObject({ code: 'ERR_PLUGIN_INVALID_OPTION', option: 'options.standby' });
      expect(error).toBeInstanceOf(TypeError);
    }
    expect(await settleLeftovers()).toEqual({ workers: 0, ports: 0 });
  });

  it('standby is not a per-swap option, nor a loadPlugin option: both reject ERR_PLUGIN_INVALID_OPTION', async () => {
    await expect(loadPlugin(A, { standby: true } as never)).rejects.toMatchObject({
      code: 'ERR_PLUGIN_INVALID_OPTION',
      option: 'options.standby',
    });
    const hs = await createHotSwap<Versioned>(A, { standby: true, data: { label: 'v0' } });
    await expect(hs.swap(B, { standby: true } as never)).rejects.toMatchObject({
      code: 'ERR_PLUGIN_INVALID_OPTION',
      option: expect.stringMatching(/(^|\.)standby$/),
    });
    expect(hs.state).toBe('ready');
    expect(await hs.api.whoami()).toBe('v0');
    await hs.close();
  });
});

describe('standby: swaps', () => {
  it('a swap right after createHotSwap waits for the booting standby and runs there: standby: true, onLoad got its data, no plugin code before it', async () => {
    const hs = await createHotSwap<Probe>(P, { standby: true, data: { label: 'v0' } });
    const data = { label: 'v1', when: new Date(0), list: [1, 2] };
    const report = await hs.swap(P, { data });
    expect(report).toMatchObject({ standby: true, close: { outcome: 'closed', drained: true } });
    expect(await hs.api.data()).toEqual(data);
    expect(await hs.api.modules()).toBe(1);
    await hs.close();
  });

  it('swaps in a row all run on standbys (each waits for the one booted behind the previous swap), each in an isolate of its own', async () => {
    const hs = await createHotSwap<Probe>(P, { standby: true, data: { label: 'v0' } });
    const threads = [hs.current.threadId];
    for (let n = 1; n <= 3; n++) {
      const report = await hs.swap(P, { data: { label: `v${n}` } });
      expect(report.standby).toBe(true);
      expect(await hs.api.data()).toEqual({ label: `v${n}` });
      expect(await hs.api.modules()).toBe(1);
      threads.push(hs.current.threadId);
    }
    expect(new Set(threads).size).toBe(4);
    await hs.close();
  });

  it("the standby's process.env is the hot swap's env; without data a swap inherits the hot swap's, as before", async () => {
    const hs = await createHotSwap<Probe>(P, { standby: true, env: { S_ENV: 'given' }, data: { label: 'v0' } });
    const report = await hs.swap(P);
    expect(report.standby).toBe(true);
    expect(await hs.api.envKeys()).toEqual(['S_ENV']);
    expect(await hs.api.env('S_ENV')).toBe('given');
    expect(await hs.api.data()).toEqual({ label: 'v0' });
    await hs.close();
  });

  const SPAWN = {
    env: { S_ENV: 'hot swap' },
    resourceLimits: { maxOldGenerationSizeMb: 128 },
    execArgv: ['--trace-warnings'],
  };
  const changes: Array<{
    option: string;
    change: SwapOptions<Probe>;
    read: (api: PluginApi<Probe>) => Promise<unknown>;
    kept: unknown;
    changed: unknown;
  }> = [
    {
      option: 'env',
      change: { env: { S_ENV: 'swap' } },
      read: (api) => api.env('S_ENV'),
      kept: 'hot swap',
      changed: 'swap',
    },
    {
      option: 'resourceLimits',
      change: { resourceLimits: { maxOldGenerationSizeMb: 96 } },
      read: async (api) => (await api.limits()).maxOldGenerationSizeMb,
      kept: 128,
      changed: 96,
    },
    {
      option: 'execArgv',
      change: { execArgv: ['--no-deprecation'] },
      read: (api) => api.flags(),
      kept: ['--trace-warnings'],
      changed: ['--no-deprecation'],
    },
  ];

  it.each(changes)(
    'a swap that changes $option boots a fresh worker (standby: false) and keeps the standby, which the next swap uses',
    async ({ change, read, kept, changed }) => {
      const hs = await createHotSwap<Probe>(P, { standby: true, ...SPAWN });
      expect(await read(hs.api)).toEqual(kept);

      const beforeFresh = marker();
      const fresh = await hs.swap(P, change);
      expect(fresh.standby).toBe(false);
      expect(await read(hs.api)).toEqual(changed);
      expect(hs.current.threadId).toBeGreaterThan(beforeFresh.id);

      const beforeStandby = marker();
      const onStandby = await hs.swap(P);
      expect(onStandby.standby).toBe(true);
      expect(await read(hs.api)).toEqual(kept);
      // Booted before this swap was asked for: the standby kept through the fresh swap.
      expect(hs.current.threadId).toBeLessThan(beforeStandby.id);
      expect(await hs.api.modules()).toBe(1);

      await Promise.all([beforeFresh.exited, beforeStandby.exited]);
      await hs.close();
    },
  );

  it('the same env, resourceLimits and execArgv given again (equal values, new objects) do not change them: the swap runs on the standby', async () => {
    const hs = await createHotSwap<Probe>(P, { standby: true, ...SPAWN });
    const report = await hs.swap(P, {
      env: { S_ENV: 'hot swap' },
      resourceLimits: { maxOldGenerationSizeMb: 128 },
      execArgv: ['--trace-warnings'],
    });
    expect(report.standby).toBe(true);
    expect(await hs.api.env('S_ENV')).toBe('hot swap');
    await hs.close();
  });

  it.each([
    [
      'a module that does not parse',
      () => ({ specifier: fixture('syntax-error.mjs'), options: {} }),
      { code: 'ERR_PLUGIN_LOAD' },
    ],
    [
      'an onLoad that throws',
      () => ({ specifier: fixture('s-refuse.mjs'), options: {} }),
      { code: 'ERR_PLUGIN_LOAD', cause: { code: 'E_S_REFUSED' } },
    ],
    [
      'a version that fails its health check',
      // Another file than P (a copy), so an isolate that ran it would show two plugin modules.
      () => ({
        specifier: writePlugin(tempDir(), 'probe-copy.mjs', readFileSync(P, 'utf8')),
        options: { healthCheck: () => false },
      }),
      undefined,
    ],
  ])(
    'N5: a swap to %s fails on the standby ERR_SWAP_FAILED; that worker is discarded and the next swap still runs on a standby',
    async (_label, make, cause) => {
      const hs = await createHotSwap<Probe>(P, { standby: true, data: { label: 'v0' } });
      const { specifier, options } = make();
      const failure = await caught(hs.swap(specifier, options));
      expect(failure).toMatchObject({ code: 'ERR_SWAP_FAILED', version: hs.version });
      // A health check that returns false fails the swap with no cause (`cause` undefined here).
      expect({ cause: (failure as Error).cause }).toMatchObject({ cause });
      expect(hs.state).toBe('ready');
      expect(await hs.api.data()).toEqual({ label: 'v0' });

      const next = await hs.swap(P, { data: { label: 'v1' } });
      expect(next.standby).toBe(true);
      expect(await hs.api.data()).toEqual({ label: 'v1' });
      // Its isolate evaluated no plugin module before this one: it is not the one the failed swap used.
      expect(await hs.api.modules()).toBe(1);
      await hs.close();
    },
  );

  it('N7: a restart after a crash runs on the standby', async () => {
    const hs = await createHotSwap<Probe>(P, {
      standby: true,
      data: { label: 'v0' },
      restart: { maxRestarts: 3, withinMs: 60_000, backoffMs: 1 },
    });
    const crashed = hs.current;
    // Constructed in the crash listener, so before the restart (after its backoff) can start any
    // worker; the standby was booted with the hot swap, before that.
    let mark: Marker | undefined;
    hs.once('crash', () => (mark = marker()));
    const restarted = new Promise((resolve) => hs.once('restart', resolve));
    await expect(hs.api.die(9)).rejects.toMatchObject({ code: 'ERR_PLUGIN_CRASHED', exitCode: 9 });
    await restarted;
    expect(mark).toBeDefined();
    expect(hs.state).toBe('ready');
    expect(hs.current).not.toBe(crashed);
    expect(hs.current.threadId).toBeLessThan(mark!.id);
    expect(await hs.api.data()).toEqual({ label: 'v0' });
    expect(await hs.api.modules()).toBe(1);
    await mark!.exited;
    // The swap after it waits for the standby booted behind the restart.
    expect((await hs.swap(P)).standby).toBe(true);
    await hs.close();
  });

  it('with threads: 2 the standby is two workers: the new version runs every thread on them, and the old one drains all of its threads', async () => {
    const gate = new Gate();
    const data = (label: string) => ({ gate: gate.buffer, label });
    const hs = await createHotSwap<NGate>(N, { standby: true, threads: 2, data: data('v0') });
    const old = hs.current;
    const held = [hs.api.hold(1), hs.api.hold(1)];
    await gate.entered(2);

    const swapped = hs.swap(N, { data: data('v1') });
    await new Promise((resolve) => hs.once('swap', resolve));
    expect(hs.current.threads).toBe(2);
    expect(await hs.api.label()).toBe('v1');
    gate.open(1);
    expect(await Promise.all(held)).toEqual([...old.threadIds]);
    const report = await swapped;
    expect(report).toMatchObject({
      standby: true,
      close: { outcome: 'closed', drained: true, inFlightAtClose: 2, onFree: 'ok' },
    });
    expect(gate.freed).toBe(2);

    // A swap that changes env boots two fresh workers and keeps the two standby ones for the next swap.
    const fresh = await hs.swap(N, { env: { S_ENV: 'other' }, data: data('v2') });
    expect(fresh.standby).toBe(false);
    const beforeStandby = marker();
    const onStandby = await hs.swap(N, { data: data('v3') });
    expect(onStandby.standby).toBe(true);
    expect(hs.current.threads).toBe(2);
    expect(new Set(hs.current.threadIds).size).toBe(2);
    for (const id of hs.current.threadIds) expect(id).toBeLessThan(beforeStandby.id);
    expect(await hs.api.label()).toBe('v3');
    await beforeStandby.exited;
    await hs.close();
  });

  it('64 callers through 10 swaps on standbys: 0 failed calls, none served by an older version, every swap on a standby', async () => {
    const hs = await createHotSwap<Versioned>(A, { standby: true, data: { label: 'v0' } });
    const load = traffic(hs, 64);
    for (let n = 1; n <= 10; n++) {
      const report = await hs.swap(n % 2 ? B : A, { data: { label: `v${n}` } });
      expect(report).toMatchObject({ standby: true, close: { outcome: 'closed', drained: true } });
    }
    const tally = await load.stop();
    expect(tally.failed).toEqual([]);
    expect(tally.violations).toBe(0);
    expect(tally.ok).toBeGreaterThan(0);
    expect(await hs.api.whoami()).toBe('v10');
    await hs.close();
  });

  it('concurrent swaps with a standby: the running one completes, a waiting one is superseded, the latest runs on the next standby', async () => {
    const hs = await createHotSwap<Versioned>(A, { standby: true, data: { label: 'v0' } });
    const results = await Promise.allSettled([
      hs.swap(B, { data: { label: 'v1' } }),
      hs.swap(A, { data: { label: 'v2' } }),
      hs.swap(B, { data: { label: 'v3' } }),
    ]);
    expect(results[0]).toMatchObject({ status: 'fulfilled', value: { standby: true } });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_SWAP_SUPERSEDED' } });
    expect(results[2]).toMatchObject({ status: 'fulfilled', value: { standby: true } });
    expect(await hs.api.whoami()).toBe('v3');
    await hs.close();
  });
});

describe('standby: close, destroy and process lifetime', () => {
  it('close() right after createHotSwap, while the standby boots, ends it too; the reports are the versions only', async () => {
    const hs = await createHotSwap<Versioned>(A, { standby: true, data: { label: 'v0' } });
    const reports = await hs.close();
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ version: hs.version, outcome: 'closed' });
    expect(hs.state).toBe('closed');
  });

  it('close() right after a swap, while the next standby boots, ends it too', async () => {
    const hs = await createHotSwap<Versioned>(A, { standby: true, data: { label: 'v0' } });
    expect((await hs.swap(B, { data: { label: 'v1' } })).standby).toBe(true);
    expect(await hs.close()).toHaveLength(1);
    expect(hs.state).toBe('closed');
  });

  it('N6: close() while a swap waits for the standby: the swap rejects coded, the hot swap closes, the standby ends', async () => {
    const hs = await createHotSwap<Versioned>(A, { standby: true, data: { label: 'v0' } });
    const swapping = caught(hs.swap(B, { data: { label: 'v1' } }));
    await hs.close();
    expect(await swapping).toMatchObject({ code: expect.stringMatching(/^ERR_(SWAP_FAILED|PLUGIN_CLOSED)$/) });
    expect(hs.state).toBe('closed');
    await expect(hs.swap(B)).rejects.toMatchObject({ code: 'ERR_PLUGIN_CLOSED' });
  });

  it('N6: close() from a listener of the old version at the switch ends the standby too, and the hot swap stays closing, then closed', async () => {
    const hs = await createHotSwap<Versioned>(A, { standby: true, data: { label: 'v0' } });
    const states: string[] = [];
    hs.on('state', (state) => states.push(state));
    let closing: Promise<unknown> | undefined;
    hs.current.once('state', (state) => {
      if (state === 'closing') closing = hs.close();
    });
    await hs.swap(B, { data: { label: 'v1' } });
    await closing;
    expect(hs.state).toBe('closed');
    expect(states).toEqual(['closing', 'closed']);
    expect(await settleLeftovers()).toEqual({ workers: 0, ports: 0 });
  });

  it('destroy() ends the standby too', async () => {
    const hs = await createHotSwap<Versioned>(A, { standby: true, data: { label: 'v0' } });
    expect((await hs.swap(B, { data: { label: 'v1' } })).standby).toBe(true);
    await hs.destroy(new Error('now'));
    expect(hs.state).toBe('closed');
    await expect(hs.api.whoami()).rejects.toMatchObject({ code: 'ERR_PLUGIN_CLOSED' });
  });

  it('a first version that fails to load rejects ERR_PLUGIN_LOAD and leaves no standby behind', async () => {
    await expect(createHotSwap(fixture('syntax-error.mjs'), { standby: true })).rejects.toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
    });
    await expect(createHotSwap(fixture('s-refuse.mjs'), { standby: true, threads: 2 })).rejects.toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
    });
    expect(await settleLeftovers()).toEqual({ workers: 0, ports: 0 });
  });

  it.each([
    [1, 0],
    [1, 2],
    [2, 1],
  ])(
    'a host with a standby hot swap (threads %i, %i swaps) that it never closes exits by itself with code 0 (child process)',
    async (threads, swaps) => {
      // The child's own timeout is only a safety net against a hang (the test then fails on the status).
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [fixture('s-idle-host.mjs'), A, String(threads), String(swaps)],
        { timeout: 45_000 },
      );
      expect(JSON.parse(stdout)).toEqual({ served: `v${swaps}`, standby: Array.from({ length: swaps }, () => true) });
    },
  );
});
