// Runs in a fresh process (node --expose-gc), driven by parts/memory.mjs over IPC:
//   reload-child.mjs worker <n>   n reloads of a ~500 KB plugin by a PluginManager, isolation 'worker'
//   reload-child.mjs inline <n>   the same with isolation 'inline' (a bundle per version, evaluated in the host)
//   reload-child.mjs import <n>   the naive inline reload: import(file?v=N) of each version in the host
// Each reload writes a new version (its label changes), reloads, and calls it; the host heap after gc
// is sampled every STEP reloads.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PluginManager } from '../../dist/index.js';
import { bigPluginSource } from '../lib/bigplugin.mjs';

const [mode, nArg] = process.argv.slice(2);
const n = Number(nArg);
const STEP = 25;
const send = (message) => new Promise((resolve) => process.send(message, resolve));
const dir = mkdtempSync(join(tmpdir(), 'isoplug-bench-reload-'));
mkdirSync(join(dir, 'big'));
const file = join(dir, 'big', 'index.mjs');
const write = (i) => writeFileSync(file, bigPluginSource(`v${i}`));

function heap() {
  for (let i = 0; i < 4; i++) globalThis.gc();
  return process.memoryUsage().heapUsed;
}

let reload;
let close = async () => {};
if (mode === 'import') {
  let last;
  reload = async (i) => {
    last = await import(`${pathToFileURL(file).href}?v=${i}`);
    if (last.version() !== `v${i}`) throw new Error('wrong version');
  };
} else if (mode === 'worker' || mode === 'inline') {
  const manager = new PluginManager({ dir, isolation: mode });
  reload = async (i) => {
    await manager.reload();
    if ((await manager.invoke('big', 'version')) !== `v${i}`) throw new Error('wrong version');
  };
  close = () => manager.close();
} else throw new Error(`unknown mode ${mode}`);

const samples = [];
const started = performance.now();
for (let i = 0; i <= n; i++) {
  write(i);
  await reload(i);
  if (i % STEP === 0) {
    samples.push({ reloads: i, heapUsed: heap(), rss: process.memoryUsage().rss });
    await send({ type: 'progress', mode, reloads: i, n });
  }
}
const msPerReload = (performance.now() - started) / (n + 1);
await close();
rmSync(dir, { recursive: true, force: true });
await send({ type: 'result', mode, n, samples, msPerReload });
process.disconnect();
