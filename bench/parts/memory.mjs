// Part 4 — memory: RSS of 20 loaded idle plugins / 20, vs 20 bare `new Worker`s / 20; and what a hot
// swap's standby costs: RSS of 20 idle hot swaps with `standby: true` / 20, minus 20 without / 20. Each
// count is taken in a fresh child process; ROUNDS children of each kind, alternated; the median is
// reported. Then the reload series (lib/reload-series.mjs): the host heap over 300 reloads with
// isolation 'worker' and 'inline', beside a cache-busting import; written to results/reloads.json.
import { writeFileSync } from 'node:fs';
import { runChild } from '../lib/child.mjs';
import { runReloads } from '../lib/reload-series.mjs';
import { makeFigure } from '../lib/results.mjs';
import { median } from '../lib/stats.mjs';
import { formatTable, num, ratio } from '../lib/table.mjs';

const N = 20;
const ROUNDS = 3;
const CHILD = new URL('../children/memory-child.mjs', import.meta.url);
const MB = 1024 * 1024;
const LABEL = {
  isoplug: 'idle plugins',
  bare: 'bare workers',
  hotswap: 'hot swaps',
  standby: 'hot swaps with standby',
};

export async function runMemory({ progress, resultsDir }) {
  const per = { isoplug: [], bare: [], hotswap: [], standby: [] };
  const notes = [];
  for (let round = 0; round < ROUNDS; round++) {
    const modes = ['isoplug', 'bare', 'hotswap', 'standby'];
    const order = modes.map((_, i) => modes[(i + round) % modes.length]);
    for (const mode of order) {
      progress(`memory: ${N} ${LABEL[mode]}, fresh process ${round + 1}/${ROUNDS}…`, { force: true });
      const r = await runChild(CHILD, [mode, String(N)]);
      per[mode].push(r.perItem);
      if (r.activeAtEnd?.length) notes.push(`${mode} child: still active at its end: ${r.activeAtEnd.join(', ')}`);
      if (r.hygiene !== 'exited by itself') notes.push(`${mode} child: ${r.hygiene}`);
    }
  }
  const m = Object.fromEntries(Object.entries(per).map(([mode, values]) => [mode, median(values)]));
  const runs = (mode) => per[mode].map((v) => num(v / MB)).join(', ');
  const figures = [
    makeFigure({
      part: 'memory',
      key: 'memory.perPlugin',
      name: `RSS per idle plugin (${N} loaded / ${N})`,
      value: m.isoplug / MB,
      unit: 'MB',
      better: 'lower',
      peers: { bareWorker: m.bare / MB },
      baseline: 'bareWorker',
      note: `median of ${ROUNDS} fresh processes each; runs: isoplug ${runs('isoplug')} MB; bare ${runs('bare')} MB`,
    }),
  ];
  const rows = [
    [`isoplug: ${N} idle plugins / ${N}`, `${num(m.isoplug / MB)} MB`, runs('isoplug'), ratio(m.isoplug / m.bare)],
    [`bare new Worker: ${N} / ${N}`, `${num(m.bare / MB)} MB`, runs('bare'), '1.00×'],
  ];
  const standbyCost = m.standby - m.hotswap;
  figures.push(
    makeFigure({
      part: 'memory',
      key: 'memory.standby',
      name: `RSS cost of a standby (hot swap with standby − without, ${N} / ${N})`,
      value: standbyCost / MB,
      unit: 'MB',
      better: 'lower',
      peers: { bareWorker: m.bare / MB },
      baseline: 'bareWorker',
      note: `median of ${ROUNDS} fresh processes each, difference of the medians; runs: with standby ${runs('standby')} MB per hot swap; without ${runs('hotswap')} MB per hot swap; one standby worker each (threads: 1)`,
    }),
  );
  rows.push(
    [`isoplug: ${N} idle hot swaps / ${N}`, `${num(m.hotswap / MB)} MB`, runs('hotswap'), ratio(m.hotswap / m.bare)],
    [
      `isoplug: ${N} idle hot swaps with standby / ${N}`,
      `${num(m.standby / MB)} MB`,
      runs('standby'),
      ratio(m.standby / m.bare),
    ],
    ['  standby cost (with − without)', `${num(standbyCost / MB)} MB`, '', ratio(standbyCost / m.bare)],
  );
  const table = formatTable(
    ['memory (fresh process each)', 'RSS per item', `runs (${ROUNDS})`, '× bare worker'],
    rows,
    {
      title: 'MEMORY — RSS delta after gc, median of the runs',
    },
  );
  const reloads = await runReloads({ progress });
  figures.push(...reloads.figures);
  notes.push(...reloads.notes);
  writeFileSync(
    new URL('reloads.json', resultsDir),
    JSON.stringify({ generated: new Date().toISOString(), node: process.version, series: reloads.series }, null, 2) +
      '\n',
  );
  const reloadTable = formatTable(
    ['reload series (fresh process each)', 'heap growth', 'slope, last half', 'per reload', 'heap MB every 25 reloads'],
    reloads.rows,
    { title: 'MEMORY — host heap after gc over reloads of a ~500 KB plugin' },
  );
  return { figures, tables: [table, reloadTable], notes };
}
