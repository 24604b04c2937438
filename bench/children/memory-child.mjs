// Runs in a fresh process (node --expose-gc), driven by parts/memory.mjs over IPC:
//   memory-child.mjs isoplug <n>   loads n idle plugins (loadPlugin, ready)
//   memory-child.mjs bare    <n>   starts n bare `new Worker`s (each answered one message)
//   memory-child.mjs hotswap <n>   creates n idle hot swaps (createHotSwap, ready)
//   memory-child.mjs standby <n>   creates n idle hot swaps with `standby: true` (each with its standby worker)
// and reports the RSS delta. Everything is imported and warmed up before the baseline is taken.
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHotSwap, loadPlugin } from '../../dist/index.js';

const [mode, nArg] = process.argv.slice(2);
const n = Number(nArg);
const PLUGIN = fileURLToPath(new URL('../plugins/echo-a.mjs', import.meta.url));
const ECHO = new URL('../workers/raw-echo.mjs', import.meta.url);
const send = (message) => new Promise((resolve) => process.send(message, resolve));

/** RSS after gc, the median of a few samples once things settled. */
async function settledRss() {
  const values = [];
  for (let i = 0; i < 5; i++) {
    globalThis.gc();
    await sleep(100);
    values.push(process.memoryUsage().rss);
  }
  values.sort((a, b) => a - b);
  return values[2];
}

async function bareWorker() {
  const worker = new Worker(ECHO);
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.postMessage(1);
  });
  return {
    close: async () => {
      await worker.terminate();
      await exited;
    },
  };
}

async function plugin() {
  const p = await loadPlugin(PLUGIN);
  return {
    close: async () => {
      await p.close();
      await p.exited;
    },
  };
}

async function hotSwap(standby) {
  const hs = await createHotSwap(PLUGIN, standby ? { standby: true } : {});
  return {
    close: async () => {
      const current = hs.current;
      await hs.close();
      await current.exited;
    },
  };
}

const modes = { isoplug: plugin, bare: bareWorker, hotswap: () => hotSwap(false), standby: () => hotSwap(true) };
const start = modes[mode];
if (!start) throw new Error(`unknown mode ${mode}`);
await sleep(200);
const before = await settledRss();
const items = [];
for (let i = 0; i < n; i++) items.push(await start());
await sleep(300);
const after = await settledRss();
await Promise.all(items.map((item) => item.close()));
await sleep(20);
const active = process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap');
await send({ type: 'result', mode, n, before, after, perItem: (after - before) / n, activeAtEnd: active });
process.disconnect();
