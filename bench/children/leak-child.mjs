// Runs in its own process (node --expose-gc), driven by parts/leak.mjs over IPC:
//   leak-child.mjs isoplug <swaps> <budgetMs> <a.mjs> <b.mjs>   1 swap = hs.swap() to the other file
//   leak-child.mjs naive   <swaps> <budgetMs> <a.mjs>           1 reload = import(url + '?v=' + i)
// Both keep CALLERS callers calling the current version while it reloads (each caller waits
// PACE_MS between calls: steady traffic, not a busy loop starving the new version's boot on a small
// machine; the saturating case is part 2's swap storm), and sample the host's heapUsed (after a forced
// gc) and RSS every SAMPLE_EVERY reloads. Sends { type: 'result' } and exits by itself; a swap that
// rejects is counted and reported, not fatal.
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const SAMPLE_EVERY = 20;
const CALLERS = 4;
const PACE_MS = 1;
const [mode, swapsArg, budgetArg, a, b] = process.argv.slice(2);
const total = Number(swapsArg);
const budgetMs = Number(budgetArg);
if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');

const send = (message) => new Promise((resolve) => process.send(message, resolve));
const fatal = async (error) => {
  await send({ type: 'result', mode, fatal: String(error?.stack ?? error), samples: [] });
  process.exit(1);
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);
const started = performance.now();
const elapsed = () => performance.now() - started;
const samples = [];
function sample(swaps) {
  globalThis.gc();
  globalThis.gc();
  const m = process.memoryUsage();
  samples.push({ swaps, heapUsed: m.heapUsed, rss: m.rss, external: m.external, ms: Math.round(elapsed()) });
}

/** An error and its chain of causes, on one line. */
function describe(error) {
  const parts = [];
  for (let e = error, depth = 0; e !== undefined && depth < 6; e = e?.cause, depth++) {
    parts.push(e instanceof Error ? `${e.code ?? e.name}: ${e.message}` : String(e));
  }
  return parts.join(' ← caused by ');
}

let running = true;
let calls = 0;
let failedCalls = 0;
const failures = [];
const fail = (error) => {
  failedCalls++;
  if (failures.length < 10) failures.push(describe(error));
};

let done = 0;
let stoppedEarly = false;
let failedSwaps = 0;
const swapErrors = [];
const closeIssues = [];
const swapMs = [];
let afterClose;

/** CALLERS callers calling `lookup` until `running` goes false, paced; every answer is checked. */
function startCallers(lookup) {
  return Array.from({ length: CALLERS }, async (_, c) => {
    let x = c * 1e6;
    while (running) {
      try {
        const v = await lookup(x++);
        if (typeof v !== 'number') throw new Error(`wrong answer ${v}`);
        calls++;
      } catch (error) {
        fail(error);
      }
      await sleep(PACE_MS);
    }
  });
}

/** Reloads `total` times under the callers (or until the time budget), sampling memory as it goes. */
async function reloadUnderLoad(lookup, reload) {
  const callers = startCallers(lookup);
  await new Promise((resolve) => setTimeout(resolve, 300));
  sample(0);
  for (let i = 1; i <= total; i++) {
    if (elapsed() > budgetMs) {
      stoppedEarly = true;
      break;
    }
    await reload(i);
    done = i;
    if (i % SAMPLE_EVERY === 0) {
      sample(i);
      void send({ type: 'progress', done: i, total });
    }
  }
  running = false;
  await Promise.all(callers);
}

if (mode === 'isoplug') {
  const { createHotSwap } = await import('../../dist/index.js');
  const hs = await createHotSwap(a, { drainTimeoutMs: 10_000 });
  await reloadUnderLoad(
    (x) => hs.api.lookup(x),
    async (i) => {
      const t0 = performance.now();
      try {
        const report = await hs.swap(i % 2 ? b : a);
        swapMs.push(performance.now() - t0);
        const c = report.close;
        if (c.outcome !== 'closed' || !c.drained || c.terminatedCalls || !c.terminated) {
          closeIssues.push(
            `swap ${i}: outcome=${c.outcome} drained=${c.drained} terminatedCalls=${c.terminatedCalls} terminated=${c.terminated}`,
          );
        }
      } catch (error) {
        failedSwaps++;
        if (swapErrors.length < 5)
          swapErrors.push(`swap ${i} after ${((performance.now() - t0) / 1000).toFixed(1)} s: ${describe(error)}`);
      }
    },
  );
  await hs.close();
  await hs.current.exited;
} else if (mode === 'naive') {
  const url = pathToFileURL(a).href;
  let mod = await import(`${url}?v=0`);
  await reloadUnderLoad(
    (x) => mod.lookup(x),
    async (i) => {
      const t0 = performance.now();
      mod = await import(`${url}?v=${i}`);
      swapMs.push(performance.now() - t0);
    },
  );
} else {
  throw new Error(`unknown mode ${mode}`);
}

// After everything is closed: what the host holds once the versions are gone.
globalThis.gc();
globalThis.gc();
const m = process.memoryUsage();
afterClose = { heapUsed: m.heapUsed, rss: m.rss };
await new Promise((resolve) => setTimeout(resolve, 20));
const active = process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap');
swapMs.sort((x, y) => x - y);
await send({
  type: 'result',
  mode,
  requested: total,
  done,
  stoppedEarly,
  budgetMs,
  elapsedMs: Math.round(elapsed()),
  samples,
  afterClose,
  calls,
  failedCalls,
  failures,
  failedSwaps,
  swapErrors,
  closeIssues: closeIssues.slice(0, 10),
  closeIssueCount: closeIssues.length,
  swapMsP50: swapMs[Math.floor(swapMs.length / 2)] ?? null,
  activeAtEnd: active,
});
process.disconnect();
