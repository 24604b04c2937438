// Part 7 — storm: many versions booting at once. 200 `loadPlugin()` calls in one tick, and a manager
// reload of a folder of 200 plugins, at boot concurrency 1, 2, 4 and 8 (`configureBoots`), and with the
// queue opened wide (concurrency 4096: every worker starts at once, as before the boot queue), the peer
// the ratios are taken against. Figures per run: the host's event-loop delay (max and p99,
// `monitorEventLoopDelay`, 10 ms resolution), failures, and when the last load settled (ms from the call).
// With `readyTimeoutMs: 1000`, every load must settle by about 1 s: the deadline counts from the call.
// The idle control is the same delay measure for 1 s with nothing booting (other processes share the CPUs).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { ENV, makeFigure } from '../lib/results.mjs';
import { formatTable, num } from '../lib/table.mjs';

const N = 200;
const SWEEP = [1, 2, 4, 8];
const WIDE = 4096;
const LONG_MS = 30_000;

function plugin(i) {
  return `export const id = () => ${i};\nexport function onLoad() {}\n`;
}

/** Runs `fn` with the loop-delay monitor on; the max and p99 delay in ms. */
async function measured(fn) {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  try {
    const value = await fn();
    return { value, maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6 };
  } finally {
    h.disable();
  }
}

async function idleControl() {
  const { maxMs } = await measured(() => sleep(1000));
  return maxMs;
}

/** N loads called in one tick; each one's settle time from the call, and the failures by code. */
async function loads(iso, file, readyTimeoutMs, progress, label) {
  const started = performance.now();
  let settled = 0;
  const outcomes = await Promise.all(
    Array.from({ length: N }, () =>
      iso
        .loadPlugin(file, { readyTimeoutMs })
        .then(
          (p) => ({ p, at: performance.now() - started }),
          (error) => ({ error, at: performance.now() - started }),
        )
        .finally(() => progress(`storm: ${label}: ${++settled}/${N} settled`)),
    ),
  );
  const plugins = outcomes.filter((o) => o.p).map((o) => o.p);
  const failures = outcomes.filter((o) => o.error);
  const queued = failures.filter((o) => o.error.cause?.queued === true).length;
  await Promise.all(plugins.map((p) => p.close()));
  return {
    ok: plugins.length,
    failed: failures.length,
    failedQueued: queued,
    codes: [...new Set(failures.map((o) => `${o.error.code}/${o.error.cause?.code}`))],
    lastSettleMs: Math.max(...outcomes.map((o) => o.at)),
  };
}

async function reload(iso, dir, readyTimeoutMs, progress, label) {
  // A build without the boot queue has no reloadTimeoutMs (the part also measures the tree before it).
  const bound = typeof iso.configureBoots === 'function' ? { reloadTimeoutMs: 120_000 } : {};
  const manager = new iso.PluginManager({ dir, load: { readyTimeoutMs }, ...bound });
  const started = performance.now();
  progress(`storm: ${label}: reloading ${N} plugins…`, { force: true });
  let result;
  try {
    const r = await manager.reload();
    result = { ok: r.loaded.length, failed: 0 };
  } catch (error) {
    result = { ok: 0, failed: error.failures?.length ?? N, codes: [error.code] };
  }
  result.settleMs = performance.now() - started;
  await manager.close();
  return result;
}

