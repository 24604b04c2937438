// Part — callbacks: what a host callback costs, and what it would cost on the calls' own wire.
// Isoplug passes a `proxy(fn)` argument as a Comlink proxy on a MessagePort of its own (filtered to
// plain calls, src/callbacks.ts). The question this part answers: should callbacks travel on the same
// wire as calls instead? Measured, interleaved in rounds like `calls`:
// - per invocation (µs): a plugin awaits its callback N times in a row; isoplug (Comlink + filter),
//   bare Comlink on its own port (a raw worker), and a tagged request/reply on the worker's one port
//   (a raw worker: the shape a callback on isoplug's wire would take);
// - per call (µs): an isoplug call that passes a callback which the plugin invokes once, against the
//   same call without a callback (what the port, its transfer and the call travelling alone add).
import { MessageChannel, Worker } from 'node:worker_threads';
import { expose } from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { makeFigure } from '../lib/results.mjs';
import { median } from '../lib/stats.mjs';
import { formatTable, num, ratio } from '../lib/table.mjs';

const PLUGIN = new URL('../plugins/callbacks.mjs', import.meta.url);
const RAW_WORKER = new URL('../workers/callback-wire.mjs', import.meta.url);
const RUNS = 11;
const INVOCATIONS = 400;
const CALLS = 400;

class RawCallbacks {
  #worker = new Worker(RAW_WORKER);
  #done;
  constructor() {
    this.#worker.on('message', (message) => {
      if (message.t === 'cb') this.#worker.postMessage({ t: 'cbr', id: message.id, value: message.args[0] });
      else if (message.t === 'done') this.#done?.();
    });
  }
  run(kind, n) {
    return new Promise((resolve) => {
      this.#done = resolve;
      if (kind === 'wire') return this.#worker.postMessage({ t: 'wire', n });
      const { port1, port2 } = new MessageChannel();
      expose((value) => value, nodeEndpoint(port1));
      this.#done = () => {
        port1.close();
        resolve();
      };
      this.#worker.postMessage({ t: 'comlink', port: port2, n }, [port2]);
    });
  }
  close() {
    return this.#worker.terminate();
  }
}

/** µs per unit of `run()`, which does `units` of work. */
async function timed(run, units) {
  const started = performance.now();
  await run();
  return ((performance.now() - started) * 1000) / units;
}

export async function runCallbacks({ iso, progress }) {
  progress('callbacks: starting…', { force: true });
  const plugin = await iso.loadPlugin(PLUGIN);
  const raw = new RawCallbacks();
  const fn = (value) => value;
  const invocation = {
    isoplug: () => timed(() => plugin.api.invokeMany(iso.proxy(fn), INVOCATIONS), INVOCATIONS),
    comlink: () => timed(() => raw.run('comlink', INVOCATIONS), INVOCATIONS),
    wire: () => timed(() => raw.run('wire', INVOCATIONS), INVOCATIONS),
  };
  const sequentialCalls = async (call) => {
    for (let i = 0; i < CALLS; i++) await call();
  };
  const perCall = {
    withCallback: () => timed(() => sequentialCalls(() => plugin.api.invokeOnce(iso.proxy(fn))), CALLS),
    plain: () => timed(() => sequentialCalls(() => plugin.api.echo(1)), CALLS),
  };
  const samples = Object.fromEntries([...Object.keys(invocation), ...Object.keys(perCall)].map((k) => [k, []]));
  const all = { ...invocation, ...perCall };
  try {
    for (const measure of Object.values(all)) await measure(); // warm-up
    const keys = Object.keys(all);
    for (let run = 0; run < RUNS; run++) {
      for (let i = 0; i < keys.length; i++) {
        const key = keys[(i + run) % keys.length];
        progress(`callbacks: ${key}, round ${run + 1}/${RUNS}…`);
        samples[key].push(await all[key]());
      }
    }
  } finally {
    progress('callbacks: closing…', { force: true });
    await Promise.all([plugin.close(), raw.close()]);
  }
  const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  const figures = [
    makeFigure({
      part: 'callbacks',
      key: 'callbacks.invocation',
      name: 'callback invocation round trip (plugin → host → plugin)',
      value: med.isoplug,
      unit: 'µs/invocation',
      better: 'lower',
      peers: { comlink: med.comlink, wire: med.wire },
      baseline: 'wire',
      note: `median of ${RUNS} interleaved rounds of ${INVOCATIONS} awaited invocations; wire = a tagged request/reply on the worker's one port (raw worker)`,
    }),
    makeFigure({
      part: 'callbacks',
      key: 'callbacks.call',
      name: 'a call passing a callback invoked once',
      value: med.withCallback,
      unit: 'µs/call',
      better: 'lower',
      peers: { plain: med.plain },
      baseline: 'plain',
      note: `median of ${RUNS} rounds of ${CALLS} awaited calls; plain = the same plugin's echo(1), no callback`,
    }),
  ];
  const table = formatTable(
    ['', 'µs', '× baseline'],
    [
      ['invocation: isoplug (Comlink + filter, own port)', num(med.isoplug, 1), ratio(med.isoplug / med.wire)],
      ['invocation: bare Comlink, own port (raw worker)', num(med.comlink, 1), ratio(med.comlink / med.wire)],
      ['invocation: tagged request/reply on the one port (raw worker)', num(med.wire, 1), ratio(1)],
      ['call with a callback invoked once (isoplug)', num(med.withCallback, 1), ratio(med.withCallback / med.plain)],
      ['call without a callback (isoplug)', num(med.plain, 1), ratio(1)],
    ],
    { title: `CALLBACKS — medians of ${RUNS} interleaved rounds (baseline: the one-port wire, and the plain call)` },
  );
  return { figures, tables: [table], notes: [] };
}
