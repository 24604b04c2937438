// Part 5 — threads: throughput of a CPU-bound task (pure JS, about 1.5 ms per call, the same code for
// every peer: lib/cpu.mjs) with enough calls in flight to keep every thread busy. Peers: an isoplug
// version on 1 thread, one on 2 threads (`threads: 2`), piscina and tinypool with 2 threads each
// (minThreads = maxThreads = 2). As in part 1, every peer is alive at once and they are measured
// interleaved: each round times a block of every peer back to back (fixed duration, the order rotated
// each round), so a noisy neighbour hits everyone alike. Values are medians over rounds; ratios are
// ratios of medians.
import { Piscina } from 'piscina';
import { Tinypool } from 'tinypool';
import { calibrate, spin } from '../lib/cpu.mjs';
import { ENV, makeFigure } from '../lib/results.mjs';
import { median } from '../lib/stats.mjs';
import { formatTable, num, ratio } from '../lib/table.mjs';
import { pipelined } from '../lib/drive.mjs';

const PLUGIN = new URL('../plugins/cpu.mjs', import.meta.url);
const POOL_TASK = new URL('../workers/cpu-task.mjs', import.meta.url).href;

const TASK_MS = 1.5;
const THREADS = 2;
/** Four calls per thread: a thread always has the next call queued when one ends. */
const IN_FLIGHT = 4 * THREADS;
const WARMUP_CALLS = 400;
const RUNS = 9;
const BLOCK_MS = 800;

export async function runThreads({ iso, progress }) {
  progress('threads: calibrating the task…', { force: true });
  const task = calibrate(TASK_MS);
  const expected = spin(task.n);

  progress('threads: starting the peers…', { force: true });
  const two = await iso.loadPlugin(PLUGIN, { threads: THREADS });
  const one = await iso.loadPlugin(PLUGIN, { threads: 1 });
  const piscina = new Piscina({ filename: POOL_TASK, minThreads: THREADS, maxThreads: THREADS, idleTimeout: 60_000 });
  const tinypool = new Tinypool({ filename: POOL_TASK, minThreads: THREADS, maxThreads: THREADS, idleTimeout: 60_000 });
  const n = task.n;
  const workOne = one.api.work;
  const workTwo = two.api.work;
  const peers = [
    { key: 'isoplug1', label: 'isoplug, threads: 1', call: () => workOne(n), close: () => one.close() },
    { key: 'isoplug2', label: `isoplug, threads: ${THREADS}`, call: () => workTwo(n), close: () => two.close() },
    {
      key: 'piscina',
      label: `piscina, ${THREADS} threads`,
      call: () => piscina.run(n),
      close: () => piscina.destroy(),
    },
    {
      key: 'tinypool',
      label: `tinypool, ${THREADS} threads`,
      call: () => tinypool.run(n),
      close: () => tinypool.destroy(),
    },
  ];
  const rates = Object.fromEntries(peers.map((p) => [p.key, []]));
  const notes = [];
  let perThread;
  try {
    for (const peer of peers) {
      progress(`threads: warm-up ${peer.key}…`);
      const answer = await peer.call();
      if (answer !== expected)
        notes.push(`${peer.key} answered ${answer}, expected ${expected}: the peers do not run the same task`);
      await pipelined(peer.call, IN_FLIGHT, { count: WARMUP_CALLS });
    }
    for (let run = 0; run < RUNS; run++) {
      const order = peers.map((_, i) => peers[(i + run) % peers.length]);
      for (const peer of order) {
        progress(`threads: ${peer.key} ×${IN_FLIGHT} in flight, round ${run + 1}/${RUNS}…`);
        rates[peer.key].push(await pipelined(peer.call, IN_FLIGHT, { ms: BLOCK_MS }));
      }
    }
    // Two calls at once reach both threads (the first is busy with one call when the second comes):
    // how many tasks each thread served over the whole part.
    perThread = await Promise.all([two.api.servedHere(), two.api.servedHere()]);
  } finally {
    progress('threads: closing every worker and pool…', { force: true });
    await Promise.all(peers.map((p) => p.close()));
  }

  const med = Object.fromEntries(peers.map((p) => [p.key, median(rates[p.key])]));
  // The same ratio round by round (both peers measured within the same round), for the note.
  const paired = (a, b) => median(rates[a].map((v, i) => v / rates[b][i]));
  const figures = [
    makeFigure({
      part: 'threads',
      key: 'threads.scaling',
      name: `CPU-bound throughput, ${THREADS} threads ÷ 1 thread`,
      value: med.isoplug2,
      unit: 'calls/s',
      better: 'higher',
      peers: { oneThread: med.isoplug1 },
      baseline: 'oneThread',
      bar: { against: 'oneThread', op: '>=', limit: 1.8 },
      note: `isoplug threads: ${THREADS} vs threads: 1, ${IN_FLIGHT} calls in flight, a ${num(task.ms)} ms task (${n} rounds of lib/cpu.mjs); median of ${RUNS} interleaved rounds of ${BLOCK_MS} ms; per-round ratio median ${ratio(paired('isoplug2', 'isoplug1'))}`,
    }),
    makeFigure({
      part: 'threads',
      key: 'threads.vsPools',
      name: `CPU-bound throughput, ${THREADS} threads, vs worker pools`,
      value: med.isoplug2,
      unit: 'calls/s',
      better: 'higher',
      peers: { piscina: med.piscina, tinypool: med.tinypool },
      baseline: 'piscina',
      bar: { against: 'piscina', op: '>=', limit: 1.0 },
      note: `isoplug threads: ${THREADS} vs piscina and tinypool with minThreads = maxThreads = ${THREADS} (default concurrency), the same task and ${IN_FLIGHT} calls in flight; per-round ratio median ${ratio(paired('isoplug2', 'piscina'))} piscina, ${ratio(paired('isoplug2', 'tinypool'))} tinypool`,
    }),
  ];

  const spread = (values) => `${num(Math.min(...values))}–${num(Math.max(...values))}`;
  const table = formatTable(
    ['threads (CPU-bound task)', 'calls/s', '× isoplug 1 thread', `× piscina ${THREADS}`, `range (${RUNS} rounds)`],
    peers.map((p) => [
      p.label,
      num(med[p.key], 0),
      ratio(med[p.key] / med.isoplug1),
      ratio(med[p.key] / med.piscina),
      spread(rates[p.key]),
    ]),
    {
      title: `THREADS — ${num(task.ms)} ms CPU-bound task, ${IN_FLIGHT} calls in flight, median of ${RUNS} interleaved rounds of ${BLOCK_MS} ms (× = peer ÷ column)`,
    },
  );
  if (perThread)
    notes.push(
      `isoplug threads: ${THREADS}: tasks served per thread over the part ${perThread.map((v) => num(v, 0)).join(' / ')}`,
    );
  notes.push(`task: ${n} rounds, ${num(task.ms)} ms in the host thread after warm-up`);
  if (ENV.cpus < THREADS)
    notes.push(`only ${ENV.cpus} CPU(s) for ${THREADS} worker threads: the scaling figure cannot reach ${THREADS}×`);
  else if (ENV.cpus === THREADS)
    notes.push(
      `${ENV.cpus} CPUs: the host thread (dispatching the calls) shares them with the ${THREADS} busy workers`,
    );
  return { figures, tables: [table], notes };
}
