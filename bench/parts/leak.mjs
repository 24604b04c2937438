// Part 3 — leak: 1,000 swaps of a ~500 KB plugin under load, sampling the host's heap (after a forced
// gc) and RSS every 20 swaps, against the naive way of reloading (re-importing the module in the host
// with a cache-busting query string). Each side runs in its own child process so neither pollutes the
// other. The naive side gets the time left of the ~2-minute budget (at least MIN_NAIVE_MS).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toCommonJs, writeBigPlugins } from '../lib/bigplugin.mjs';
import { runChild } from '../lib/child.mjs';
import { makeFigure } from '../lib/results.mjs';
import { slope } from '../lib/stats.mjs';
import { lineChart } from '../lib/svg.mjs';
import { formatTable, num, ratio } from '../lib/table.mjs';

const SWAPS = 1_000;
const BUDGET_MS = 120_000;
const MIN_NAIVE_MS = 25_000;
const CHILD = new URL('../children/leak-child.mjs', import.meta.url);
const MB = 1024 * 1024;
const KB = 1024;

/** Growth over the whole run and the slope over its last half (bytes per swap). */
function analyse(result) {
  const s = result?.samples ?? [];
  if (s.length < 2) return null;
  const first = s[0];
  const last = s[s.length - 1];
  const half = s.filter((x) => x.swaps >= last.swaps / 2);
  return {
    swaps: last.swaps,
    heapGrowth: last.heapUsed - first.heapUsed,
    rssGrowth: last.rss - first.rss,
    heapSlope: slope(
      half.map((x) => x.swaps),
      half.map((x) => x.heapUsed),
    ),
    rssSlope: slope(
      half.map((x) => x.swaps),
      half.map((x) => x.rss),
    ),
    heapPeak: Math.max(...s.map((x) => x.heapUsed)),
    rssPeak: Math.max(...s.map((x) => x.rss)),
  };
}

