// isoplug benchmark suite. `npm run bench` builds, then runs every part; `npm run bench -- calls` (or swap,
// leak, memory, threads, callbacks, canary, transfer, big, storm, fleet — several may be given) runs only those
// (bench/README.md).
import { statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { progress, progressClear } from './lib/progress.mjs';
import { ENV, verdictText, writeLatest } from './lib/results.mjs';
import { formatTable, num, ratio } from './lib/table.mjs';

const PARTS = [
  'calls',
  'swap',
  'leak',
  'memory',
  'threads',
  'callbacks',
  'canary',
  'transfer',
  'big',
  'storm',
  'fleet',
];
const RESULTS = new URL('./results/', import.meta.url);

const args = process.argv.slice(2).filter((a) => a !== '--');
const unknown = args.filter((a) => !PARTS.includes(a));
if (unknown.length) {
  console.error(`unknown part(s): ${unknown.join(', ')}; expected any of ${PARTS.join(', ')}`);
  process.exit(2);
}
const selected = args.length ? PARTS.filter((p) => args.includes(p)) : PARTS;

// The build every part (and every child process) runs against. If dist/ is rebuilt while the bench
// runs (another `npm run build` in the same checkout), workers booted meanwhile fail to find
// dist/plugin-worker.mjs and the figures mix two builds: detect it and say so.
const DIST_FILES = ['../dist/index.js', '../dist/plugin-worker.mjs'].map((f) => new URL(f, import.meta.url));
const distStamp = () =>
  DIST_FILES.map((f) => {
    try {
      const s = statSync(f);
      return `${s.ino}:${s.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }).join(' ');
const distAtStart = distStamp();
const iso = await import('../dist/index.js').catch((error) => {
  console.error('cannot import ../dist/index.js — run `npm run build` first (npm run bench does).');
  throw error;
});

function log(text = '') {
  progressClear();
  console.log(text);
}

const started = performance.now();
const load = () =>
  loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
const loadAtStart = load();
console.log(
  `isoplug bench — ${selected.join(', ')} — Node ${ENV.node}, ${ENV.cpus} CPUs (${ENV.cpuModel}), ${ENV.platform}; load average ${loadAtStart}`,
);
const figures = [];
const notes = [];
for (const part of selected) {
  const partStarted = performance.now();
  try {
    const { [`run${part[0].toUpperCase()}${part.slice(1)}`]: run } = await import(`./parts/${part}.mjs`);
    const result = await run({ iso, progress, log, resultsDir: RESULTS });
    figures.push(...result.figures);
    for (const note of result.notes) notes.push(`${part}: ${note}`);
    log();
    for (const table of result.tables) log(table + '\n');
    for (const note of result.notes) log(`  note: ${note}`);
    log(`  (${part} took ${((performance.now() - partStarted) / 1000).toFixed(1)} s)`);
  } catch (error) {
    notes.push(`${part}: FAILED — ${error?.stack ?? error}`);
    log(`\n${part}: FAILED — ${error?.stack ?? error}`);
    process.exitCode = 1;
  }
}
progressClear();

const runtimeMs = performance.now() - started;
if (distStamp() !== distAtStart) {
  notes.push(
    'WARNING: dist/ was rebuilt while the bench ran (another build in this checkout): figures may mix two builds, and workers booted during the rebuild fail with MODULE_NOT_FOUND for dist/plugin-worker.mjs. Run the bench again when nothing else builds.',
  );
  log(`\n${notes.at(-1)}`);
}
notes.push(
  `load average (1/5/15 min) at start ${loadAtStart}, at end ${load()} — above ${ENV.cpus} means other processes competed for the CPUs`,
);
const fmtValue = (f) => (f.value === null ? 'n/a' : `${num(f.value)} ${f.unit}`);
const fmtBaseline = (f) => {
  const peer = f.baseline ?? Object.keys(f.peers)[0];
  return peer && f.peers[peer] !== undefined && f.peers[peer] !== null
    ? `${num(f.peers[peer])} ${f.unit} (${peer})`
    : '—';
};
const fmtRatio = (f) => {
  const peer = f.baseline ?? Object.keys(f.peers)[0];
  return peer ? ratio(f.ratios[peer]) : '—';
};
if (figures.length) {
  log(
    formatTable(
      ['figure', 'isoplug', 'baseline', 'ratio', 'bar', 'result'],
      figures.map((f) => [
        `${f.part}: ${f.name}`,
        fmtValue(f),
        fmtBaseline(f),
        fmtRatio(f),
        f.bar?.text ?? '—',
        verdictText(f),
      ]),
      { title: `SUMMARY — ratio = isoplug ÷ baseline; PASS/MISS against the bar` },
    ),
  );
}
// Hygiene: every worker and pool must be closed by now, so nothing should keep the process alive.
// Report anything that does; if the process is still here 10 s later, say so and exit non-zero.
await new Promise((resolve) => setTimeout(resolve, 50));
// stdio handles and pending handle closes (CloseReq) do not keep the process alive.
const alive = process.getActiveResourcesInfo().filter((r) => !['TTYWrap', 'PipeWrap', 'CloseReq'].includes(r));
const hygiene = alive.length
  ? `hygiene: still active after the bench: ${alive.join(', ')}`
  : 'hygiene: every worker, pool and child process closed; nothing keeps the event loop alive';
notes.push(hygiene);
const file = writeLatest(RESULTS, { parts: selected, figures, notes, runtimeMs });
log(`\n${notes.at(-2)}`);
log(hygiene);
log(`wrote ${new URL(file).pathname.split('/').slice(-3).join('/')}; total runtime ${(runtimeMs / 1000).toFixed(1)} s`);
setTimeout(() => {
  console.error(
    `hygiene: FAILED — the process did not exit by itself within 10 s (active: ${process.getActiveResourcesInfo().join(', ')})`,
  );
  process.exit(1);
}, 10_000).unref();
