import { describe, expect, it, onTestFinished } from 'vitest';
import { createHotSwap, type HotSwap } from '../src/index.js';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { fixture, Gate, tempDir, writePlugin } from './helpers.js';
import { leftovers } from './setup/leaks.js';

type Versioned = typeof import('./fixtures/versioned.mjs');
const A = fixture('versioned.mjs');
const B = fixture('versioned-b.mjs');

/**
 * Callers calling continuously until stopped (each call doing `workMs` of async work); every call is
 * accounted for. The versions swapped to are labelled v1, v2, … in order.
 */
function load(hs: HotSwap<Versioned>, callers: number, workMs = 0) {
  let running = true;
  // A test that fails before stop() must not leave its callers running into the next tests.
  onTestFinished(() => {
    running = false;
  });
  // 'swap' fires in the synchronous step that moves traffic: from then on a call must not reach an older version.
  let switched = 0;
  hs.on('swap', () => switched++);
  const tally = { ok: 0, failed: [] as unknown[], violations: 0, maxLiveWorkers: 0 };
  const caller = async (id: number) => {
    for (let i = 0; running; i++) {
      // A call started after switch N must be served by version N or later.
      const floor = switched;
      try {
        const reply = await hs.api.work(id, workMs);
        const served = Number(String(reply.label).slice(1));
        if (served < floor) tally.violations++;
        tally.ok++;
      } catch (error) {
        tally.failed.push(error);
      }
      tally.maxLiveWorkers = Math.max(tally.maxLiveWorkers, leftovers().workers);
    }
  };
  const done = Promise.all(Array.from({ length: callers }, (_, id) => caller(id)));
  return {
    tally,
    stop: async () => {
      running = false;
      await done;
      return tally;
    },
  };
}

