// Part 1 — calls: sequential no-op round trip and pipelined throughput (64 in flight), one thread
// each. Every peer is alive at once and they are measured interleaved: each round times a block of
// every peer back to back (fixed duration, the order rotated each round), so a noisy neighbour on a
// shared machine hits everyone alike. Values are medians over rounds; ratios are ratios of medians.
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { Tinypool } from 'tinypool';
import { releaseProxy, wrap } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { RawEcho } from '../lib/raw.mjs';
import { makeFigure } from '../lib/results.mjs';
import { median } from '../lib/stats.mjs';
import { formatTable, num, ratio } from '../lib/table.mjs';
import { pipelined } from '../lib/drive.mjs';

const PLUGIN = new URL('../plugins/echo-a.mjs', import.meta.url);
const COMLINK_WORKER = new URL('../workers/comlink-echo.mjs', import.meta.url);
const POOL_TASK = new URL('../workers/pool-task.mjs', import.meta.url).href;

const WARMUP_CALLS = 3_000;
const RUNS = 15;
const SEQ_BLOCK_MS = 100;
const PIPE_BLOCK_MS = 150;
const IN_FLIGHT = 64;

async function makePeers(iso) {
  const plugin = await iso.loadPlugin(PLUGIN);
  const raw = new RawEcho();
  const comlinkWorker = new Worker(COMLINK_WORKER);
  const comlinkExited = new Promise((resolve) => comlinkWorker.once('exit', resolve));
  const remote = wrap(nodeEndpoint(comlinkWorker));
  const piscina = new Piscina({ filename: POOL_TASK, minThreads: 1, maxThreads: 1, idleTimeout: 60_000 });
  const piscina64 = new Piscina({
    filename: POOL_TASK,
    minThreads: 1,
    maxThreads: 1,
    concurrentTasksPerWorker: IN_FLIGHT,
    idleTimeout: 60_000,
  });
  const tinypool = new Tinypool({ filename: POOL_TASK, minThreads: 1, maxThreads: 1, idleTimeout: 60_000 });
  const noop = plugin.api.noop;
  return [
    { key: 'isoplug', label: 'isoplug', call: () => noop(), close: () => plugin.close() },
    { key: 'raw', label: 'raw postMessage', call: () => raw.call(), close: () => raw.close() },
    {
      key: 'comlink',
      label: 'bare Comlink',
      call: () => remote.noop(),
      close: async () => {
        await remote[releaseProxy]();
        await comlinkWorker.terminate();
        await comlinkExited;
      },
    },
    { key: 'piscina', label: 'piscina (default)', call: () => piscina.run(null), close: () => piscina.destroy() },
    {
      key: 'piscina64',
      label: 'piscina (concurrentTasksPerWorker 64)',
      call: () => piscina64.run(null),
      close: () => piscina64.destroy(),
    },
    { key: 'tinypool', label: 'tinypool', call: () => tinypool.run(null), close: () => tinypool.destroy() },
  ];
}

/** Awaited calls one after the other for `ms` (or `count` calls): µs per call. */
async function sequential(call, { ms = Infinity, count = Infinity }) {
  const started = performance.now();
  const end = started + ms;
  let n = 0;
  while (n < count && (n & 15 || performance.now() < end)) {
    await call();
    n++;
  }
  return ((performance.now() - started) * 1000) / n;
}

export async function runCalls({ iso, progress }) {
  progress('calls: starting the peers…', { force: true });
  const peers = await makePeers(iso);
  const seq = Object.fromEntries(peers.map((p) => [p.key, []]));
  const pipe = Object.fromEntries(peers.map((p) => [p.key, []]));
  try {
    for (const peer of peers) {
      progress(`calls: warm-up ${peer.key}…`);
      await sequential(peer.call, { count: WARMUP_CALLS });
      await pipelined(peer.call, IN_FLIGHT, { count: WARMUP_CALLS });
    }
    for (let run = 0; run < RUNS; run++) {
      const order = peers.map((_, i) => peers[(i + run) % peers.length]);
      for (const peer of order) {
        progress(`calls: ${peer.key} sequential, round ${run + 1}/${RUNS}…`);
        seq[peer.key].push(await sequential(peer.call, { ms: SEQ_BLOCK_MS }));
      }
      for (const peer of order) {
        progress(`calls: ${peer.key} pipelined ×${IN_FLIGHT}, round ${run + 1}/${RUNS}…`);
        pipe[peer.key].push(await pipelined(peer.call, IN_FLIGHT, { ms: PIPE_BLOCK_MS }));
      }
    }
  } finally {
    progress('calls: closing every worker and pool…', { force: true });
    await Promise.all(peers.map((p) => p.close()));
  }

  const seqMed = Object.fromEntries(peers.map((p) => [p.key, median(seq[p.key])]));
  const pipeMed = Object.fromEntries(peers.map((p) => [p.key, median(pipe[p.key])]));
  const others = (values) => Object.fromEntries(Object.entries(values).filter(([k]) => k !== 'isoplug'));
  const figures = [
    makeFigure({
      part: 'calls',
      key: 'calls.sequential',
      name: 'sequential no-op round trip',
      value: seqMed.isoplug,
      unit: 'µs/call',
      better: 'lower',
      peers: others(seqMed),
      baseline: 'raw',
      bar: { against: 'raw', op: '<=', limit: 1.0 },
      note: `median of ${RUNS} interleaved rounds of ${SEQ_BLOCK_MS} ms of awaited calls per peer, after ${WARMUP_CALLS} warm-up calls`,
    }),
    makeFigure({
      part: 'calls',
      key: 'calls.pipelined',
      name: `pipelined throughput, ${IN_FLIGHT} in flight`,
      value: pipeMed.isoplug,
      unit: 'calls/s',
      better: 'higher',
      peers: others(pipeMed),
      baseline: 'raw',
      bar: { against: 'raw', op: '>=', limit: 0.8 },
      note: `median of ${RUNS} interleaved rounds of ${PIPE_BLOCK_MS} ms per peer with ${IN_FLIGHT} calls kept in flight`,
    }),
  ];

  const spread = (values) => {
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    return `${num(lo)}–${num(hi)}`;
  };
  const rows = peers.map((p) => [
    p.label,
    num(seqMed[p.key], 1),
    ratio(seqMed[p.key] / seqMed.raw),
    spread(seq[p.key]),
    num(pipeMed[p.key], 0),
    ratio(pipeMed[p.key] / pipeMed.raw),
    spread(pipe[p.key]),
  ]);
  const table = formatTable(
    [
      'calls (one thread each)',
      'seq µs/call',
      '× raw',
      `range (${RUNS} rounds)`,
      `calls/s, ${IN_FLIGHT} in flight`,
      '× raw',
      'range',
    ],
    rows,
    { title: `CALLS — no-op round trip, median of ${RUNS} interleaved rounds (× raw = peer ÷ raw postMessage)` },
  );
  return { figures, tables: [table], notes: [] };
}
