// Part — big: swaps of big plugin versions with and without the code cache (LoadOptions.codeCache),
// against a bare `new Worker` boot to its first reply, all interleaved in one run (the order of the
// variants rotates every round). Two plugins: a generated 5 MB CommonJS module, and prettier 3 bundled
// into one CommonJS file with its language plugins (a real library of that size). For each: swaps on
// fresh workers and on the standby, with the cache off, cold (no entry: the load compiles and hands its
// cache over) and warm (a hit), and on the standby with the next version prepared ahead (`prepare()`).
// A swap is timed from swap() to the new version's first reply. Last, `threads: 4` against `threads: 1`
// loads of the 5 MB module, cache off and warm.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { Script } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedDataVersionTag } from 'node:v8';
import { fileURLToPath } from 'node:url';
import { bigPluginSource, toCommonJs } from '../lib/bigplugin.mjs';
import { bareBoot } from '../lib/raw.mjs';
import { makeFigure } from '../lib/results.mjs';
import { percentile, sleep } from '../lib/stats.mjs';
import { formatTable, num, ratio } from '../lib/table.mjs';

const ROUNDS = Number(process.env.BIG_ROUNDS ?? 15);
/** After a standby swap or a prepare: the next standby boots (and compiles) in the background. */
const SETTLE_MS = 400;
const RUNTIME = `${process.version}-${process.arch}-${cachedDataVersionTag()}`;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The 5 MB generated module as CommonJS (the code cache serves CommonJS). */
function generatedCjs(label) {
  return toCommonJs(bigPluginSource(label, 5_000_000));
}

/** prettier 3 and its language plugins in one CommonJS file (esbuild), version `label`. */
async function prettierBundle(dir, label) {
  const { build } = await import('esbuild');
  const plugins = ['babel', 'estree', 'typescript', 'postcss', 'markdown', 'html', 'yaml', 'graphql', 'angular'];
  const entry = join(dir, `prettier-entry-${label}.cjs`);
  writeFileSync(
    entry,
    [
      `const prettier = require('prettier/standalone');`,
      ...plugins.map((p) => `const ${p} = require('prettier/plugins/${p}');`),
      `const plugins = [${plugins.join(', ')}];`,
      `exports.version = () => ${JSON.stringify(label)};`,
      `exports.format = (source) => prettier.format(source, { parser: 'babel', plugins });`,
    ].join('\n'),
  );
  const outfile = join(dir, `prettier-${label}.cjs`);
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile,
    nodePaths: [join(ROOT, 'node_modules')],
    logLevel: 'error',
  });
  return outfile;
}