describe('createHotSwap', () => {
  it('S1/S3: 64 callers through 50 swaps back and forth: 0 failures, no call after a swap served by an older version, live workers bounded', async () => {
    const hs = await createHotSwap<Versioned>(A, { data: { label: 'v0' } });
    const traffic = load(hs, 64);
    const events: string[] = [];
    hs.on('swap', (e) => events.push(`${e.from}>${e.to}`));
    for (let n = 1; n <= 50; n++) {
      const report = await hs.swap(n % 2 ? B : A, { data: { label: `v${n}` }, version: `v${n}` });
      expect(report).toMatchObject({ to: `v${n}`, close: { outcome: 'closed', drained: true } });
      expect(hs.version).toBe(`v${n}`);
    }
    const tally = await traffic.stop();
    expect(tally.failed).toEqual([]);
    expect(tally.violations).toBe(0);
    expect(tally.ok).toBeGreaterThan(0);
    // current + one draining (retain: 1) + the next one loading.
    expect(tally.maxLiveWorkers).toBeLessThanOrEqual(3);
    expect(events).toHaveLength(50);
    expect(await hs.api.whoami()).toBe('v50');
    await hs.close();
    expect(hs.state).toBe('closed');
  });

  it.each([
    ['S1', 64, 5],
    ['S2', 256, 1],
  ])(
    'S1/S2 (%s): %i callers doing %i ms of work through 20 swaps: 0 failures, none served by an older version',
    async (_, callers, workMs) => {
      const hs = await createHotSwap<Versioned>(A, { data: { label: 'v0' } });
      const traffic = load(hs, callers, workMs);
      for (let n = 1; n <= 20; n++) {
        await hs.swap(n % 2 ? B : A, { data: { label: `v${n}` } });
      }
      const tally = await traffic.stop();
      expect(tally.failed).toEqual([]);
      expect(tally.violations).toBe(0);
      expect(hs.versions).toHaveLength(1);
      await hs.close();
    },
  );

  it.each([
    ['a module that does not parse', () => ({ specifier: fixture('syntax-error.mjs'), options: {} })],
    ['an onLoad that throws', () => ({ specifier: A, options: { data: { failLoad: true } } })],
    ['a failing health check', () => ({ specifier: B, options: { healthCheck: async () => false } })],
    [
      'a throwing health check',
      () => ({ specifier: B, options: { healthCheck: () => Promise.reject(new Error('unhealthy')) } }),
    ],
    ['a missing file', () => ({ specifier: fixture('does-not-exist.mjs'), options: {} })],
  ])(
    'S6: a swap to %s under load fails ERR_SWAP_FAILED; the old version keeps serving; 0 failed calls',
    async (_, make) => {
      const hs = await createHotSwap<Versioned>(A, { data: { label: 'v0' } });
      const traffic = load(hs, 16);
      const { specifier, options } = make();
      await expect(hs.swap(specifier, options)).rejects.toMatchObject({ code: 'ERR_SWAP_FAILED', version: hs.version });
      expect(hs.state).toBe('ready');
      expect(await hs.api.whoami()).toBe('v0');
      const tally = await traffic.stop();
      expect(tally.failed).toEqual([]);
      expect(hs.versions).toHaveLength(1);
      await hs.close();
    },
  );

  it('the cause of a failed swap is the load error, with its own code', async () => {
    const hs = await createHotSwap<Versioned>(A, { data: { label: 'v0' } });
    const failure = await hs.swap(A, { data: { failLoad: true } }).catch((e: unknown) => e);
    expect(failure).toMatchObject({
      code: 'ERR_SWAP_FAILED',
      cause: { code: 'ERR_PLUGIN_LOAD', cause: { code: 'E_REFUSED' } },
    });
    await hs.close();
  });

  it('S4: when the old version crashes while draining, only its own in-flight calls fail, coded; the new one is untouched', async () => {
    const gate = new Gate();
    const hs = await createHotSwap<Versioned>(A, { data: { label: 'v0', gate: gate.buffer } });
    const held = Array.from({ length: 3 }, () => hs.api.hold());
    const outcomes = Promise.allSettled(held);
    await gate.entered(3);
    const old = hs.current;
    const swapped = hs.swap(B, { data: { label: 'v1' } });
    await new Promise((resolve) => hs.once('swap', resolve));
    // The old version is draining its 3 held calls (it refuses new ones): make those calls exit it.
    expect(old.state).toBe('closing');
    const crashed = new Promise((resolve) => old.once('crash', resolve));
    gate.open(2);
    await crashed;
    const report = await swapped;
    expect(report.close.outcome).toBe('crashed');
    const settled = await outcomes;
    for (const s of settled)
      expect(s).toMatchObject({
        status: 'rejected',
        reason: { code: 'ERR_PLUGIN_CRASHED', version: old.version, exitCode: 3 },
      });
    expect(hs.state).toBe('ready');
    expect(await hs.api.whoami()).toBe('v1');
    await hs.close();
  });

  it('S8: concurrent swaps are serialized: the running one completes, a waiting one is superseded by a later one', async () => {
    const hs = await createHotSwap<Versioned>(A, { data: { label: 'v0' } });
    const first = hs.swap(B, { data: { label: 'v1' } });
    const second = hs.swap(A, { data: { label: 'v2' } });
    const third = hs.swap(B, { data: { label: 'v3' } });
    const results = await Promise.allSettled([first, second, third]);
    expect(results[0]).toMatchObject({ status: 'fulfilled', value: { to: expect.any(String) } });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_SWAP_SUPERSEDED' } });
    expect(results[2]).toMatchObject({ status: 'fulfilled' });
    expect(await hs.api.whoami()).toBe('v3');
    await hs.close();
  });

  it('S5: retention: a third version arriving while the second still drains force-closes the oldest; its calls reject ERR_PLUGIN_TERMINATED', async () => {
    const gate = new Gate();
    // Only retention may end v0 before the test's own timeout: no call timeout, a drain deadline past it.
    const hs = await createHotSwap<Versioned>(A, {
      data: { label: 'v0', gate: gate.buffer },
      retain: 1,
      drainTimeoutMs: 120_000,
      callTimeoutMs: Infinity,
    });
    const v0calls = Promise.allSettled([hs.api.hold(), hs.api.hold()]);
    await gate.entered(2);
    const toV1 = hs.swap(A, { data: { label: 'v1', gate: gate.buffer } });
    await new Promise((resolve) => hs.once('swap', resolve));
    const v1calls = Promise.allSettled([hs.api.hold()]);
    await gate.entered(3);
    // v0 drains (2 calls), v1 is current with 1 call. A swap to v2 makes v1 drain too: retain 1 → v0 goes.
    const toV2 = hs.swap(B, { data: { label: 'v2' } });
    const [first] = await Promise.all([toV1, new Promise((resolve) => hs.once('swap', resolve))]);
    expect(first).toMatchObject({
      from: expect.any(String),
      close: { outcome: 'closed', drained: false, terminatedCalls: 2 },
    });
    for (const s of await v0calls)
      expect(s).toMatchObject({ status: 'rejected', reason: { code: 'ERR_PLUGIN_TERMINATED' } });
    expect(hs.versions.map((v) => v.role)).toEqual(['current', 'draining']);
    gate.open();
    expect(await v1calls).toEqual([{ status: 'fulfilled', value: 'v1' }]);
    expect((await toV2).close).toMatchObject({ drained: true });
    await hs.close();
  });

  it('C4: soft close refuses while calls are in flight, and kills nothing', async () => {
    const gate = new Gate();
    const hs = await createHotSwap<Versioned>(A, { data: { label: 'v0', gate: gate.buffer } });
    const held = hs.api.hold();
    await gate.entered(1);
    expect(hs.current.softClose()).toEqual({ closed: false, inFlight: 1 });
    expect(hs.current.state).toBe('ready');
    gate.open();
    expect(await held).toBe('v0');
    const soft = hs.current.softClose();
    expect(soft.closed).toBe(true);
    if (soft.closed) expect(await soft.report).toMatchObject({ drained: true, inFlightAtClose: 0 });
    await hs.close();
  });

  it('routes calls with per-call options and rejects calls after close with ERR_PLUGIN_CLOSED', async () => {
    const hs = await createHotSwap<Versioned>(A, { data: { label: 'v0' } });
    expect(await hs.with({ timeoutMs: 5_000 }).api.whoami()).toBe('v0');
    expect(await hs.call('whoami')).toBe('v0');
    await hs.close();
    await expect(hs.api.whoami()).rejects.toMatchObject({ code: 'ERR_PLUGIN_CLOSED' });
    await expect(hs.swap(B)).rejects.toMatchObject({ code: 'ERR_PLUGIN_CLOSED' });
  });

  it("swap() inherits the hot swap's load options (data, timeouts, limits), but not its version label", async () => {
    const hs = await createHotSwap<Versioned>(A, { data: { label: 'first' }, version: 'pinned', callTimeoutMs: 5_000 });
    await hs.swap(B);
    expect(await hs.api.whoami()).toBe('first');
    expect(hs.version).not.toBe('pinned');
    await hs.swap(A, { data: { label: 'own' } });
    expect(await hs.api.whoami()).toBe('own');
    await hs.close();
  });

  it('a throwing swap listener does not wedge the hot swap: swaps settle, old versions are retired (child process)', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [fixture('h-throwing-listener.mjs'), A, B]);
    expect(JSON.parse(stdout)).toEqual({
      first: 'closed',
      second: 'closed',
      served: 'v2',
      versions: 1,
      uncaught: ['listener bug', 'listener bug'],
    });
  });

  it('a candidate that dies during its health check is not switched to: ERR_SWAP_FAILED, the old version serves on', async () => {
    const hs = await createHotSwap<Versioned>(A, { data: { label: 'v0' } });
    const failure = hs.swap(A, {
      data: { label: 'v1' },
      healthCheck: async (api) => {
        await api.die(3).catch(() => {});
        return true;
      },
    });
    await expect(failure).rejects.toMatchObject({
      code: 'ERR_SWAP_FAILED',
      cause: { code: 'ERR_PLUGIN_CRASHED', exitCode: 3 },
    });
    expect(hs.state).toBe('ready');
    expect(await hs.api.whoami()).toBe('v0');
    await hs.close();
  });

  it('a health check that never settles fails the swap at healthCheckTimeoutMs, and close() does not wait for it', async () => {
    const hs = await createHotSwap<Versioned>(A, { data: { label: 'v0' } });
    await expect(
      hs.swap(B, { data: { label: 'v1' }, healthCheckTimeoutMs: 50, healthCheck: () => new Promise(() => {}) }),
    ).rejects.toMatchObject({
      code: 'ERR_SWAP_FAILED',
      cause: { code: 'ERR_PLUGIN_TIMEOUT' },
    });
    expect(await hs.api.whoami()).toBe('v0');
    let entered!: () => void;
    const checking = new Promise<void>((resolve) => (entered = resolve));
    const hanging = hs.swap(B, { healthCheck: () => (entered(), new Promise(() => {})) });
    const outcome = hanging.catch((error: unknown) => error);
    await checking;
    await hs.close();
    expect(await outcome).toMatchObject({ code: expect.stringMatching(/^ERR_(SWAP_FAILED|PLUGIN_CLOSED)$/) });
  });

  it('a swap listener that closes the hot swap closes the old version too', async () => {
    const hs = await createHotSwap<Versioned>(A, { data: { label: 'v0' } });
    const old = hs.current;
    let closing: Promise<unknown> | undefined;
    hs.once('swap', () => {
      closing = hs.close({ timeoutMs: 0 });
    });
    await hs.swap(B, { data: { label: 'v1' } });
    expect(await closing).toHaveLength(2);
    expect(old.state).toBe('closed');
  });

  it('rejects bad options naming them', async () => {
    await expect(createHotSwap(A, { retain: -1 })).rejects.toMatchObject({
      code: 'ERR_PLUGIN_INVALID_OPTION',
      option: 'options.retain',
    });
    await expect(createHotSwap(A, { restart: { maxRestarts: 1.5 } })).rejects.toMatchObject({
      option: 'options.restart.maxRestarts',
    });
    await expect(createHotSwap(A, { healthCheck: 1 as never })).rejects.toMatchObject({
      option: 'options.healthCheck',
    });
  });
});

