// Part — transfer: a 64 MB result copied (structured clone) vs moved (transfer() from isoplug/plugin),
// top level and nested in an object, in the same plugin and the same run. ROUNDS rounds, the two ways
// interleaved; medians. The plugin makes each buffer before the timed call (`prepare`), so the time is
// the call and the result's journey only.
import { fileURLToPath } from 'node:url';
import { makeFigure } from '../lib/results.mjs';
import { median } from '../lib/stats.mjs';
import { formatTable, num, ratio } from '../lib/table.mjs';

const BYTES = 64 * 1024 * 1024;
const ROUNDS = 15;
const PLUGIN = fileURLToPath(new URL('../plugins/transfer.mjs', import.meta.url));

export async function runTransfer({ iso, progress }) {
  const plugin = await iso.loadPlugin(PLUGIN);
  const times = { copied: [], moved: [], copiedNested: [], movedNested: [] };
  try {
    // Warm up each path once.
    for (const method of Object.keys(times)) {
      await plugin.call('prepare', BYTES);
      await plugin.call(method);
    }
    for (let round = 0; round < ROUNDS; round++) {
      progress(`transfer: round ${round + 1}/${ROUNDS}…`, { force: true });
      const order = round % 2 === 0 ? Object.keys(times) : Object.keys(times).reverse();
      for (const method of order) {
        await plugin.call('prepare', BYTES);
        const started = performance.now();
        const result = await plugin.call(method);
        times[method].push(performance.now() - started);
        const size = result instanceof ArrayBuffer ? result.byteLength : result.data.byteLength;
        if (size !== BYTES) throw new Error(`${method}: got ${size} bytes`);
      }
    }
  } finally {
    await plugin.close();
  }
  const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  const figures = [
    makeFigure({
      part: 'transfer',
      key: 'transfer.result64mb',
      name: '64 MB ArrayBuffer result, moved with transfer() vs copied',
      value: m.moved,
      unit: 'ms',
      better: 'lower',
      peers: { copied: m.copied },
      baseline: 'copied',
      bar: { against: 'copied', op: '<=', limit: 0.2 },
      note: `median of ${ROUNDS} interleaved rounds; the buffer is made before the timed call`,
    }),
    makeFigure({
      part: 'transfer',
      key: 'transfer.result64mbNested',
      name: '64 MB Uint8Array nested in a result object, moved vs copied',
      value: m.movedNested,
      unit: 'ms',
      better: 'lower',
      peers: { copied: m.copiedNested },
      baseline: 'copied',
      bar: { against: 'copied', op: '<=', limit: 0.2 },
      note: `median of ${ROUNDS} interleaved rounds`,
    }),
  ];
  const runs = (k) => times[k].map((v) => num(v)).join(' ');
  const table = formatTable(
    ['64 MB result', 'copied', 'moved', 'moved ÷ copied', 'runs moved (ms)'],
    [
      ['ArrayBuffer, top level', `${num(m.copied)} ms`, `${num(m.moved)} ms`, ratio(m.moved / m.copied), runs('moved')],
      [
        '{ meta, data: Uint8Array }',
        `${num(m.copiedNested)} ms`,
        `${num(m.movedNested)} ms`,
        ratio(m.movedNested / m.copiedNested),
        runs('movedNested'),
      ],
    ],
    { title: 'TRANSFER — a big result moved instead of copied (median)' },
  );
  return { figures, tables: [table], notes: [] };
}
