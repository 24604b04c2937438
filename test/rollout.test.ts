import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import {
  createHotSwap,
  rolloutBucket,
  RolloutAbortedError,
  type AbortEvent,
  type HotSwap,
  type PercentEvent,
  type RolloutEvent,
} from '../src/index.js';
import { caught, fixture, Gate } from './helpers.js';
import { leftovers } from './setup/leaks.js';

type Versioned = typeof import('./fixtures/versioned.mjs');
const A = fixture('versioned.mjs');
const B = fixture('versioned-b.mjs');
const FLAKY = fixture('k-flaky.mjs');

async function start(): Promise<HotSwap<Versioned>> {
  return createHotSwap<Versioned>(A, { data: { label: 'v1' }, version: 'v1' });
}

/** Labels of the versions that served `calls` keyless calls of `whoami()`, counted. */
async function served(hs: HotSwap<Versioned>, calls: number): Promise<Map<string, number>> {
  const labels = await Promise.all(Array.from({ length: calls }, () => hs.api.whoami()));
  const tally = new Map<string, number>();
  for (const label of labels.map(String)) tally.set(label, (tally.get(label) ?? 0) + 1);
  return tally;
}

/**
 * `callers` callers calling `work()` until stopped. `mark()` records the moment after which every
 * call started must be served by `label` (and must not fail).
 */
function traffic(hs: HotSwap<Versioned>, callers: number) {
  let running = true;
  let marked: string | undefined;
  const tally = { ok: 0, failed: [] as unknown[], afterMark: 0, wrongAfterMark: 0, failedAfterMark: 0 };
  const waiters: Array<{ at: number; wake: () => void }> = [];
  const count = () => {
    const settled = tally.ok + tally.failed.length;
    for (const waiter of waiters.filter((w) => settled >= w.at)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.wake();
    }
  };
  const caller = async (id: number) => {
    for (; running; count()) {
      const expect = marked;
      try {
        const reply = await hs.api.work(id, 0);
        tally.ok++;
        if (expect !== undefined) {
          tally.afterMark++;
          if (reply.label !== expect) tally.wrongAfterMark++;
        }
      } catch (error) {
        tally.failed.push(error);
        if (expect !== undefined) tally.failedAfterMark++;
      }
    }
  };
  const done = Promise.all(Array.from({ length: callers }, (_, id) => caller(id)));
  return {
    tally,
    mark: (label: string) => (marked = label),
    /** Resolves once `n` more calls settled. */
    settled: (n: number) => new Promise<void>((wake) => waiters.push({ at: tally.ok + tally.failed.length + n, wake })),
    stop: async () => {
      running = false;
      await done;
      return tally;
    },
  };
}

describe('the sticky-key bucket', () => {
  it('R2: is frozen: first 4 bytes big-endian of SHA-256(salt:key), mod 10,000 (vectors computed apart, with openssl)', () => {
    const vectors: Array<[string, string, number]> = [
      ['isoplug:v2', 'user-1', 8743],
      ['isoplug:v2', 'user-2', 2554],
      ['', '', 1014],
      ['salt', '', 3589],
      ['checkout:a1b2c3d4e5f6', '42', 1874],
      ['handler:9f8e7d6c', 'Zoë', 7226],
    ];
    for (const [salt, key, bucket] of vectors) expect(rolloutBucket(salt, key), `${salt}:${key}`).toBe(bucket);
  });

  it('R2: spreads 100,000 keys evenly over the buckets (each tenth within 9.5–10.5 %)', () => {
    const tenths = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) tenths[Math.floor(rolloutBucket('spread', `key-${i}`) / 1000)]!++;
    for (const n of tenths) {
      expect(n / 100_000).toBeGreaterThan(0.095);
      expect(n / 100_000).toBeLessThan(0.105);
    }
  });
});

