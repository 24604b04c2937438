// The memory part's reload series: the host heap (after gc) over RELOADS reloads of a ~500 KB plugin
// by a PluginManager, with isolation 'worker' and 'inline', beside the naive inline reload (a
// cache-busting import of each version, what the inline mode did before it bundled). Each series runs
// in a fresh child process.
import { runChild } from './child.mjs';
import { makeFigure } from './results.mjs';
import { slope } from './stats.mjs';
import { num } from './table.mjs';

const RELOADS = 300;
const CHILD = new URL('../children/reload-child.mjs', import.meta.url);
const MB = 1024 * 1024;
const KB = 1024;
const LABEL = { worker: "isolation 'worker'", inline: "isolation 'inline'", import: 'cache-busting import' };

/** Growth from the first sample (after one reload, so everything is imported) and the slope over the last half. */
function analyse(samples) {
  const first = samples[1] ?? samples[0];
  const last = samples.at(-1);
  const half = samples.filter((s) => s.reloads >= last.reloads / 2);
  return {
    growth: last.heapUsed - first.heapUsed,
    slope: slope(
      half.map((s) => s.reloads),
      half.map((s) => s.heapUsed),
    ),
  };
}

export async function runReloads({ progress }) {
  const series = {};
  for (const mode of ['worker', 'inline', 'import']) {
    const r = await runChild(CHILD, [mode, String(RELOADS)], {
      onProgress: (m) => progress(`memory: ${LABEL[mode]}, reload ${m.reloads}/${m.n}…`, { force: true }),
    });
    series[mode] = { ...analyse(r.samples), samples: r.samples, msPerReload: r.msPerReload, hygiene: r.hygiene };
  }
  const { worker, inline, import: naive } = series;
  const figure = makeFigure({
    part: 'memory',
    key: 'memory.inlineReloads',
    name: `host heap growth over ${RELOADS} inline reloads of a ~500 KB plugin (after gc)`,
    value: inline.growth / MB,
    unit: 'MB',
    better: 'lower',
    peers: { worker: worker.growth / MB, cacheBustingImport: naive.growth / MB },
    baseline: 'cacheBustingImport',
    bar: { op: '<=', limit: 8 },
    note: `slope over the last half: inline ${num(inline.slope / KB)} KB/reload, worker ${num(worker.slope / KB)}, import ${num(naive.slope / KB)}; ms per reload: inline ${num(inline.msPerReload)}, worker ${num(worker.msPerReload)}, import ${num(naive.msPerReload)}`,
  });
  const rows = Object.entries(series).map(([mode, s]) => [
    `${RELOADS} reloads, ${LABEL[mode]}`,
    `${num(s.growth / MB)} MB`,
    `${num(s.slope / KB)} KB`,
    `${num(s.msPerReload)} ms`,
    s.samples.map((x) => num(x.heapUsed / MB)).join(' '),
  ]);
  const notes = Object.entries(series)
    .filter(([, s]) => s.hygiene !== 'exited by itself')
    .map(([mode, s]) => `${mode} reload child: ${s.hygiene}`);
  return {
    figures: [figure],
    rows,
    series: Object.fromEntries(Object.entries(series).map(([m, s]) => [m, s.samples])),
    notes,
  };
}