export async function runLeak({ progress, resultsDir }) {
  const notes = [];
  const plugins = writeBigPlugins();
  let isoResult;
  let cachedResult;
  let naiveResult;
  const started = performance.now();
  try {
    progress(`leak: isoplug swap 0/${SWAPS}…`, { force: true });
    isoResult = await runChild(CHILD, ['isoplug', String(SWAPS), String(10 * 60_000), plugins.a, plugins.b], {
      onProgress: (m) => progress(`leak: isoplug swap ${m.done}/${m.total}…`),
    });
    // The same swaps of the plugin as CommonJS, served by the code cache (a folder of its own).
    const cjs = ['a', 'b'].map((v) => {
      const path = join(plugins.dir, `big-${v}.cjs`);
      writeFileSync(path, toCommonJs(readFileSync(plugins[v], 'utf8')));
      return path;
    });
    progress(`leak: isoplug swap with the code cache 0/${SWAPS}…`, { force: true });
    cachedResult = await runChild(CHILD, ['isoplug', String(SWAPS), String(10 * 60_000), ...cjs], {
      onProgress: (m) => progress(`leak: isoplug swap with the code cache ${m.done}/${m.total}…`),
      env: { ...process.env, XDG_CACHE_HOME: join(plugins.dir, 'cache-home') },
    });
    const naiveBudget = Math.max(MIN_NAIVE_MS, BUDGET_MS - (performance.now() - started));
    progress(`leak: naive reload 0/${SWAPS} (budget ${(naiveBudget / 1000).toFixed(0)} s)…`, { force: true });
    naiveResult = await runChild(CHILD, ['naive', String(SWAPS), String(Math.round(naiveBudget)), plugins.a], {
      onProgress: (m) => progress(`leak: naive reload ${m.done}/${m.total}…`),
    });
  } finally {
    rmSync(plugins.dir, { recursive: true, force: true });
  }

  const iso_ = analyse(isoResult);
  const cached = analyse(cachedResult);
  const naive = analyse(naiveResult);
  if (naiveResult?.stoppedEarly) {
    notes.push(
      `the naive baseline did ${naiveResult.done} of ${SWAPS} reloads in its ${(naiveResult.budgetMs / 1000).toFixed(0)} s share of the ~${BUDGET_MS / 1000} s budget; its growth figures cover those ${naiveResult.done} reloads (slopes are per reload, so they compare)`,
    );
  }
  for (const [label, r] of [
    ['isoplug', isoResult],
    ['isoplug with the code cache', cachedResult],
    ['naive', naiveResult],
  ]) {
    if (!r) continue;
    if (r.failedSwaps) notes.push(`${label}: ${r.failedSwaps} swap(s) rejected: ${r.swapErrors.join(' | ')}`);
    if (r.failedCalls) notes.push(`${label}: ${r.failedCalls} failed calls during the run: ${r.failures.join(' | ')}`);
    if (r.closeIssueCount)
      notes.push(
        `${label}: ${r.closeIssueCount} swap(s) whose old version did not close cleanly: ${r.closeIssues.slice(0, 3).join('; ')}`,
      );
    if (r.activeAtEnd?.length) notes.push(`${label} child: still active at its end: ${r.activeAtEnd.join(', ')}`);
    if (r.hygiene !== 'exited by itself') notes.push(`${label} child: ${r.hygiene}`);
  }

  const figures = [
    makeFigure({
      part: 'leak',
      key: 'leak.heapGrowth',
      name: `host heap growth over ${iso_?.swaps ?? SWAPS} swaps`,
      value: iso_ ? iso_.heapGrowth / MB : null,
      unit: 'MB',
      better: 'lower',
      peers: naive ? { naive: naive.heapGrowth / MB } : {},
      baseline: 'naive',
      bar: { op: '<=', limit: 2 },
      note: `heapUsed after gc(), last sample − first sample; naive over ${naive?.swaps ?? 0} reloads`,
    }),
    makeFigure({
      part: 'leak',
      key: 'leak.rssSlope',
      name: 'RSS slope, last half',
      value: iso_ ? iso_.rssSlope / KB : null,
      unit: 'KB/swap',
      better: 'lower',
      peers: naive ? { naive: naive.rssSlope / KB } : {},
      baseline: 'naive',
      bar: { op: '<=', limit: 10 },
      note: 'least-squares slope of RSS over the samples of the last half of the run',
    }),
    makeFigure({
      part: 'leak',
      key: 'leak.failures',
      name: 'failed calls + rejected swaps during the run',
      value: isoResult ? isoResult.failedCalls + isoResult.failedSwaps : null,
      unit: 'failures',
      better: 'lower',
      bar: { op: '==', limit: 0 },
      note: isoResult ? [...isoResult.failures, ...isoResult.swapErrors].join(' | ') || 'none' : 'skipped',
    }),
    makeFigure({
      part: 'leak',
      key: 'leak.codeCache.heapGrowth',
      name: `host heap growth over ${cached?.swaps ?? SWAPS} swaps, code cache on (CommonJS plugin)`,
      value: cached ? cached.heapGrowth / MB : null,
      unit: 'MB',
      better: 'lower',
      peers: iso_ ? { 'cache off (ES module)': iso_.heapGrowth / MB } : {},
      bar: { op: '<=', limit: 2 },
      note: cached
        ? `heap slope ${num(cached.heapSlope / KB)} KB/swap, RSS slope ${num(cached.rssSlope / KB)} KB/swap, RSS growth ${num(cached.rssGrowth / MB)} MB`
        : 'skipped',
    }),
    makeFigure({
      part: 'leak',
      key: 'leak.heapSlope',
      name: 'host heap slope, last half',
      value: iso_ ? iso_.heapSlope / KB : null,
      unit: 'KB/swap',
      better: 'lower',
      peers: naive ? { naive: naive.heapSlope / KB } : {},
      baseline: 'naive',
    }),
    makeFigure({
      part: 'leak',
      key: 'leak.rssGrowth',
      name: 'RSS growth over the run',
      value: iso_ ? iso_.rssGrowth / MB : null,
      unit: 'MB',
      better: 'lower',
      peers: naive ? { naive: naive.rssGrowth / MB } : {},
      baseline: 'naive',
    }),
  ];

  const row = (label, a, r) =>
    a
      ? [
          label,
          `${r.done}${r.stoppedEarly ? ` of ${r.requested}` : ''}`,
          `${num(a.heapGrowth / MB)} MB`,
          `${num(a.heapSlope / KB)} KB`,
          `${num(a.rssGrowth / MB)} MB`,
          `${num(a.rssSlope / KB)} KB`,
          `${num(a.rssPeak / MB)} MB`,
          `${num(r.swapMsP50)} ms`,
          `${(r.elapsedMs / 1000).toFixed(1)} s`,
          `${r.failedCalls} / ${r.failedSwaps}`,
        ]
      : [label, 'skipped', '', '', '', '', '', '', '', ''];
  const table = formatTable(
    [
      'leak (~500 KB plugin, 4 paced callers)',
      'reloads',
      'heap growth',
      'heap slope/swap',
      'RSS growth',
      'RSS slope/swap',
      'RSS peak',
      'reload p50',
      'time',
      'failed calls / reloads',
    ],
    [
      row('isoplug hs.swap()', iso_, isoResult),
      row('isoplug hs.swap(), CommonJS, code cache on', cached, cachedResult),
      row("naive import(url + '?v=' + i)", naive, naiveResult),
    ],
    {
      title: `LEAK — host memory, sampled every 20 reloads after gc(); slopes over the last half; isoplug ÷ naive: heap growth ${ratio(figures[0].ratios.naive)}, RSS slope ${ratio(figures[1].ratios.naive)}`,
    },
  );

  // The chart: heap and RSS of both, plus isoplug alone at its own scale.
  const pts = (r, field) => (r?.samples ?? []).map((s) => [s.swaps, s[field] / MB]);
  const ISO = '#1f6feb';
  const NAIVE = '#d9480f';
  const series = {
    isoHeap: { name: 'isoplug — heap used (after gc)', color: ISO, points: pts(isoResult, 'heapUsed') },
    isoRss: { name: 'isoplug — RSS', color: ISO, dash: '7 4', points: pts(isoResult, 'rss') },
    naiveHeap: { name: "naive import('?v=i') — heap used", color: NAIVE, points: pts(naiveResult, 'heapUsed') },
    naiveRss: { name: "naive import('?v=i') — RSS", color: NAIVE, dash: '7 4', points: pts(naiveResult, 'rss') },
  };
  const svg = lineChart({
    title: `isoplug hot swap vs naive re-import: host memory over ${SWAPS.toLocaleString('en-US')} reloads of a ~500 KB plugin`,
    subtitle: `Node ${process.version}, 4 callers (1 ms apart) calling during reloads, sampled every 20 reloads after gc()${naiveResult?.stoppedEarly ? `; naive stopped at ${naiveResult.done} (time budget)` : ''}`,
    xLabel: 'swaps (reloads)',
    panels: [
      { title: 'Host heap used', yLabel: 'MB', series: [series.isoHeap, series.naiveHeap] },
      { title: 'Process RSS', yLabel: 'MB', series: [series.isoRss, series.naiveRss] },
      { title: 'isoplug alone (own scale)', yLabel: 'MB', series: [series.isoHeap, series.isoRss] },
    ],
    legend: [series.isoHeap, series.isoRss, series.naiveHeap, series.naiveRss],
  });
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(new URL('leak.svg', resultsDir), svg);
  notes.push('chart written to bench/results/leak.svg');
  return { figures, tables: [table], notes };
}