describe('hs.rollout()', () => {
  it('R1: at 20 %, 10,000 keyless calls split 17–23 % to the candidate; at 0 % none, at 100 % all', async () => {
    const hs = await start();
    const events: RolloutEvent[] = [];
    hs.on('rollout', (event) => events.push(event));
    const report = await hs.rollout(B, { percent: 20, data: { label: 'cand' }, version: 'cand' });
    expect(report).toMatchObject({ from: 'v1', version: 'cand', percent: 20, salt: 'versioned-b:cand' });
    expect(report.loadMs).toBeGreaterThan(0);
    expect(events).toEqual([expect.objectContaining({ from: 'v1', to: 'cand', percent: 20 })]);
    expect(hs.canary?.version).toBe('cand');
    expect(hs.percent).toBe(20);
    expect(hs.version).toBe('v1');

    const split = await served(hs, 10_000);
    expect(split.get('cand')! / 10_000).toBeGreaterThanOrEqual(0.17);
    expect(split.get('cand')! / 10_000).toBeLessThanOrEqual(0.23);
    expect(split.get('cand')! + split.get('v1')!).toBe(10_000);

    hs.setPercent(0);
    expect((await served(hs, 2_000)).get('cand')).toBeUndefined();
    hs.setPercent(100);
    expect((await served(hs, 2_000)).get('cand')).toBe(2_000);
    await hs.close();
  });

  it('R1: keyless calls of one tick go in runs of up to 16 to one version; runs split by the percent', async () => {
    const hs = await start();
    await hs.rollout(B, { percent: 50, data: { label: 'cand' }, version: 'cand' });
    const runs: string[] = [];
    for (let tick = 0; tick < 200; tick++) {
      const labels = (await Promise.all(Array.from({ length: 16 }, () => hs.api.whoami()))).map(String);
      expect(new Set(labels).size, `tick ${tick}: ${labels.join(' ')}`).toBe(1);
      runs.push(labels[0]!);
    }
    const onCanary = runs.filter((label) => label === 'cand').length;
    // Error diffusion keeps the share within two runs of the percent.
    expect(Math.abs(onCanary - 100)).toBeLessThanOrEqual(2);
    await hs.close();
  });

  it('R2: 2,000 keys keep their version across calls; 15–25 % at 20 %, 45–55 % at 50 %; no key goes back as the percent rises', async () => {
    const hs = await start();
    await hs.rollout(B, { percent: 20, data: { label: 'cand' }, version: 'cand', salt: 'fleet-7' });
    const keys = Array.from({ length: 2_000 }, (_, i) => `user-${i}`);
    const views = keys.map((key) => hs.with({ key }));
    const round = () => Promise.all(views.map((view) => view.api.whoami()));

    const at20 = await round();
    expect(await round()).toEqual(at20);
    const on20 = at20.filter((label) => label === 'cand').length / keys.length;
    expect(on20).toBeGreaterThanOrEqual(0.15);
    expect(on20).toBeLessThanOrEqual(0.25);
    // The split is the specified hash: any process with the same salt routes each key the same way.
    keys.forEach((key, i) => expect(at20[i] === 'cand').toBe(rolloutBucket('fleet-7', key) < 2000));

    const percents: PercentEvent[] = [];
    hs.on('percent', (event) => percents.push(event));
    hs.setPercent(50);
    expect(percents).toEqual([{ version: 'cand', percent: 50, previous: 20 }]);
    const at50 = await round();
    expect(await round()).toEqual(at50);
    const on50 = at50.filter((label) => label === 'cand').length / keys.length;
    expect(on50).toBeGreaterThanOrEqual(0.45);
    expect(on50).toBeLessThanOrEqual(0.55);
    at20.forEach((label, i) => label === 'cand' && expect(at50[i], keys[i]).toBe('cand'));
    await hs.close();
  });

  it('R3: promote() under 32 callers: 0 failed calls, every call started after it on the new version, the old one drains', async () => {
    const hs = await start();
    await hs.rollout(B, { percent: 30, data: { label: 'cand' }, version: 'cand' });
    const canary = hs.canary;
    const load = traffic(hs, 32);
    await load.settled(2_000);
    const promotes: unknown[] = [];
    hs.on('promote', (event) => promotes.push(event));
    const promoting = hs.promote();
    load.mark('cand');
    // The switch is synchronous: the candidate itself serves now, without a load.
    expect(hs.current).toBe(canary);
    expect(hs.canary).toBeUndefined();
    expect(hs.percent).toBe(0);
    await load.settled(2_000);
    const report = await promoting;
    const tally = await load.stop();
    expect(tally.failed).toEqual([]);
    expect(tally.afterMark).toBeGreaterThan(0);
    expect(tally.wrongAfterMark).toBe(0);
    expect(report).toMatchObject({ from: 'v1', to: 'cand', close: { outcome: 'closed', drained: true } });
    expect(promotes).toEqual([expect.objectContaining({ from: 'v1', to: 'cand', reason: 'promote' })]);
    expect(hs.versions.map((v) => v.role)).toEqual(['current']);
    await hs.close();
  });

  it('R4: abort() with calls in flight on the candidate: they finish on it, every call after goes to the current version', async () => {
    const gate = new Gate();
    const hs = await start();
    await hs.rollout(A, { percent: 100, data: { label: 'cand', gate: gate.buffer }, version: 'cand' });
    const held = Array.from({ length: 5 }, () => hs.api.hold());
    await gate.entered(5);
    const aborts: AbortEvent[] = [];
    hs.on('abort', (event) => aborts.push(event));
    const aborting = hs.abort('enough');
    expect(hs.canary).toBeUndefined();
    expect((await served(hs, 500)).get('v1')).toBe(500);
    gate.open();
    expect(await Promise.all(held)).toEqual(['cand', 'cand', 'cand', 'cand', 'cand']);
    const report = await aborting;
    expect(report).toMatchObject({ version: 'cand', reason: 'enough', close: { outcome: 'closed', drained: true } });
    expect(aborts).toEqual([expect.objectContaining({ version: 'cand', reason: 'enough', auto: false })]);
    // Nothing to abort any more: resolves with nothing, so that it can be called whatever happened.
    expect(await hs.abort()).toBeUndefined();
    await hs.close();
  });

  it.each([
    ['a module that does not parse', () => ({ specifier: fixture('syntax-error.mjs'), options: {} })],
    ['onLoad throws', () => ({ specifier: A, options: { data: { failLoad: true } } })],
    ['a failing health check', () => ({ specifier: A, options: { healthCheck: () => false } })],
  ])('R5: a broken candidate (%s) rejects ERR_SWAP_FAILED, takes no call, leaves nothing', async (_, make) => {
    const hs = await start();
    const events: unknown[] = [];
    hs.on('rollout', (event) => events.push(event));
    const { specifier, options } = make();
    const error = await caught(hs.rollout(specifier, { percent: 50, ...options }));
    expect(error).toMatchObject({ code: 'ERR_SWAP_FAILED' });
    expect(hs.canary).toBeUndefined();
    expect(hs.percent).toBe(0);
    expect(events).toEqual([]);
    expect(hs.versions.map((v) => v.role)).toEqual(['current']);
    expect((await served(hs, 200)).get('v1')).toBe(200);
    expect(() => hs.setPercent(10)).toThrow(expect.objectContaining({ code: 'ERR_ROLLOUT_NO_CANARY' }));
    await hs.close();
  });

  it('R6: a candidate failing half its calls with abortOn { failureRate: 0.1, minCalls: 100 } is aborted on its own, with no failure after it', async () => {
    const hs = await start();
    await hs.rollout(FLAKY, {
      percent: 50,
      version: 'flaky',
      data: { label: 'flaky' },
      abortOn: { failureRate: 0.1, minCalls: 100 },
    });
    const load = traffic(hs, 32);
    const [event] = (await once(hs, 'abort')) as [AbortEvent];
    load.mark('v1');
    await load.settled(2_000);
    const tally = await load.stop();
    expect(event).toMatchObject({ version: 'flaky', auto: true, calls: expect.any(Number) });
    expect(event.calls).toBeGreaterThanOrEqual(100);
    expect(event.failureRate).toBeGreaterThan(0.1);
    expect(event.reason).toBeInstanceOf(RolloutAbortedError);
    expect(event.reason).toMatchObject({ code: 'ERR_ROLLOUT_ABORTED', version: 'flaky', calls: event.calls });
    expect(hs.canary).toBeUndefined();
    expect(tally.failed.length).toBeGreaterThan(0);
    expect(tally.failed.every((e) => (e as { code?: string }).code === 'E_FLAKY')).toBe(true);
    expect(tally.afterMark).toBeGreaterThan(0);
    expect(tally.failedAfterMark).toBe(0);
    expect(tally.wrongAfterMark).toBe(0);
    await hs.close();
  });

  it('R6: a candidate failing below the rate, or before minCalls, keeps serving', async () => {
    const hs = await start();
    await hs.rollout(FLAKY, { percent: 100, version: 'flaky', abortOn: { failureRate: 0.6, minCalls: 10 } });
    const aborts: unknown[] = [];
    hs.on('abort', (event) => aborts.push(event));
    await Promise.allSettled(Array.from({ length: 400 }, (_, i) => hs.api.work(i, 0)));
    expect(aborts).toEqual([]);
    expect(hs.canary?.version).toBe('flaky');
    const [canary] = hs.versions.filter((v) => v.role === 'canary');
    expect(canary?.rollout).toMatchObject({ calls: 400, failures: 200 });
    await hs.close();
  });

  it('R7: a crash of the candidate aborts it; only its own calls fail; the current version serves on', async () => {
    const hs = await start();
    await hs.rollout(A, { percent: 100, data: { label: 'cand' }, version: 'cand' });
    const aborted = once(hs, 'abort') as Promise<[AbortEvent]>;
    const crashes: unknown[] = [];
    hs.on('crash', (error) => crashes.push(error));
    expect(await caught(hs.api.die(1))).toMatchObject({ code: 'ERR_PLUGIN_CRASHED', version: 'cand' });
    const [event] = await aborted;
    expect(event).toMatchObject({ version: 'cand', auto: true });
    expect(event.reason).toMatchObject({ code: 'ERR_ROLLOUT_ABORTED', cause: { code: 'ERR_PLUGIN_CRASHED' } });
    expect(hs.canary).toBeUndefined();
    expect(hs.state).toBe('ready');
    expect(crashes).toEqual([]);
    expect((await served(hs, 300)).get('v1')).toBe(300);
    await hs.close();
  });

  it('R8: close() during a rollout closes the canary too (reports: current, canary) and leaves no thread', async () => {
    const hs = await start();
    await hs.rollout(B, { percent: 50, data: { label: 'cand' }, version: 'cand' });
    const inFlight = Array.from({ length: 200 }, (_, i) => hs.api.work(i, 0));
    const reports = await hs.close();
    expect(reports.map((r) => r.outcome)).toEqual(['closed', 'closed']);
    const labels = (await Promise.all(inFlight)).map((r) => r.label);
    expect(new Set(labels)).toEqual(new Set(['v1', 'cand']));
    // No thread left: the leak check after this test fails on any worker still alive.
    expect(await caught(hs.promote())).toMatchObject({ code: 'ERR_PLUGIN_CLOSED' });
    expect(() => hs.setPercent(10)).toThrow(expect.objectContaining({ code: 'ERR_PLUGIN_CLOSED' }));
  });

  it('R8: close() while a rollout loads rejects it ERR_PLUGIN_CLOSED; destroy() ends the canary calls in flight', async () => {
    const hs = await start();
    const loading = hs.rollout(B, { percent: 50 });
    await hs.close();
    expect(await caught(loading)).toMatchObject({ code: 'ERR_PLUGIN_CLOSED' });

    const gate = new Gate();
    const hs2 = await start();
    await hs2.rollout(A, { percent: 100, data: { label: 'cand', gate: gate.buffer } });
    const held = hs2.api.hold();
    await gate.entered(1);
    await hs2.destroy(new Error('stop'));
    expect(await caught(held)).toMatchObject({ code: 'ERR_PLUGIN_DESTROYED' });
  });

  it('R9: swap() during a rollout ends the canary: the new version takes every call', async () => {
    const hs = await start();
    await hs.rollout(B, { percent: 50, data: { label: 'cand' }, version: 'cand' });
    const aborts: AbortEvent[] = [];
    hs.on('abort', (event) => aborts.push(event));
    await hs.swap(A, { data: { label: 'v2' }, version: 'v2' });
    expect(hs.canary).toBeUndefined();
    expect(aborts).toEqual([expect.objectContaining({ version: 'cand', auto: false })]);
    expect((await served(hs, 500)).get('v2')).toBe(500);
    await hs.close();
  });

  it('R9: a second rollout replaces the canary; the first drains', async () => {
    const hs = await start();
    await hs.rollout(B, { percent: 50, data: { label: 'c1' }, version: 'c1' });
    const aborts: AbortEvent[] = [];
    hs.on('abort', (event) => aborts.push(event));
    await hs.rollout(B, { percent: 30, data: { label: 'c2' }, version: 'c2' });
    expect(hs.canary?.version).toBe('c2');
    expect(hs.percent).toBe(30);
    expect(aborts).toEqual([expect.objectContaining({ version: 'c1', auto: false })]);
    const split = await served(hs, 1_000);
    expect(split.get('c1')).toBeUndefined();
    expect(split.get('c2')).toBeGreaterThan(0);
    await hs.close();
  });

  it('R9: a staged swap: rollout at 0 % loads and checks ahead, takes no call; promote() switches to that very version', async () => {
    const checked: string[] = [];
    const hs = await start();
    await hs.rollout(B, {
      percent: 0,
      data: { label: 'v2' },
      version: 'v2',
      healthCheck: async (api) => checked.push(String(await api.whoami())),
    });
    expect(checked).toEqual(['v2']);
    const staged = hs.canary;
    expect((await served(hs, 1_000)).get('v1')).toBe(1_000);
    const report = await hs.promote();
    expect(hs.current).toBe(staged);
    expect(report).toMatchObject({ from: 'v1', to: 'v2' });
    expect((await served(hs, 200)).get('v2')).toBe(200);
    await hs.close();
  });

  it('R10: the current version crashes during a rollout (restart on): the canary serves its share on, the restart replaces the current only', async () => {
    const hs = await createHotSwap<Versioned>(A, { data: { label: 'v1' }, version: 'v1', restart: { backoffMs: 1 } });
    await hs.rollout(B, { percent: 50, data: { label: 'cand' }, version: 'cand', salt: 's' });
    const keys = Array.from({ length: 64 }, (_, i) => `k${i}`);
    const onCanary = hs.with({ key: keys.find((k) => rolloutBucket('s', k) < 5000)! });
    const onCurrent = hs.with({ key: keys.find((k) => rolloutBucket('s', k) >= 5000)! });
    const canary = hs.canary;
    const restarted = once(hs, 'restart');
    expect(await caught(onCurrent.api.die(1))).toMatchObject({ code: 'ERR_PLUGIN_CRASHED', version: 'v1' });
    expect(await onCanary.api.whoami()).toBe('cand');
    await restarted;
    expect(hs.canary).toBe(canary);
    expect(hs.state).toBe('ready');
    expect(await onCurrent.api.whoami()).toBe('v1');
    expect(await onCanary.api.whoami()).toBe('cand');
    await hs.close();
  });

  it('R10: 10 rollouts, each promoted or aborted, under 32 callers: 0 failed calls, at most 4 live workers', async () => {
    const hs = await start();
    const load = traffic(hs, 32);
    let maxWorkers = 0;
    const sample = () => (maxWorkers = Math.max(maxWorkers, leftovers().workers));
    hs.on('rollout', sample);
    hs.on('drained', sample);
    for (let n = 1; n <= 10; n++) {
      await hs.rollout(n % 2 ? B : A, { percent: 50, data: { label: `c${n}` }, version: `c${n}` });
      await load.settled(200);
      sample();
      await (n % 3 === 0 ? hs.abort() : hs.promote());
    }
    const tally = await load.stop();
    expect(tally.failed).toEqual([]);
    expect(tally.ok).toBeGreaterThan(2_000);
    // current + canary + one draining (retain: 1) + one loading.
    expect(maxWorkers).toBeLessThanOrEqual(4);
    await hs.close();
  });

  it('drives like a fleet host: rollout(file, { version, percent, salt }), setPercent, promote, abort', async () => {
    const hs = await start();
    await hs.rollout(B, { version: 'abc123', percent: 10, salt: 'handler:abc123' });
    const view = hs.with({ key: 'user-9' });
    const canaryCalls = () => hs.canary!.stats.calls;
    await view.api.whoami();
    expect(canaryCalls()).toBe(rolloutBucket('handler:abc123', 'user-9') < 10 * 100 ? 1 : 0);
    hs.setPercent(100);
    const before = canaryCalls();
    await view.api.whoami();
    expect(canaryCalls()).toBe(before + 1);
    await hs.promote();
    expect(hs.version).toBe('abc123');
    await hs.rollout(A, { version: 'def456', percent: 5, salt: '' });
    expect(await hs.abort('the deployment no longer has this canary')).toMatchObject({ version: 'def456' });
    expect(hs.version).toBe('abc123');
    await hs.close();
  });

  it('hs.versions: roles, shares, and both versions’ calls, failures and latency while the canary runs', async () => {
    const hs = await start();
    expect(hs.versions).toEqual([expect.objectContaining({ role: 'current', percent: 100, rollout: undefined })]);
    await hs.rollout(B, { percent: 50, data: { label: 'cand' }, version: 'cand' });
    await served(hs, 1_000);
    const [current, canary] = hs.versions;
    expect(current).toMatchObject({ version: 'v1', role: 'current', percent: 50 });
    expect(canary).toMatchObject({ version: 'cand', role: 'canary', percent: 50 });
    expect(current!.rollout!.calls + canary!.rollout!.calls).toBe(1_000);
    expect(canary!.rollout!.failures).toBe(0);
    expect(canary!.rollout!.p50Ms).toBeGreaterThan(0);
    expect(canary!.rollout!.p99Ms).toBeGreaterThanOrEqual(canary!.rollout!.p50Ms!);
    await hs.close();
  });

  it('bad input: TypeError/RangeError naming the option; no canary: ERR_ROLLOUT_NO_CANARY', async () => {
    const hs = await start();
    const option = (error: unknown) => (error as { option?: string }).option;
    for (const [options, name, kind] of [
      [undefined, 'rolloutOptions', TypeError],
      [{}, 'rolloutOptions.percent', TypeError],
      [{ percent: '5' }, 'rolloutOptions.percent', TypeError],
      [{ percent: 101 }, 'rolloutOptions.percent', RangeError],
      [{ percent: -1 }, 'rolloutOptions.percent', RangeError],
      [{ percent: 5, salt: 7 }, 'rolloutOptions.salt', TypeError],
      [{ percent: 5, abortOn: { minCalls: 5 } }, 'rolloutOptions.abortOn.failureRate', TypeError],
      [{ percent: 5, abortOn: { failureRate: 2 } }, 'rolloutOptions.abortOn.failureRate', RangeError],
      [{ percent: 5, abortOn: { failureRate: 0.1, minCalls: 0 } }, 'rolloutOptions.abortOn.minCalls', RangeError],
      [{ percent: 5, abortOn: { failureRate: 0.1, windowMs: 0 } }, 'rolloutOptions.abortOn.windowMs', RangeError],
      [{ percent: 5, abortOn: { failureRate: 0.1, ratio: 1 } }, 'rolloutOptions.abortOn.ratio', TypeError],
      [{ percent: 5, retain: 1 }, 'swapOptions.retain', TypeError],
    ] as const) {
      const error = await caught(hs.rollout(B, options as never));
      expect(error, JSON.stringify(options)).toBeInstanceOf(kind);
      expect(option(error), JSON.stringify(options)).toBe(name);
    }
    expect(hs.versions).toHaveLength(1);
    expect(() => hs.setPercent(5)).toThrow(expect.objectContaining({ code: 'ERR_ROLLOUT_NO_CANARY' }));
    expect(await caught(hs.promote())).toMatchObject({ code: 'ERR_ROLLOUT_NO_CANARY' });
    await hs.rollout(B, { percent: 5 });
    expect(() => hs.setPercent(NaN)).toThrow(TypeError);
    expect(() => hs.setPercent(100.5)).toThrow(expect.objectContaining({ option: 'percent' }));
    expect(() => hs.setPercent('7' as never)).toThrow(expect.objectContaining({ option: 'percent' }));
    expect(hs.percent).toBe(5);
    expect(() => hs.with({ key: 7 as never })).toThrow(expect.objectContaining({ option: 'callOptions.key' }));
    expect(() => hs.with({ key: 'k', nope: 1 } as never)).toThrow(
      expect.objectContaining({ option: 'callOptions.nope' }),
    );
    await hs.close();
  });
});
