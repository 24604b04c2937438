// npm run demo: a node:http server whose route handler is a plugin behind createHotSwap(). While a
// load generator keeps 64 connections busy, the handler is rebuilt (a new bundle, a new file, a new
// worker) and swapped several times. No request may fail. With `standby: true` a booted worker waits
// for each next version, so a swap pays only for the bundle's import.
//
//   node examples/http-server/demo.mjs            the load demo (exit status 1 if any request failed)
//   node examples/http-server/demo.mjs --watch    the dev loop: edit handlers/*.ts, save, it swaps
//
// Bounds, from the environment: ISOPLUG_DEMO_REQUESTS (30000), ISOPLUG_DEMO_SECONDS (12),
// ISOPLUG_DEMO_SWAPS (5), ISOPLUG_DEMO_CONNECTIONS (64).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { createHotSwap } from 'isoplug';
import { buildPlugin } from 'isoplug/build';
import { close, createHandlerServer, get, listen } from './server.mjs';

const HANDLER = fileURLToPath(new URL('./handlers/hello.ts', import.meta.url));
const HELP = `Usage: node examples/http-server/demo.mjs [--watch [--port <n>] [--handler <file>]]

Without --watch: serve the handler under load and swap it 5 times; print a summary.
With --watch:    serve the handler and rebuild + swap it each time you save a source file.

Options:
  --watch            the dev loop
  --port <n>         port of the dev loop's server (default: a free one)
  --handler <file>   the handler's entry (default: examples/http-server/handlers/hello.ts)
  -h, --help         show this help
`;

