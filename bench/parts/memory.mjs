// Part 4 — memory: RSS of 20 loaded idle plugins / 20, vs 20 bare `new Worker`s / 20. Each count is
// taken in a fresh child process; ROUNDS children of each kind, alternated; the median is reported.
import { runChild } from '../lib/child.mjs';
import { makeFigure } from '../lib/results.mjs';
import { median } from '../lib/stats.mjs';
import { formatTable, num, ratio } from '../lib/table.mjs';

const N = 20;
const ROUNDS = 3;
const CHILD = new URL('../children/memory-child.mjs', import.meta.url);
const MB = 1024 * 1024;

export async function runMemory({ progress }) {
  const per = { isoplug: [], bare: [] };
  const notes = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? ['bare', 'isoplug'] : ['isoplug', 'bare'];
    for (const mode of order) {
      progress(`memory: ${N} ${mode === 'isoplug' ? 'idle plugins' : 'bare workers'}, fresh process ${round + 1}/${ROUNDS}…`, { force: true });
      const r = await runChild(CHILD, [mode, String(N)]);
      per[mode].push(r.perItem);
      if (r.activeAtEnd?.length) notes.push(`${mode} child: still active at its end: ${r.activeAtEnd.join(', ')}`);
      if (r.hygiene !== 'exited by itself') notes.push(`${mode} child: ${r.hygiene}`);
    }
  }
  const iso = median(per.isoplug);
  const bare = median(per.bare);
  const figures = [
    makeFigure({
      part: 'memory',
      key: 'memory.perPlugin',
      name: `RSS per idle plugin (${N} loaded / ${N})`,
      value: iso / MB,
      unit: 'MB',
      better: 'lower',
      peers: { bareWorker: bare / MB },
      baseline: 'bareWorker',
      note: `median of ${ROUNDS} fresh processes each; runs: isoplug ${per.isoplug.map((v) => num(v / MB)).join(', ')} MB; bare ${per.bare.map((v) => num(v / MB)).join(', ')} MB`,
    }),
  ];
  const table = formatTable(
    ['memory (fresh process each)', 'RSS per item', `runs (${ROUNDS})`, '× bare worker'],
    [
      [`isoplug: ${N} idle plugins / ${N}`, `${num(iso / MB)} MB`, per.isoplug.map((v) => num(v / MB)).join(', '), ratio(iso / bare)],
      [`bare new Worker: ${N} / ${N}`, `${num(bare / MB)} MB`, per.bare.map((v) => num(v / MB)).join(', '), '1.00×'],
    ],
    { title: 'MEMORY — RSS delta after gc, median of the runs' },
  );
  return { figures, tables: [table], notes };
}