export async function runStorm({ iso, progress, resultsDir }) {
  const configurable = typeof iso.configureBoots === 'function';
  const defaults = configurable ? iso.bootStats() : undefined;
  const root = mkdtempSync(join(tmpdir(), 'isoplug-storm-'));
  const file = join(root, 'one.mjs');
  writeFileSync(file, plugin(0));
  const dir = join(root, 'set');
  mkdirSync(dir);
  for (let i = 0; i < N; i++) writeFileSync(join(dir, `p${String(i).padStart(3, '0')}.mjs`), plugin(i));
  const runs = [];
  const set = (concurrency) => configurable && iso.configureBoots({ concurrency });
  try {
    progress('storm: idle control…', { force: true });
    const idleMs = await idleControl();
    const settings = configurable ? [...SWEEP, WIDE] : [undefined];
    for (const concurrency of settings) {
      set(concurrency);
      const label = concurrency === undefined ? 'loads' : `loads at ${concurrency}`;
      const m = await measured(() => loads(iso, file, LONG_MS, progress, label));
      runs.push({ kind: 'loads', readyTimeoutMs: LONG_MS, concurrency, ...m.value, maxMs: m.maxMs, p99Ms: m.p99Ms });
    }
    set(defaults?.concurrency);
    const quick = await measured(() => loads(iso, file, 1000, progress, 'loads, readyTimeoutMs 1000'));
    runs.push({
      kind: 'loads',
      readyTimeoutMs: 1000,
      concurrency: defaults?.concurrency,
      ...quick.value,
      maxMs: quick.maxMs,
      p99Ms: quick.p99Ms,
    });
    for (const concurrency of configurable ? [defaults.concurrency, WIDE] : [undefined]) {
      set(concurrency);
      const m = await measured(() => reload(iso, dir, LONG_MS, progress, `reload at ${concurrency ?? 'default'}`));
      runs.push({ kind: 'reload', readyTimeoutMs: LONG_MS, concurrency, ...m.value, maxMs: m.maxMs, p99Ms: m.p99Ms });
    }
    set(defaults?.concurrency);

    const table = formatTable(
      ['storm', 'concurrency', 'readyTimeoutMs', 'ok', 'failed', 'last settled', 'max loop delay', 'p99 delay'],
      runs.map((r) => [
        r.kind === 'loads' ? `${N} loadPlugin()` : `reload of ${N}`,
        r.concurrency === WIDE ? 'unbounded' : String(r.concurrency ?? 'n/a'),
        String(r.readyTimeoutMs),
        String(r.ok),
        String(r.failed),
        `${num(r.lastSettleMs ?? r.settleMs)} ms`,
        `${num(r.maxMs)} ms`,
        `${num(r.p99Ms)} ms`,
      ]),
      { title: `STORM — ${N} versions booting at once (idle control: max loop delay ${num(idleMs)} ms)` },
    );
    const at = (kind, c, t = LONG_MS) =>
      runs.find((r) => r.kind === kind && r.concurrency === c && r.readyTimeoutMs === t);
    const figures = [];
    if (configurable) {
      const c = defaults.concurrency;
      const loadsDefault = at('loads', c);
      const loadsWide = at('loads', WIDE);
      const reloadDefault = at('reload', c);
      const reloadWide = at('reload', WIDE);
      figures.push(
        makeFigure({
          part: 'storm',
          key: 'loads-max-delay',
          name: `${N} loads: max loop delay`,
          value: loadsDefault.maxMs,
          unit: 'ms',
          better: 'lower',
          peers: { unbounded: loadsWide.maxMs },
          baseline: 'unbounded',
          bar: { op: '<=', limit: 100 },
        }),
        makeFigure({
          part: 'storm',
          key: 'reload-max-delay',
          name: `reload of ${N}: max loop delay`,
          value: reloadDefault.maxMs,
          unit: 'ms',
          better: 'lower',
          peers: { unbounded: reloadWide.maxMs },
          baseline: 'unbounded',
          bar: { op: '<=', limit: 100 },
        }),
        makeFigure({
          part: 'storm',
          key: 'quick-last-settle',
          name: `${N} loads, readyTimeoutMs 1000: last settled`,
          value: quick.value.lastSettleMs,
          unit: 'ms',
          better: 'lower',
          bar: { op: '<=', limit: 2000 },
        }),
        makeFigure({
          part: 'storm',
          key: 'loads-failures',
          name: `${N} loads (readyTimeoutMs ${LONG_MS}): failures`,
          value: loadsDefault.failed,
          unit: 'loads',
          better: 'lower',
          bar: { op: '<=', limit: 0 },
        }),
      );
    }
    const notes = [
      `idle control ${num(idleMs)} ms max loop delay: a delay near it is other processes' doing, not the storm's`,
      `with readyTimeoutMs 1000, ${quick.value.ok} loaded and ${quick.value.failed} failed (${quick.value.failedQueued} still queued at their deadline, never started): a boot costs 30-50 ms of CPU, so a few cores boot a few dozen versions a second`,
    ];
    const doc = {
      generated: new Date().toISOString(),
      node: ENV.node,
      cpus: ENV.cpus,
      n: N,
      idleMs,
      defaults: defaults ?? null,
      runs,
      notes,
    };
    writeFileSync(new URL('storm.json', resultsDir), JSON.stringify(doc, null, 2) + '\n');
    return { figures, tables: [table], notes };
  } finally {
    if (configurable && defaults) iso.configureBoots({ concurrency: defaults.concurrency });
    rmSync(root, { recursive: true, force: true });
  }
}