let args;
try {
  args = parseArgs({
    options: {
      watch: { type: 'boolean' },
      port: { type: 'string' },
      handler: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (error) {
  console.error(`demo: ${error.message}`);
  process.exit(2);
}

function bound(name, fallback) {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`demo: ${name} must be a whole number, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

const n = (value) => Math.round(value).toLocaleString('en-US');
const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
const ms = (value) => `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
const shown = (path) => relative(process.cwd(), path) || path;

async function loadDemo() {
  const requests = bound('ISOPLUG_DEMO_REQUESTS', 30_000);
  const seconds = bound('ISOPLUG_DEMO_SECONDS', 12);
  const swapsWanted = bound('ISOPLUG_DEMO_SWAPS', 5);
  const connections = Math.max(1, bound('ISOPLUG_DEMO_CONNECTIONS', 64));
  const tty = Boolean(process.stdout.isTTY);
  const outDir = mkdtempSync(join(tmpdir(), 'isoplug-demo-'));
  const build = (version) => buildPlugin(HANDLER, outDir, { define: { __HANDLER_VERSION__: JSON.stringify(version) } });

  console.log('isoplug demo: a node:http server whose route handler is a plugin behind createHotSwap()\n');
  let hs;
  let server;
  let ticker;
  try {
    const first = await build('v1');
    const bundled = first.inputs.filter((input) => input !== first.entry).map((input) => basename(input));
    console.log(
      `built    ${shown(HANDLER)} → ${basename(first.file)} (${n(first.bytes)} B, ${ms(first.durationMs)}), bundled with ${bundled.join(', ') || 'nothing else'}`,
    );

    hs = await createHotSwap(first.file, { name: 'hello', version: 'v1', drainTimeoutMs: 10_000, standby: true });
    ({ server } = createHandlerServer(hs));
    const url = await listen(server, 0);
    const before = await get(`${url}/?name=demo`);
    console.log(`serving  ${url} with handler ${hs.version}, in a worker of its own: ${before.body.trim()}`);
    console.log(
      `load     ${connections} connections, until ${n(requests)} requests or ${seconds} s; the handler is rebuilt and swapped ${swapsWanted} times meanwhile`,
    );

    const rssStart = process.memoryUsage().rss;
    const started = performance.now();
    let responses = 0;
    let failures = 0;
    let over = false;
    const waiters = [];
    const check = () => {
      const elapsed = (performance.now() - started) / 1000;
      for (let i = waiters.length - 1; i >= 0; i--) {
        const waiter = waiters[i];
        if (over || responses >= waiter.requests || elapsed >= waiter.seconds) {
          waiters.splice(i, 1);
          waiter.resolve();
        }
      }
    };
    /** Resolves once `fraction` of the run is behind us, by requests or by time, or the load is over. */
    const reached = (fraction) =>
      new Promise((resolve) => {
        waiters.push({ requests: requests * fraction, seconds: seconds * fraction, resolve });
        check();
      });

    const instance = autocannon({ url: `${url}/?name=load`, connections, amount: requests, timeout: 10 });
    const finished = new Promise((resolve, reject) => {
      instance.once('done', resolve);
      instance.once('error', reject);
    });
    const deadline = setTimeout(() => instance.stop(), seconds * 1000);
    instance.on('response', (_client, status) => {
      responses++;
      if (status < 200 || status > 299) failures++;
      if (waiters.length > 0) check();
    });
    instance.on('reqError', () => failures++);
    void finished.finally(() => {
      over = true;
      clearTimeout(deadline);
      check();
    });

    const progress = () => {
      const elapsed = (performance.now() - started) / 1000;
      const rate = elapsed > 0 ? responses / elapsed : 0;
      return `  ${n(responses)}/${n(requests)} requests  ${n(rate)} req/s  ${failures} failed  serving ${hs.version}  swaps ${swaps.length}/${swapsWanted}`;
    };
    const say = (line) => process.stdout.write(tty ? `\r\x1b[K${line}\n${progress()}` : `${line}\n`);
    let ticks = 0;
    ticker = setInterval(() => {
      check();
      // A live line on a terminal; in a log, a plain line every 2 s.
      if (tty) process.stdout.write(`\r\x1b[K${progress()}`);
      else if (++ticks % 20 === 0) console.log(progress());
    }, 100);

    // The swaps, spread over the run: build a new bundle, load it in a new worker, switch, drain.
    const swaps = [];
    for (let k = 1; k <= swapsWanted; k++) {
      await reached(k / (swapsWanted + 1));
      if (over) break;
      const version = `v${k + 1}`;
      const atRequests = responses;
      const built = await build(version);
      const report = await hs.swap(built.file, { name: 'hello', version });
      swaps.push(report);
      say(
        `  swap ${k}/${swapsWanted}  ${report.from} → ${report.to} at ${n(atRequests)} requests: ` +
          `build ${ms(built.durationMs)} (${basename(built.file)}), load ${ms(report.loadMs)}${report.standby ? ' on the standby' : ''}, switch ${report.switchMs.toFixed(2)} ms, drain ${ms(report.drainMs)}`,
      );
    }
    const result = await finished;
    clearInterval(ticker);
    ticker = undefined;
    if (tty) process.stdout.write(`\r\x1b[K${progress()}\n`);

    const after = await get(`${url}/?name=demo`);
    const rssEnd = process.memoryUsage().rss;
    const total = result.requests.total;
    const failed = result.errors + result.non2xx;
    const versions = [before.version, ...swaps.map((swap) => swap.to)];
    const ok = failed === 0 && before.status === 200 && after.status === 200 && after.version === hs.version;

    console.log('\nsummary');
    console.log(
      `  requests   ${n(total)} in ${result.duration.toFixed(1)} s (${n(total / result.duration)} req/s) over ${connections} connections`,
    );
    console.log(
      `  failed     ${failed} (errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx})`,
    );
    console.log(
      `  swaps      ${swaps.length}: ${versions.join(' → ')}, each a new bundle in a new worker${swaps.every((swap) => swap.standby) ? ' (booted ahead as the standby)' : ''}, under load`,
    );
    console.log(`  served     ${before.version} before, ${after.version} after`);
    console.log(`  latency    p50 ${ms(result.latency.p50)}, p99 ${ms(result.latency.p99)}`);
    console.log(`  host RSS   ${mb(rssStart)} at start, ${mb(rssEnd)} at end`);
    if (!ok)
      console.error(
        failed > 0
          ? `\n${failed} requests failed`
          : `\nthe version served after the swaps (${after.version}) is not the current one (${hs.version})`,
      );
    return ok ? 0 : 1;
  } finally {
    clearInterval(ticker);
    if (server) await close(server);
    await hs?.close();
    rmSync(outDir, { recursive: true, force: true });
  }
}

if (args.help) {
  process.stdout.write(HELP);
} else if (args.watch) {
  const { devLoop } = await import('./dev.mjs');
  process.exitCode = await devLoop({
    handler: args.handler ?? HANDLER,
    port: args.port === undefined ? 0 : Number(args.port),
  });
} else {
  process.exitCode = await loadDemo();
}
