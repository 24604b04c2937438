// Part — canary: what a gradual rollout costs a call. One process, the same no-op plugin: a plain hot
// swap (one version, one thread), the same hot swap during a 50 % rollout (keyless calls, in runs;
// and sticky-key calls over 1,000 views), and, for reference, a plain hot swap on two threads (a
// rollout also runs on two threads: the current version's and the canary's), and two plain plugins
// the caller splits by hand (Math.random): the cost of a second isolate without isoplug's routing, so
// the table tells the routing's cost from the second worker's. Every peer is alive at
// once and measured interleaved, rounds rotated, medians over rounds (as in the calls part). Also the
// cost of hashing one sticky key (`rolloutBucket`), paid once per `with({ key })` view.
import { makeFigure } from '../lib/results.mjs';
import { median } from '../lib/stats.mjs';
import { formatTable, num, ratio } from '../lib/table.mjs';
import { pipelined } from '../lib/drive.mjs';

const A = new URL('../plugins/echo-a.mjs', import.meta.url);
const B = new URL('../plugins/echo-b.mjs', import.meta.url);

const WARMUP_CALLS = 3_000;
const RUNS = 12;
const SEQ_BLOCK_MS = 100;
const PIPE_BLOCK_MS = 150;
const IN_FLIGHT = 64;
const KEYS = 1_000;
const HASHES = 200_000;

async function sequential(call, ms) {
  const started = performance.now();
  const end = started + ms;
  let n = 0;
  while (n & 15 || performance.now() < end) {
    await call();
    n++;
  }
  return ((performance.now() - started) * 1000) / n;
}

async function makePeers(iso) {
  const plain = await iso.createHotSwap(A);
  const plain2 = await iso.createHotSwap(A, { threads: 2 });
  const split = await iso.createHotSwap(A);
  await split.rollout(B, { percent: 50, threads: 1 });
  const one = await iso.loadPlugin(A);
  const two = await iso.loadPlugin(B);
  const views = Array.from({ length: KEYS }, (_, i) => split.with({ key: `user-${i}` }).api);
  let next = 0;
  return [
    { key: 'hotswap', label: 'hot swap, no rollout', call: () => plain.api.noop(), close: () => plain.close() },
    { key: 'rollout', label: 'hot swap, 50 % rollout, keyless', call: () => split.api.noop(), close: () => {} },
    {
      key: 'keyed',
      label: `hot swap, 50 % rollout, ${KEYS} sticky keys`,
      call: () => views[next++ % KEYS].noop(),
      close: () => split.close(),
    },
    {
      key: 'byhand',
      label: 'two plugins, split 50 % by the caller',
      call: () => (Math.random() < 0.5 ? one : two).api.noop(),
      close: () => Promise.all([one.close(), two.close()]),
    },
    {
      key: 'hotswap2',
      label: 'hot swap, no rollout, threads: 2',
      call: () => plain2.api.noop(),
      close: () => plain2.close(),
    },
  ];
}

export async function runCanary({ iso, progress }) {
  progress('canary: hashing sticky keys…', { force: true });
  const hashStarted = performance.now();
  let sink = 0;
  for (let i = 0; i < HASHES; i++) sink += iso.rolloutBucket('bench:salt', `user-${i}`);
  const hashUs = ((performance.now() - hashStarted) * 1000) / HASHES;
  if (sink < 0) throw new Error('unreachable');

  progress('canary: starting the hot swaps…', { force: true });
  const peers = await makePeers(iso);
  const seq = Object.fromEntries(peers.map((p) => [p.key, []]));
  const pipe = Object.fromEntries(peers.map((p) => [p.key, []]));
  try {
    for (const peer of peers) {
      progress(`canary: warm-up ${peer.key}…`);
      await pipelined(peer.call, IN_FLIGHT, { count: WARMUP_CALLS });
    }
    for (let run = 0; run < RUNS; run++) {
      const order = peers.map((_, i) => peers[(i + run) % peers.length]);
      for (const peer of order) {
        progress(`canary: ${peer.key} sequential, round ${run + 1}/${RUNS}…`);
        seq[peer.key].push(await sequential(peer.call, SEQ_BLOCK_MS));
      }
      for (const peer of order) {
        progress(`canary: ${peer.key} pipelined ×${IN_FLIGHT}, round ${run + 1}/${RUNS}…`);
        pipe[peer.key].push(await pipelined(peer.call, IN_FLIGHT, { ms: PIPE_BLOCK_MS }));
      }
    }
  } finally {
    progress('canary: closing…', { force: true });
    for (const peer of peers) await peer.close();
  }
  const seqMed = Object.fromEntries(peers.map((p) => [p.key, median(seq[p.key])]));
  const pipeMed = Object.fromEntries(peers.map((p) => [p.key, median(pipe[p.key])]));
  const except = (values, key) => Object.fromEntries(Object.entries(values).filter(([k]) => k !== key));
  const rounds = `median of ${RUNS} interleaved rounds`;
  const figures = [
    makeFigure({
      part: 'canary',
      key: 'canary.pipelined',
      name: `pipelined throughput during a 50 % rollout, ${IN_FLIGHT} in flight`,
      value: pipeMed.rollout,
      unit: 'calls/s',
      better: 'higher',
      peers: except(pipeMed, 'rollout'),
      baseline: 'hotswap',
      bar: { against: 'hotswap', op: '>=', limit: 0.9 },
      note: `${rounds} of ${PIPE_BLOCK_MS} ms per peer; keyless calls, in runs of one tick; the rollout runs on two threads (current + canary)`,
    }),
    makeFigure({
      part: 'canary',
      key: 'canary.pipelined.keyed',
      name: `pipelined throughput during a 50 % rollout, ${KEYS} sticky keys`,
      value: pipeMed.keyed,
      unit: 'calls/s',
      better: 'higher',
      peers: except(pipeMed, 'keyed'),
      baseline: 'hotswap',
      note: `${rounds}; each view hashes its key once, then routes on the cached bucket`,
    }),
    makeFigure({
      part: 'canary',
      key: 'canary.sequential',
      name: 'sequential no-op round trip during a 50 % rollout',
      value: seqMed.rollout,
      unit: 'µs/call',
      better: 'lower',
      peers: except(seqMed, 'rollout'),
      baseline: 'hotswap',
      note: `${rounds} of ${SEQ_BLOCK_MS} ms of awaited calls per peer`,
    }),
    makeFigure({
      part: 'canary',
      key: 'canary.bucket',
      name: 'sticky-key hash (SHA-256 bucket), once per view',
      value: hashUs,
      unit: 'µs/key',
      better: 'lower',
      note: `${HASHES} keys hashed back to back`,
    }),
  ];
  const rows = peers.map((p) => [
    p.label,
    num(seqMed[p.key], 1),
    ratio(seqMed[p.key] / seqMed.hotswap),
    num(pipeMed[p.key], 0),
    ratio(pipeMed[p.key] / pipeMed.hotswap),
  ]);
  const table = formatTable(
    ['no-op calls', 'seq µs/call', '× no rollout', `calls/s, ${IN_FLIGHT} in flight`, '× no rollout'],
    rows,
    { title: `CANARY — ${rounds}; sticky-key hash ${num(hashUs, 2)} µs/key` },
  );
  return { figures, tables: [table], notes: [] };
}
