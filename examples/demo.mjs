// npm run demo: load a plugin, swap it under load, close a version while its calls are in flight.
import { fileURLToPath } from 'node:url';
import { createHotSwap, loadPlugin } from 'isoplug';

const v1 = fileURLToPath(new URL('./demo/greeter-v1.mjs', import.meta.url));
const v2 = fileURLToPath(new URL('./demo/greeter-v2.mjs', import.meta.url));
const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
const log = (...args) => console.log(...args);

log('1. Two versions side by side, each in its own worker');
const one = await loadPlugin(v1, { version: 'v1' });
const two = await loadPlugin(v2, { version: 'v2' });
log('   v1 says:', await one.api.greet('Ada'));
log('   v2 says:', await two.api.greet('Ada'));

log('2. Close v1 while 3 slow calls are in flight');
const inFlight = [1, 2, 3].map((i) => one.api.slowGreet(`caller ${i}`, 100));
const closing = one.close({ timeoutMs: 5_000 });
const stale = await one.api.greet('late caller').catch((error) => error);
log(`   a call on the stale handle: rejected ${stale.code}`);
for (const reply of await Promise.all(inFlight)) log('   in-flight call finished on v1:', reply);
const report = await closing;
log(
  `   v1 closed: drained=${report.drained}, calls in flight at close=${report.inFlightAtClose}, worker terminated=${report.terminated}, ${report.durationMs.toFixed(0)} ms`,
);
await two.close();

log('3. A hot swap under load: 32 callers, 20 swaps between v1 and v2');
const rssStart = process.memoryUsage().rss;
const hs = await createHotSwap(v1, { version: 'v1' });
let running = true;
const served = { v1: 0, v2: 0 };
let failed = 0;
const callers = Array.from({ length: 32 }, async (_, i) => {
  while (running) {
    try {
      const reply = await hs.api.greet(`caller ${i}`);
      served[reply.endsWith('(v1)') ? 'v1' : 'v2']++;
    } catch {
      failed++;
    }
  }
});
for (let n = 1; n <= 20; n++) {
  const next = n % 2 ? { file: v2, version: 'v2' } : { file: v1, version: 'v1' };
  const swap = await hs.swap(next.file, { version: next.version });
  const line = `   swap ${String(n).padStart(2)}/20: ${swap.from} → ${swap.to}, load ${swap.loadMs.toFixed(0)} ms, drain ${swap.drainMs.toFixed(0)} ms`;
  // A live progress line on a terminal; one line per swap in a log.
  if (process.stdout.isTTY) process.stdout.write(`\r${line}   `);
  else if (n % 5 === 0) log(line);
}
running = false;
await Promise.all(callers);
if (process.stdout.isTTY) log('');
log(`   calls served: ${served.v1 + served.v2} (v1 ${served.v1}, v2 ${served.v2}), failed: ${failed}`);
log(`   version now: ${hs.version}; live versions: ${hs.versions.length}`);
await hs.close();
log(`   host RSS: ${mb(rssStart)} at start of the swaps, ${mb(process.memoryUsage().rss)} at the end`);
if (failed > 0) {
  console.error(`${failed} calls failed`);
  process.exitCode = 1;
}