/** Cached data for `path` made in this thread after running it (the form raw-load.mjs reads). */
function floorCache(path, cache) {
  const source = readFileSync(path, 'utf8');
  const script = new Script(`(function (exports, require, module, __filename, __dirname) { ${source}\n})`, {
    filename: path,
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, undefined, module, path, '');
  writeFileSync(cache, script.createCachedData());
}

/** A bare worker that reads, compiles with the cache, runs the module and replies: ms to that reply. */
async function floorLoad(path, cache) {
  const started = performance.now();
  const worker = new Worker(new URL('../workers/raw-load.mjs', import.meta.url), { workerData: { path, cache } });
  const reply = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const ms = performance.now() - started;
  await worker.terminate();
  if (reply.rejected) throw new Error(`big: the floor's cached data for ${path} was rejected`);
  return ms;
}

const digestOf = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

export async function runBig({ iso, progress }) {
  const dir = mkdtempSync(join(tmpdir(), 'isoplug-bench-big-'));
  const cacheDir = join(dir, 'cache');
  const codeCache = { dir: cacheDir };
  const hotSwaps = [];
  try {
    progress('big: writing the 5 MB plugin and bundling prettier…', { force: true });
    const plugins = {
      gen5mb: ['a', 'b'].map((label) => {
        const path = join(dir, `big-${label}.cjs`);
        writeFileSync(path, generatedCjs(label));
        return path;
      }),
      prettier: [await prettierBundle(dir, 'a'), await prettierBundle(dir, 'b')],
    };
    const sizes = Object.fromEntries(Object.entries(plugins).map(([k, [a]]) => [k, readFileSync(a).length]));
    const entryOf = (path) => join(cacheDir, RUNTIME, `${digestOf(path)}.bin`);
    const dropEntry = (path) => {
      try {
        unlinkSync(entryOf(path));
      } catch {
        // None yet.
      }
    };
    /** Loads each version once with the cache on, so both have an entry. */
    const warm = async (paths) => {
      for (const path of paths) {
        const plugin = await iso.loadPlugin(path, { codeCache, readyTimeoutMs: 120_000 });
        await plugin.api.version();
        await plugin.close();
      }
    };

    const samples = {};
    const push = (key, ms) => (samples[key] ??= []).push(ms);
    const codeStatus = {};
    const variants = [['bare', async () => push('bare', await bareBoot())]];
    for (const [name, paths] of Object.entries(plugins)) {
      await warm(paths);
      const floorCacheFile = join(dir, `${name}-floor.bin`);
      floorCache(paths[0], floorCacheFile);
      variants.push([`${name}/floor`, async () => push(`${name}/floor`, await floorLoad(paths[0], floorCacheFile))]);
      const make = async (options) => {
        const hs = await iso.createHotSwap(paths[0], { drainTimeoutMs: 10_000, readyTimeoutMs: 120_000, ...options });
        hotSwaps.push(hs);
        let n = 0;
        return { hs, next: () => paths[++n % 2] };
      };
      const series = {
        fresh_off: await make({ codeCache: false }),
        fresh_on: await make({ codeCache }),
        standby_off: await make({ codeCache: false, standby: true }),
        standby_on: await make({ codeCache, standby: true }),
      };
      const timed = async (key, s, { cold = false, prepare = false, run = true } = {}) => {
        const file = s.next();
        if (cold) dropEntry(file);
        if (prepare) {
          if (!(await s.hs.prepare(file, { run }))) throw new Error(`${name}/${key}: prepare(${file}) did nothing`);
          await sleep(SETTLE_MS);
        }
        const started = performance.now();
        let replied;
        // The first call after the switch, from the 'swap' listener: it is the new version's first reply.
        s.hs.once('swap', () => (replied = s.hs.call('version').then(() => performance.now())));
        const report = await s.hs.swap(file).catch((error) => {
          // The whole chain of causes: which step of the load failed.
          let text = '';
          for (let e = error; e; e = e.cause) text += ` ← ${e.code ?? e.name}: ${e.message}`;
          throw new Error(`${name}/${key}: swap to ${file} failed${text}`);
        });
        push(`${name}/${key}`, (await replied) - started);
        const counts = (codeStatus[`${name}/${key}`] ??= {});
        counts[report.codeCache] = (counts[report.codeCache] ?? 0) + 1;
        await sleep(s.hs === series.standby_off.hs || s.hs === series.standby_on.hs ? SETTLE_MS : 50);
      };
      variants.push(
        [`${name}/fresh, cache off`, () => timed('fresh, cache off', series.fresh_off)],
        [`${name}/fresh, cold cache`, () => timed('fresh, cold cache', series.fresh_on, { cold: true })],
        [`${name}/fresh, warm cache`, () => timed('fresh, warm cache', series.fresh_on)],
        [`${name}/standby, cache off`, () => timed('standby, cache off', series.standby_off)],
        [`${name}/standby, warm cache`, () => timed('standby, warm cache', series.standby_on)],
        [`${name}/standby, prepared`, () => timed('standby, prepared', series.standby_on, { prepare: true })],
        [
          `${name}/standby, compiled ahead`,
          () => timed('standby, compiled ahead', series.standby_on, { prepare: true, run: false }),
        ],
      );
      await sleep(SETTLE_MS);
    }
    const threads = (count, cache) => async () => {
      const started = performance.now();
      const plugin = await iso.loadPlugin(plugins.gen5mb[0], {
        threads: count,
        codeCache: cache ? codeCache : false,
        readyTimeoutMs: 120_000,
      });
      push(`threads ${count}, cache ${cache ? 'warm' : 'off'}`, performance.now() - started);
      await plugin.close();
    };
    // The peer of threads: 4 ÷ threads: 1: four bare workers booted at once to their first replies ÷ one.
    const bareFour = async () => {
      const started = performance.now();
      await Promise.all([bareBoot(), bareBoot(), bareBoot(), bareBoot()]);
      push('bare4', performance.now() - started);
    };
    variants.push(
      ['bare4', bareFour],
      ['t1 off', threads(1, false)],
      ['t4 off', threads(4, false)],
      ['t1 warm', threads(1, true)],
      ['t4 warm', threads(4, true)],
    );

    for (let round = 0; round < ROUNDS; round++) {
      const order = variants.map((_, i) => variants[(i + round) % variants.length]);
      for (const [i, [label, run]] of order.entries()) {
        progress(`big: round ${round + 1}/${ROUNDS}, ${i + 1}/${order.length}: ${label}`);
        await run();
      }
    }

    const p50 = (key) => percentile(samples[key] ?? [], 50);
    const p90 = (key) => percentile(samples[key] ?? [], 90);
    const bare = p50('bare');
    const rows = [
      ['bare Worker boot → first reply', num(bare), num(p90('bare')), '1.00×', ''],
      [
        '4 bare Workers at once → 4 first replies',
        num(p50('bare4')),
        num(p90('bare4')),
        ratio(p50('bare4') / bare),
        '',
      ],
    ];
    const figures = [];
    for (const name of Object.keys(plugins)) {
      const floor = p50(`${name}/floor`);
      rows.push([
        `${name}: bare worker reads, compiles (cache), runs`,
        num(floor),
        num(p90(`${name}/floor`)),
        ratio(floor / bare),
        'the floor',
      ]);
      const warmFresh = p50(`${name}/fresh, warm cache`);
      figures.push(
        makeFigure({
          part: 'big',
          key: `${name}-fresh-warm-over-floor`,
          name: `${name} swap, fresh, warm cache ÷ the floor (bare worker: read, compile with cache, run)`,
          value: warmFresh,
          unit: 'ms',
          better: 'lower',
          peers: { floor },
          baseline: 'floor',
          note: `the floor is ${ratio(floor / bare)} a bare boot`,
        }),
      );
      for (const key of [
        'fresh, cache off',
        'fresh, cold cache',
        'fresh, warm cache',
        'standby, cache off',
        'standby, warm cache',
        'standby, prepared',
        'standby, compiled ahead',
      ]) {
        const k = `${name}/${key}`;
        const status = Object.entries(codeStatus[k] ?? {})
          .map(([s, c]) => `${s} ${c}`)
          .join(', ');
        rows.push([`${name} swap, ${key}`, num(p50(k)), num(p90(k)), ratio(p50(k) / bare), status]);
        const bar =
          name === 'gen5mb' && key === 'standby, prepared'
            ? { against: 'bare', op: '<=', limit: 1.0 }
            : name === 'gen5mb' && key === 'fresh, warm cache'
              ? { against: 'bare', op: '<=', limit: 2.0 }
              : name === 'gen5mb' && key === 'standby, warm cache'
                ? { against: 'bare', op: '<=', limit: 1.0 }
                : undefined;
        figures.push(
          makeFigure({
            part: 'big',
            key: `${name}-${key.replace(/[^a-z]+/g, '-')}`,
            name: `${name} swap, ${key} (p50, swap() → first reply)`,
            value: p50(k),
            unit: 'ms',
            better: 'lower',
            peers: { bare },
            baseline: 'bare',
            bar,
            note: `p90 ${num(p90(k))} ms; code cache: ${status}`,
          }),
        );
      }
    }
    for (const cache of ['off', 'warm']) {
      const t1 = p50(`threads 1, cache ${cache}`);
      const t4 = p50(`threads 4, cache ${cache}`);
      rows.push([
        `gen5mb load, threads 1, cache ${cache}`,
        num(t1),
        num(p90(`threads 1, cache ${cache}`)),
        ratio(t1 / bare),
        '',
      ]);
      rows.push([
        `gen5mb load, threads 4, cache ${cache}`,
        num(t4),
        num(p90(`threads 4, cache ${cache}`)),
        ratio(t4 / bare),
        `${num(t4 / t1)}× threads 1`,
      ]);
      figures.push(
        makeFigure({
          part: 'big',
          key: `threads4-over-threads1-${cache}`,
          name: `gen5mb load, threads 4 ÷ threads 1, cache ${cache} (p50)`,
          value: t4 / t1,
          unit: '×',
          better: 'lower',
          peers: { 'bare 4 ÷ bare 1': p50('bare4') / bare },
          baseline: 'bare 4 ÷ bare 1',
          bar: cache === 'warm' ? { op: '<=', limit: 1.5 } : undefined,
          note: 'on 2 cores four threads doing the same CPU work take at least 2× one: the peer is four bare workers booted at once',
        }),
      );
    }
    const table = formatTable(['variant', 'p50 ms', 'p90 ms', '× bare boot', 'code cache / note'], rows, {
      title: `BIG — ${ROUNDS} interleaved rounds; gen5mb ${(sizes.gen5mb / 2 ** 20).toFixed(1)} MiB, prettier bundle ${(sizes.prettier / 2 ** 20).toFixed(1)} MiB`,
    });
    return {
      figures,
      tables: [table],
      notes: [
        `standby swaps are followed by a ${SETTLE_MS} ms pause (the next standby boots); a prepared swap waits ${SETTLE_MS} ms after prepare() resolved`,
        '"prepared": prepare(file) compiled and ran the module on the standby (the default); "compiled ahead": prepare(file, { run: false })',
        'the floor: a bare new Worker that reads the module and its cached data, compiles with them (vm.Script), runs it and replies, without isoplug',
        'a cold-cache swap includes the first worker serializing its cache right after Ready (it delays the first reply)',
      ],
    };
  } finally {
    for (const hs of hotSwaps.splice(0)) await hs.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}