describe('restart policy', () => {
  it('restarts a crashed current version, then gives up after the intensity limit: state failed, calls reject ERR_PLUGIN_CRASHED', async () => {
    const hs = await createHotSwap<Versioned>(A, {
      data: { label: 'v0' },
      restart: { maxRestarts: 2, withinMs: 60_000, backoffMs: 1 },
    });
    const restarts: number[] = [];
    hs.on('restart', (e) => restarts.push(e.attempt));
    const failed = new Promise((resolve) => hs.once('failed', resolve));
    for (let crash = 1; crash <= 3; crash++) {
      const seen = new Promise((resolve) => hs.once('crash', resolve));
      await expect(hs.api.die(9)).rejects.toMatchObject({ code: 'ERR_PLUGIN_CRASHED', exitCode: 9 });
      await seen;
      if (crash < 3) {
        await new Promise((resolve) => hs.once('restart', resolve));
        expect(await hs.api.whoami()).toBe('v0');
      }
    }
    await failed;
    expect(restarts).toEqual([1, 2]);
    expect(hs.state).toBe('failed');
    await expect(hs.api.whoami()).rejects.toMatchObject({
      code: 'ERR_PLUGIN_CRASHED',
      cause: { code: 'ERR_PLUGIN_CRASHED', exitCode: 9 },
    });
    // A successful swap recovers from failed.
    await hs.swap(B, { data: { label: 'v1' } });
    expect(hs.state).toBe('ready');
    expect(await hs.api.whoami()).toBe('v1');
    await hs.close();
  });

  // Two limits stop a version that never boots: restarts within the window, and failed boots in a row
  // (for boots slower than the window). A window of 0 holds no restart, so there only the second can.
  it.each([60_000, 0])(
    'L8: a version that always dies while booting is restarted at most maxRestarts times, then one failed event (withinMs %i)',
    async (withinMs) => {
      const dir = tempDir();
      const attempts = join(dir, 'attempts.txt');
      const path = writePlugin(
        dir,
        'plugin.mjs',
        `export function die() { setImmediate(() => process.exit(1)); return new Promise(() => {}); }\nexport function ok() { return 1; }\n`,
      );
      const hs = await createHotSwap<{ die(): Promise<never>; ok(): number }>(path, {
        restart: { maxRestarts: 3, withinMs, backoffMs: 1 },
      });
      // From now on every boot of this file records itself and exits while loading.
      writePlugin(
        dir,
        'plugin.mjs',
        `import { appendFileSync } from 'node:fs';\nappendFileSync(${JSON.stringify(attempts)}, 'x');\nprocess.exit(1);\n`,
      );
      let failedEvents = 0;
      let restarts = 0;
      hs.on('restart', () => restarts++);
      const failed = new Promise<unknown>((resolve) => hs.on('failed', (error) => (failedEvents++, resolve(error))));
      await expect(hs.api.die()).rejects.toMatchObject({ code: 'ERR_PLUGIN_CRASHED' });
      await failed;
      expect(readFileSync(attempts, 'utf8')).toBe('xxx');
      expect(restarts).toBe(0);
      expect(failedEvents).toBe(1);
      expect(hs.state).toBe('failed');
      await expect(hs.api.ok()).rejects.toMatchObject({ code: 'ERR_PLUGIN_CRASHED' });
      await hs.close();
      expect(readFileSync(attempts, 'utf8')).toBe('xxx');
    },
  );

  it('calls made while restarting keep their own signal and timeout', async () => {
    const hs = await createHotSwap<Versioned>(A, {
      data: { label: 'v0' },
      restart: { maxRestarts: 3, backoffMs: 60_000, maxBackoffMs: 60_000 },
    });
    await expect(hs.api.die(2)).rejects.toMatchObject({ code: 'ERR_PLUGIN_CRASHED' });
    expect(hs.state).toBe('restarting');
    const controller = new AbortController();
    const aborted = hs.with({ signal: controller.signal }).api.whoami();
    controller.abort('gave up');
    await expect(aborted).rejects.toMatchObject({ code: 'ERR_PLUGIN_ABORTED', cause: 'gave up' });
    await expect(hs.with({ timeoutMs: 20 }).api.whoami()).rejects.toMatchObject({
      code: 'ERR_PLUGIN_TIMEOUT',
      timeoutMs: 20,
    });
    await hs.destroy();
  });

  it('boots that fail slower than the window still count: the hot swap gives up', async () => {
    const dir = tempDir();
    const path = writePlugin(
      dir,
      'plugin.mjs',
      `export function die() { setImmediate(() => process.exit(1)); return new Promise(() => {}); }\n`,
    );
    const hs = await createHotSwap<{ die(): Promise<never> }>(path, {
      restart: { maxRestarts: 2, withinMs: 1, backoffMs: 1 },
    });
    writePlugin(dir, 'plugin.mjs', `process.exit(1);\n`);
    const failed = new Promise((resolve) => hs.once('failed', resolve));
    await expect(hs.api.die()).rejects.toMatchObject({ code: 'ERR_PLUGIN_CRASHED' });
    await failed;
    expect(hs.state).toBe('failed');
    await hs.close();
  });

  it('without a restart policy a crash leaves the hot swap failed', async () => {
    const hs = await createHotSwap<Versioned>(A, { data: { label: 'v0' } });
    const failed = new Promise((resolve) => hs.once('failed', resolve));
    await expect(hs.api.die(4)).rejects.toMatchObject({ code: 'ERR_PLUGIN_CRASHED' });
    await failed;
    await expect(hs.call('whoami')).rejects.toMatchObject({ code: 'ERR_PLUGIN_CRASHED' });
    await hs.close();
  });
});
