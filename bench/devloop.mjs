// The dev loop's figure: from saving a handler source to the new code answering requests, with a
// light load running, for isoplug's dev loop (rebuild + swap in the running server) and for
// restarting the whole server process the way `node --watch` does; all measured in the same run.
//
//   node bench/devloop.mjs [--saves 10] [--only isoplug,restart,nodeWatch]     (after npm run build)
//
// Prints a table and writes bench/results/devloop.json. Each scenario runs its server in a child
// process; this process writes the source files, drives the load and probes for the new version.
//
// Scenarios (each edits its own copy of examples/http-server/handlers):
//   isoplug     `demo.mjs --watch`: watchPlugin (fs.watch on the source folders, 25 ms debounce,
//               esbuild incremental rebuild) → hs.swap(): a new worker, the server process stays.
//   restart     the same watcher and build, then what node --watch does: stop the server process
//               (SIGTERM, wait for its exit), spawn a new one, which imports the new bundle and
//               listens. Only the last step differs from the isoplug scenario.
//   node --watch  node's own watch mode on a server importing a plain .mjs handler (no build):
//               the tool itself, for reference.
//
// "save → serving" runs from the write of the file to the first response with the new text, seen
// by a probe sending requests back to back. "dropped" counts the requests of the light load (4
// keep-alive connections, one request each every 10 ms) that failed (refused, reset, non-2xx)
// around the save. The measured saves are written in place; then one save by rename (as many
// editors do) and one more in place must both be picked up.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const SELF = fileURLToPath(import.meta.url);
const DEMO = fileURLToPath(new URL('../examples/http-server/demo.mjs', import.meta.url));
const HANDLERS = fileURLToPath(new URL('../examples/http-server/handlers', import.meta.url));
const RESULTS = fileURLToPath(new URL('./results/devloop.json', import.meta.url));
const LOAD = { connections: 4, pauseMs: 10 };
const SETTLE_MS = 400;
const SEEN_TIMEOUT_MS = 15_000;
const ATOMIC_TIMEOUT_MS = 3_000;

const { values: args } = parseArgs({
  options: {
    saves: { type: 'string', default: '10' },
    only: { type: 'string' },
    // Child modes: a plain server (--serve), and the process restarter (--restarter).
    serve: { type: 'boolean' },
    restarter: { type: 'boolean' },
    handler: { type: 'string' },
    out: { type: 'string' },
    port: { type: 'string' },
  },
});

// ---------------------------------------------------------------- child modes

/** A plain server: import the handler module, listen. No isoplug at run time. */
async function serve() {
  const { handle } = await import(pathToFileURL(args.handler).href);
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const reply = await handle({
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    });
    res.writeHead(reply.status, reply.headers).end(reply.body);
  });
  server.listen(Number(args.port), '127.0.0.1', () =>
    console.log(`listening after ${Math.round(process.uptime() * 1000)} ms`),
  );
}

/** Watches and builds like the dev loop, but restarts a server process on each new bundle. */
async function restarter() {
  const { watchPlugin } = await import('isoplug/build');
  let server;
  let chain = Promise.resolve();
  const start = (file) => {
    const proc = spawn(process.execPath, [SELF, '--serve', '--handler', file, '--port', args.port], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(proc, 'exit');
    const listening = new Promise((resolve, reject) => {
      createInterface({ input: proc.stdout }).on('line', (line) => {
        const match = /^listening after (\d+) ms/.exec(line);
        if (match) resolve(Number(match[1]));
      });
      void exited.then(([code]) => reject(new Error(`server exited (${code}) before listening`)));
    });
    return { proc, exited, listening };
  };
  const stop = async (child) => {
    if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGTERM');
    await child.exited;
  };
  const watcher = await watchPlugin(args.handler, args.out, {
    name: 'hello',
    onBuild: (built, info) => {
      if (!info.changed) return;
      chain = chain
        .then(async () => {
          if (server) await stop(server);
          server = start(built.file);
          const startup = await server.listening;
          console.log(
            `restarted in ${Math.round(performance.now() - info.triggeredAt)} ms (process start → listening ${startup} ms)`,
          );
        })
        .catch((error) => console.error(`restart failed: ${error.message}`));
    },
    onError: (error) => console.error(`build failed: ${error.message}`),
  });
  await chain;
  console.log(`listening on http://127.0.0.1:${args.port}`);
  await new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await watcher.close();
  await chain;
  if (server) await stop(server);
}

// ---------------------------------------------------------------- the measurement

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One GET: resolves `{ ok, body }`, never rejects. */
function get(url, agent) {
  return new Promise((resolve) => {
    const req = httpRequest(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ ok: res.statusCode >= 200 && res.statusCode < 300, body }));
      res.on('error', () => resolve({ ok: false, body: '' }));
    });
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ ok: false, body: '' }));
    req.end();
  });
}

