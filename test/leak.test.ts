import { describe, expect, it } from 'vitest';
import { createHotSwap, loadPlugin } from '../src/index.js';
import { fixture } from './helpers.js';

type Versioned = typeof import('./fixtures/versioned.mjs');

/** Host heap after a full collection, in bytes. Needs --expose-gc (set in vitest.config.ts). */
function heapAfterGc(): number {
  globalThis.gc!();
  globalThis.gc!();
  return process.memoryUsage().heapUsed;
}

/** Least-squares slope of y over x. */
function slope(points: Array<[number, number]>): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const num = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const den = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return num / den;
}

/** Growth from the first sample to the median of the last quarter, and the slope over the last half. */
function summarize(samples: Array<[number, number]>) {
  const lastQuarter = samples
    .slice(-Math.ceil(samples.length / 4))
    .map(([, y]) => y)
    .sort((a, b) => a - b);
  const median = lastQuarter[Math.floor(lastQuarter.length / 2)]!;
  return { growth: median - samples[0]![1], slopePerCycle: slope(samples.slice(Math.floor(samples.length / 2))) };
}

// Generous limits: these run hundreds of worker boots, slow on a loaded 2-core machine. Not assertions.
describe('memory', { timeout: 240_000 }, () => {
  it('S7: 200 swaps under load leave the host heap flat (growth ≤ 2 MB, slope ≤ 5 KB per swap)', async () => {
    const hs = await createHotSwap<Versioned>(fixture('versioned.mjs'), { data: { label: 'v0' } });
    let running = true;
    let failed = 0;
    const callers = Array.from({ length: 8 }, async () => {
      while (running) await hs.api.work(1).catch(() => failed++);
    });
    const samples: Array<[number, number]> = [];
    for (let n = 1; n <= 200; n++) {
      await hs.swap(fixture(n % 2 ? 'versioned-b.mjs' : 'versioned.mjs'), { data: { label: `v${n}` } });
      if (n % 10 === 0) samples.push([n, heapAfterGc()]);
    }
    running = false;
    await Promise.all(callers);
    await hs.close();
    const { growth, slopePerCycle } = summarize(samples);
    expect(failed).toBe(0);
    expect(growth).toBeLessThan(2 * 2 ** 20);
    expect(slopePerCycle).toBeLessThan(5 * 1024);
  });

  it('L7: 200 load/close cycles, 10 at a time, leave the host heap flat', async () => {
    const samples: Array<[number, number]> = [];
    for (let round = 1; round <= 20; round++) {
      const plugins = await Promise.all(
        Array.from({ length: 10 }, () => loadPlugin<Versioned>(fixture('versioned.mjs'), { data: { label: 'x' } })),
      );
      await Promise.all(plugins.map((p) => p.api.work(round)));
      await Promise.all(plugins.map((p) => p.close()));
      samples.push([round * 10, heapAfterGc()]);
    }
    const { growth, slopePerCycle } = summarize(samples);
    expect(growth).toBeLessThan(2 * 2 ** 20);
    expect(slopePerCycle).toBeLessThan(5 * 1024);
  });
});