/** The light load and a probe that sends back to back and reports each body it sees. */
function traffic(url) {
  const agent = new Agent({ keepAlive: true, maxSockets: LOAD.connections + 1 });
  const counts = { ok: 0, failed: 0 };
  let running = true;
  const loops = Array.from({ length: LOAD.connections }, async () => {
    while (running) {
      const reply = await get(url, agent);
      if (reply.ok) counts.ok++;
      else counts.failed++;
      await sleep(LOAD.pauseMs);
    }
  });
  let waiter;
  const probe = (async () => {
    while (running) {
      const reply = await get(url, agent);
      if (reply.ok && waiter && reply.body.includes(waiter.marker)) {
        const { resolve } = waiter;
        waiter = undefined;
        resolve(performance.now());
      }
      if (!reply.ok) await sleep(1);
    }
  })();
  return {
    counts,
    /** Resolves with the time the probe first got a body containing `marker`. */
    seen(marker, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiter = undefined;
          reject(new Error(`no response with ${marker} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiter = {
          marker,
          resolve: (at) => {
            clearTimeout(timer);
            resolve(at);
          },
        };
      });
    },
    async stop() {
      running = false;
      await Promise.all([...loops, probe]);
      agent.destroy();
    },
  };
}

/** Starts a child; resolves once a stdout line matches `ready`, with the match and a line listener. */
function child(command, argv, ready) {
  const proc = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
  const exited = new Promise((resolve) => proc.on('close', (code, signal) => resolve(code ?? signal)));
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  const listeners = new Set();
  const lines = createInterface({ input: proc.stdout });
  lines.on('line', (line) => {
    for (const listener of listeners) listener(line);
  });
  const started = new Promise((resolve, reject) => {
    const onLine = (line) => {
      const match = ready.exec(line);
      if (!match) return;
      listeners.delete(onLine);
      resolve(match);
    };
    listeners.add(onLine);
    void exited.then((code) => reject(new Error(`${argv.join(' ')} exited (${code}) before it was ready:\n${stderr}`)));
  });
  let tail = [];
  lines.on('line', (line) => (tail = [...tail.slice(-20), line]));
  return {
    started,
    output: () => `${tail.join('\n')}\n${stderr.slice(-2000)}`,
    onLine: (listener) => listeners.add(listener),
    async stop() {
      proc.kill('SIGINT');
      return exited;
    },
  };
}

/** Saves `file` as an editor would: in place, or (`atomic`) written aside and renamed over it. */
function save(file, text, atomic) {
  if (!atomic) return writeFileSync(file, text);
  const aside = `${file}.tmp-${process.pid}`;
  writeFileSync(aside, text);
  renameSync(aside, file);
}

const tsGreeting = (marker) =>
  `export function greeting(name: string) {\n  return { text: \`${marker}: Hello, \${name}!\`, name };\n}\n`;
const jsHandler = (marker) =>
  `export function handle(request) {\n` +
  `  const name = new URL(request.url, 'http://localhost').searchParams.get('name') ?? 'world';\n` +
  `  return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: \`${marker}: Hello, \${name}!\\n\` };\n}\n`;

/**
 * Runs one scenario: start, warm up with one save, then `saves` measured saves written in place.
 * Then the editor's other way of saving: one save by rename, followed by one in place; both must be
 * picked up (a watcher on the file itself, rather than its folder, loses it after the rename).
 */
async function scenario({ name, start, file, source, saves }) {
  const server = await start();
  const load = traffic(server.url);
  const samples = [];
  const notes = [];
  let dropped = 0;
  let atomicSaves = 'ok';
  const marker = (i) => `${name}-${i}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    for (let i = 0; i <= saves; i++) {
      await sleep(SETTLE_MS);
      const failedBefore = load.counts.failed;
      const text = marker(i);
      const seen = load.seen(text, SEEN_TIMEOUT_MS);
      const savedAt = performance.now();
      save(file, source(text), false);
      let at;
      try {
        at = await seen;
      } catch (error) {
        throw new Error(`${error.message}; the server said:\n${server.output()}`);
      }
      await sleep(SETTLE_MS); // requests dropped by a late second restart count too
      if (i === 0) continue; // warm-up
      samples.push(at - savedAt);
      dropped += load.counts.failed - failedBefore;
      if (server.lastNote !== undefined) notes.push(server.lastNote);
    }
    for (const atomic of [true, false]) {
      await sleep(SETTLE_MS);
      const text = marker(atomic ? 'rename' : 'after-rename');
      const seen = load.seen(text, ATOMIC_TIMEOUT_MS);
      save(file, source(text), atomic);
      try {
        await seen;
      } catch {
        atomicSaves = atomic ? 'missed the save by rename' : 'missed the save after a save by rename';
        break;
      }
    }
  } finally {
    await load.stop();
    await server.stop();
  }
  return { name, samples, dropped, served: load.counts.ok, notes, atomicSaves };
}

function isoplugServer(handler) {
  return async () => {
    const proc = child(process.execPath, [DEMO, '--watch', '--handler', handler], /^listening on (http:\/\/\S+)/);
    const [, base] = await proc.started;
    const server = {
      url: `${base}/?name=bench`,
      stop: () => proc.stop(),
      output: () => proc.output(),
      lastNote: undefined,
    };
    proc.onLine((line) => {
      const match = /^swapped to \w+ in (\d+) ms/.exec(line);
      if (match) server.lastNote = Number(match[1]);
    });
    return server;
  };
}

function restartServer({ handler, out }) {
  return async () => {
    const port = await freePort();
    const proc = child(
      process.execPath,
      [SELF, '--restarter', '--handler', handler, '--out', out, '--port', String(port)],
      /^listening on (http:\/\/\S+)/,
    );
    const [, base] = await proc.started;
    const server = {
      url: `${base}/?name=bench`,
      stop: () => proc.stop(),
      output: () => proc.output(),
      lastNote: undefined,
    };
    proc.onLine((line) => {
      const match = /^restarted in \d+ ms \(process start → listening (\d+) ms\)/.exec(line);
      if (match) server.lastNote = Number(match[1]);
    });
    return server;
  };
}

function nodeWatchServer({ handler }) {
  return async () => {
    const port = await freePort();
    const proc = child(
      process.execPath,
      ['--watch', SELF, '--serve', '--handler', handler, '--port', String(port)],
      /^listening after (\d+) ms/,
    );
    await proc.started;
    const server = {
      url: `http://127.0.0.1:${port}/?name=bench`,
      stop: () => proc.stop(),
      output: () => proc.output(),
      lastNote: undefined,
    };
    proc.onLine((line) => {
      const match = /^listening after (\d+) ms/.exec(line);
      if (match) server.lastNote = Number(match[1]);
    });
    return server;
  };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const at = (sorted.length - 1) * p;
  const low = Math.floor(at);
  const high = Math.ceil(at);
  return sorted[low] + (sorted[high] - sorted[low]) * (at - low);
}

const round = (value) => Math.round(value * 10) / 10;

function summarize(result) {
  const sorted = [...result.samples].sort((a, b) => a - b);
  const notes = [...result.notes].sort((a, b) => a - b);
  return {
    atomicSaves: result.atomicSaves,
    saves: sorted.length,
    p50Ms: round(percentile(sorted, 0.5)),
    minMs: round(sorted[0]),
    maxMs: round(sorted.at(-1)),
    samplesMs: result.samples.map(round),
    dropped: result.dropped,
    droppedPerSave: result.dropped / Math.max(1, sorted.length),
    served: result.served,
    /** isoplug: its own "swapped in" figure (fs event → switch); node --watch: process start → listening. */
    innerP50Ms: notes.length > 0 ? percentile(notes, 0.5) : null,
  };
}

function table(rows) {
  const header = ['', 'save → serving p50', 'min', 'max', 'dropped', 'per save', 'served', 'save by rename'];
  const cells = rows.map((row) => [
    row.label,
    `${Math.round(row.p50Ms)} ms`,
    `${Math.round(row.minMs)} ms`,
    `${Math.round(row.maxMs)} ms`,
    String(row.dropped),
    row.droppedPerSave.toFixed(1),
    row.served.toLocaleString('en-US'),
    row.atomicSaves,
  ]);
  const widths = header.map((_, c) => Math.max(...[header, ...cells].map((line) => line[c].length)));
  const line = (cols) =>
    cols.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

async function bench() {
  const saves = Number(args.saves);
  if (!Number.isInteger(saves) || saves < 1) throw new Error(`--saves must be a whole number ≥ 1, got ${args.saves}`);
  const work = mkdtempSync(join(tmpdir(), 'isoplug-devloop-'));
  const loadStart = loadavg();
  const began = performance.now();
  try {
    // Each scenario edits its own copy of the handler sources.
    const copy = (name) => {
      const dir = join(work, name);
      cpSync(HANDLERS, dir, { recursive: true });
      return dir;
    };
    const isoDir = copy('isoplug');
    const restartDir = copy('restart');
    const jsDir = join(work, 'node-watch');
    mkdirSync(jsDir);
    writeFileSync(join(jsDir, 'handler.mjs'), jsHandler('start'));

    const plan = [
      {
        key: 'isoplug',
        label: 'isoplug dev loop: rebuild + swap',
        start: isoplugServer(join(isoDir, 'hello.ts')),
        file: join(isoDir, 'greeting.ts'),
        source: tsGreeting,
      },
      {
        key: 'restart',
        label: 'rebuild + restart the process',
        start: restartServer({ handler: join(restartDir, 'hello.ts'), out: join(work, 'restart-out') }),
        file: join(restartDir, 'greeting.ts'),
        source: tsGreeting,
      },
      {
        key: 'nodeWatch',
        label: 'node --watch (plain JS, no build)',
        start: nodeWatchServer({ handler: join(jsDir, 'handler.mjs') }),
        file: join(jsDir, 'handler.mjs'),
        source: jsHandler,
      },
    ];
    const rows = [];
    const failures = [];
    for (const step of plan) {
      if (args.only && !args.only.split(',').includes(step.key)) continue;
      process.stdout.write(`${step.label}: ${saves} saves … `);
      try {
        const summary = summarize(
          await scenario({ name: step.key, start: step.start, file: step.file, source: step.source, saves }),
        );
        rows.push({ key: step.key, label: step.label, ...summary });
        console.log(`p50 ${Math.round(summary.p50Ms)} ms, ${summary.dropped} dropped`);
      } catch (error) {
        failures.push({ key: step.key, label: step.label, error: error.message });
        console.log(`failed: ${error.message}`);
      }
    }

    const iso = rows.find((row) => row.key === 'isoplug');
    if (!iso) throw new Error('the isoplug scenario failed; no figure to compare with');
    const loadEnd = loadavg();
    console.log(
      `\ndev loop: save → new version serving, ${saves} saves each; light load: ${LOAD.connections} keep-alive connections, 1 request each every ${LOAD.pauseMs} ms\n`,
    );
    console.log(table(rows));
    console.log('');
    for (const row of rows)
      if (row !== iso)
        console.log(
          `${row.label}: p50 ${(row.p50Ms / iso.p50Ms).toFixed(1)}× isoplug's, ${row.dropped} dropped vs ${iso.dropped}`,
        );
    if (iso.innerP50Ms !== null)
      console.log(`isoplug's own "swapped … in" (file event → switch) p50: ${Math.round(iso.innerP50Ms)} ms`);
    for (const row of rows) {
      if (row !== iso && row.innerP50Ms !== null)
        console.log(`${row.label}: new process start → listening p50 ${Math.round(row.innerP50Ms)} ms`);
    }
    console.log(
      `load average at start ${loadStart.map((v) => v.toFixed(2)).join(' ')}, at end ${loadEnd.map((v) => v.toFixed(2)).join(' ')} (${cpus().length} CPUs; above that, other processes competed)`,
    );

    const report = {
      generated: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      platform: `${process.platform}-${process.arch}`,
      saves,
      load: LOAD,
      settleMs: SETTLE_MS,
      loadAverage: { start: loadStart, end: loadEnd },
      runtimeMs: Math.round(performance.now() - began),
      scenarios: rows.map(({ key, label, ...rest }) => ({ key, label, ...rest })),
      failures,
      p50RatioToIsoplug: Object.fromEntries(
        rows.filter((row) => row !== iso).map((row) => [row.key, round(row.p50Ms / iso.p50Ms)]),
      ),
    };
    if (failures.length > 0) process.exitCode = 1;
    if (args.only) return; // a partial run does not replace the results
    mkdirSync(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true });
    writeFileSync(RESULTS, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\nwrote ${relative(process.cwd(), RESULTS)}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (args.serve) await serve();
else if (args.restarter) await restarter();
else await bench();
