/**
 * The code cache (`LoadOptions.codeCache`): V8's compiled code of a CommonJS plugin kept on disk and
 * reused by the next load of the same bytes. What is checked is what a user would see: the load report
 * (`plugin.codeCache`), the plugin's results, and the folder's entries. A damaged, foreign or rejected
 * entry must make the load slower, never fail it.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import * as nodeModule from 'node:module';
import { join } from 'node:path';
import { cachedDataVersionTag } from 'node:v8';
import { createHash } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { codeCacheIdle } from '../src/code-cache.js';
import { encode, RUNTIME_KEY, verify } from '../src/code-store.js';
import { BOOT_DEFAULTS, configureBoots, createHotSwap, loadPlugin, type LoadOptions } from '../src/index.js';
import { tempDir, writePlugin } from './helpers.js';

type Adder = { add(a: number, b: number): number; label(): string };

/** A CommonJS plugin whose source is `size`-ish bytes, with `label` in its code. */
function adderSource(label: string, filler = 0): string {
  const fns = Array.from({ length: filler }, (_, i) => `function f${i}(x) { return x * ${i} + ${label.length}; }`);
  return `'use strict';\n${fns.join('\n')}\nexports.add = (a, b) => a + b;\nexports.label = () => ${JSON.stringify(label)};\n`;
}

function digestOf(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Loads, calls, closes, and waits until the entry the load made (if any) is written. */
async function loadOnce(path: string, options: LoadOptions & { codeCache: { dir: string } }) {
  const plugin = await loadPlugin<Adder>(path, options);
  const result = { status: plugin.codeCache, sum: await plugin.api.add(2, 3), label: await plugin.api.label() };
  await plugin.close();
  await codeCacheIdle(options.codeCache.dir);
  return result;
}

function entries(dir: string, runtime = RUNTIME_KEY): string[] {
  try {
    return readdirSync(join(dir, runtime));
  } catch {
    return [];
  }
}

describe('code cache', () => {
  it('K1: the first load is a miss and writes an entry; the next load of the same bytes is a hit', async () => {
    const dir = join(tempDir(), 'cache');
    const path = writePlugin(tempDir(), 'adder.cjs', adderSource('one', 50));
    expect(await loadOnce(path, { codeCache: { dir } })).toEqual({ status: 'miss', sum: 5, label: 'one' });
    const digest = digestOf(path);
    expect(entries(dir)).toEqual([`${digest}.bin`]);
    expect(verify(readFileSync(join(dir, RUNTIME_KEY, `${digest}.bin`)), digest)).toBeDefined();
    expect(await loadOnce(path, { codeCache: { dir } })).toEqual({ status: 'hit', sum: 5, label: 'one' });
  });

  it('K1: every thread of threads: 3 is served from one entry; a hot swap reports the cache', async () => {
    const dir = join(tempDir(), 'cache');
    const folder = tempDir();
    const a = writePlugin(folder, 'a.cjs', adderSource('a', 20));
    const b = writePlugin(folder, 'b.cjs', adderSource('b', 20));
    await loadOnce(b, { codeCache: { dir } });
    const hs = await createHotSwap<Adder>(a, { threads: 3, codeCache: { dir } });
    const report = await hs.swap(b);
    expect(report.codeCache).toBe('hit');
    expect(await hs.api.label()).toBe('b');
    // a's first load (on create) made its entry; its worker has ended, so the entry is written.
    await codeCacheIdle(dir);
    const back = await hs.swap(a);
    expect(back.codeCache).toBe('hit');
    expect(await hs.api.label()).toBe('a');
    await hs.close();
    await codeCacheIdle(dir);
  });

  it('K2: a damaged entry is never given to V8: the load succeeds, reports rejected, and the entry is rewritten', async () => {
    const dir = join(tempDir(), 'cache');
    const path = writePlugin(tempDir(), 'adder.cjs', adderSource('flip', 200));
    await loadOnce(path, { codeCache: { dir } });
    const file = join(dir, RUNTIME_KEY, `${digestOf(path)}.bin`);
    const bytes = readFileSync(file);
    // One bit in the middle of V8's data: V8 itself would accept most such flips (and may crash on them).
    bytes[Math.floor(bytes.length / 2) + 24]! ^= 0x10;
    writeFileSync(file, bytes);
    expect(await loadOnce(path, { codeCache: { dir } })).toEqual({ status: 'rejected', sum: 5, label: 'flip' });
    expect(verify(readFileSync(file), digestOf(path))).toBeDefined();
    expect(await loadOnce(path, { codeCache: { dir } })).toEqual({ status: 'hit', sum: 5, label: 'flip' });
  });

  it('K2: a truncated entry, an empty one, and one naming another source read as rejected, and the load succeeds', async () => {
    const dir = join(tempDir(), 'cache');
    const folder = tempDir();
    const path = writePlugin(folder, 'adder.cjs', adderSource('abc', 30));
    // The same length, other code: V8 checks only the length, the entry's name and header do the rest.
    const other = writePlugin(folder, 'other.cjs', adderSource('xyz', 30));
    await loadOnce(other, { codeCache: { dir } });
    const file = join(dir, RUNTIME_KEY, `${digestOf(path)}.bin`);
    const foreign = readFileSync(join(dir, RUNTIME_KEY, `${digestOf(other)}.bin`));
    for (const damaged of [foreign, foreign.subarray(0, foreign.length - 7), Buffer.alloc(0)]) {
      writeFileSync(file, damaged);
      expect(await loadOnce(path, { codeCache: { dir } })).toEqual({ status: 'rejected', sum: 5, label: 'abc' });
    }
  });

  it('K3: an entry made under other V8 flags is rejected by V8: the load succeeds and the entry is replaced', async () => {
    const dir = join(tempDir(), 'cache');
    const path = writePlugin(tempDir(), 'adder.cjs', adderSource('flags', 40));
    const source = readFileSync(path);
    // The same wrapper as the runtime's, compiled by a Node with another V8 flag (another version tag).
    const script = `
      const { Script } = require('node:vm');
      const v8 = require('node:v8');
      const src = require('node:fs').readFileSync(process.argv[1], 'utf8');
      const s = new Script('(function (exports, require, module, __filename, __dirname) { ' + src + '\\n})', { filename: process.argv[1] });
      process.stdout.write(JSON.stringify({ tag: v8.cachedDataVersionTag(), data: s.createCachedData().toString('base64') }));`;
    const out = JSON.parse(
      execFileSync(process.execPath, ['--max-semi-space-size=37', '-e', script, path], { encoding: 'utf8' }),
    ) as { tag: number; data: string };
    expect(out.tag).not.toBe(cachedDataVersionTag());
    const digest = digestOf(path);
    mkdirSync(join(dir, RUNTIME_KEY), { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, RUNTIME_KEY, `${digest}.bin`), encode(digest, source, Buffer.from(out.data, 'base64')));
    expect(await loadOnce(path, { codeCache: { dir } })).toEqual({ status: 'rejected', sum: 5, label: 'flags' });
    expect(await loadOnce(path, { codeCache: { dir } })).toEqual({ status: 'hit', sum: 5, label: 'flags' });
  });

  it("K3: another runtime's entries (Node version, arch, V8 flags) are never read, and are evicted first", async () => {
    const dir = join(tempDir(), 'cache');
    const folder = tempDir();
    const path = writePlugin(folder, 'adder.cjs', adderSource('stale', 40));
    const digest = digestOf(path);
    // Under this very digest, but another runtime's folder: it must not be read.
    const stale = join(dir, 'v0.0.0-x64-1');
    mkdirSync(stale, { recursive: true, mode: 0o700 });
    writeFileSync(join(stale, `${digest}.bin`), Buffer.alloc(4096, 1));
    expect(await loadOnce(path, { codeCache: { dir } })).toEqual({ status: 'miss', sum: 5, label: 'stale' });
    const size = statSync(join(dir, RUNTIME_KEY, `${digest}.bin`)).size;
    expect(size).toBeLessThan(2048);
    // Touched after ours, and still the first to go: this process can never use it.
    const recent = new Date(Date.now() + 60_000);
    utimesSync(join(stale, `${digest}.bin`), recent, recent);
    const next = writePlugin(folder, 'next.cjs', adderSource('next', 40));
    await loadOnce(next, { codeCache: { dir, maxBytes: 2 * size + 2048 } });
    expect(entries(dir, 'v0.0.0-x64-1')).toEqual([]);
    expect(entries(dir).sort()).toEqual([`${digest}.bin`, `${digestOf(next)}.bin`].sort());
  });

  it('K4: past maxBytes the least recently used entries are deleted', async () => {
    const dir = join(tempDir(), 'cache');
    const folder = tempDir();
    const paths = ['a', 'b', 'c'].map((name) => writePlugin(folder, `${name}.cjs`, adderSource(name, 60)));
    await loadOnce(paths[0]!, { codeCache: { dir } });
    const size = statSync(join(dir, RUNTIME_KEY, `${digestOf(paths[0]!)}.bin`)).size;
    await loadOnce(paths[1]!, { codeCache: { dir } });
    // a is older than b, then a is used again (a hit touches it): b is now the least recently used.
    const older = new Date(Date.now() - 120_000);
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, RUNTIME_KEY, `${digestOf(paths[0]!)}.bin`), older, older);
    utimesSync(join(dir, RUNTIME_KEY, `${digestOf(paths[1]!)}.bin`), old, old);
    expect((await loadOnce(paths[0]!, { codeCache: { dir } })).status).toBe('hit');
    // Room for two entries: the third write evicts down to 80%, which keeps one.
    await loadOnce(paths[2]!, { codeCache: { dir, maxBytes: Math.floor(size * 2.5) } });
    const left = entries(dir);
    expect(left).not.toContain(`${digestOf(paths[1]!)}.bin`);
    expect(left).toContain(`${digestOf(paths[2]!)}.bin`);
    const total = left.reduce((sum, name) => sum + statSync(join(dir, RUNTIME_KEY, name)).size, 0);
    expect(total).toBeLessThanOrEqual(size * 2.5);
  });

  it('K5: codeCache: false opts out: the module is imported, nothing is read or written', async () => {
    const cacheHome = tempDir();
    const path = writePlugin(tempDir(), 'adder.cjs', adderSource('out', 10));
    const plugin = await loadPlugin<Adder>(path, { codeCache: false });
    expect(plugin.codeCache).toBe('off');
    expect(await plugin.api.add(1, 1)).toBe(2);
    await plugin.close();
    // A hot swap's option holds for its swaps (they resolve the hot swap's options again).
    const hs = await createHotSwap<Adder>(path, { codeCache: false });
    expect((await hs.swap(path)).codeCache).toBe('off');
    await hs.close();
    // With an explicit folder too: an ES module is imported as before, and reports off.
    const esm = writePlugin(
      tempDir(),
      'esm.mjs',
      'export const add = (a, b) => a + b; export const label = () => "esm";',
    );
    const dir = join(cacheHome, 'cache');
    expect(await loadOnce(esm, { codeCache: { dir } })).toEqual({ status: 'off', sum: 5, label: 'esm' });
    // No entry of ours (on Node 22.1+ Node's own cache may fill `node/` beside them: K11).
    expect(entries(dir)).toEqual([]);
  });

  it('K6: two versions of the same bytes written at once leave one whole entry and no temporary file', async () => {
    const dir = join(tempDir(), 'cache');
    const path = writePlugin(tempDir(), 'adder.cjs', adderSource('race', 300));
    // All four workers boot at once (the boot queue would otherwise let a later one find the entry written).
    configureBoots({ concurrency: 8 });
    onTestFinished(() => configureBoots({ concurrency: BOOT_DEFAULTS.concurrency }));
    const plugins = await Promise.all([
      loadPlugin<Adder>(path, { codeCache: { dir }, threads: 2 }),
      loadPlugin<Adder>(path, { codeCache: { dir } }),
      loadPlugin<Adder>(path, { codeCache: { dir } }),
    ]);
    const statuses = plugins.map((p) => p.codeCache);
    await Promise.all(plugins.map((p) => p.close()));
    // At least two wrote the entry at once; one that started after a write may have hit it.
    expect(statuses.filter((s) => s === 'miss').length).toBeGreaterThanOrEqual(2);
    for (const status of statuses) expect(['miss', 'hit']).toContain(status);
    await codeCacheIdle(dir);
    const digest = digestOf(path);
    expect(entries(dir)).toEqual([`${digest}.bin`]);
    expect(verify(readFileSync(join(dir, RUNTIME_KEY, `${digest}.bin`)), digest)).toBeDefined();
    expect(await loadOnce(path, { codeCache: { dir } })).toEqual({ status: 'hit', sum: 5, label: 'race' });
  });

  it('K6: a second process writing the same entry meanwhile leaves a whole entry', async () => {
    const dir = join(tempDir(), 'cache');
    const path = writePlugin(tempDir(), 'adder.cjs', adderSource('procs', 300));
    const child = `
      import { loadPlugin } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
      const p = await loadPlugin(process.argv[1], { codeCache: { dir: process.argv[2] } });
      await p.api.add(1, 2);
      await p.close();`;
    const [, plugin] = await Promise.all([
      promisify(execFile)(process.execPath, ['--input-type=module', '-e', child, path, dir]),
      loadPlugin<Adder>(path, { codeCache: { dir } }),
    ]);
    await plugin.close();
    await codeCacheIdle(dir);
    const digest = digestOf(path);
    expect(entries(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    expect(verify(readFileSync(join(dir, RUNTIME_KEY, `${digest}.bin`)), digest)).toBeDefined();
  });

  it('K7: the folder is made private (0700), a loose one is tightened, and a link in its place turns the cache off', async () => {
    const home = tempDir();
    const dir = join(home, 'made');
    const path = writePlugin(tempDir(), 'adder.cjs', adderSource('perm', 10));
    await loadOnce(path, { codeCache: { dir } });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, RUNTIME_KEY)).mode & 0o777).toBe(0o700);
    const file = join(dir, RUNTIME_KEY, `${digestOf(path)}.bin`);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const loose = join(home, 'loose');
    mkdirSync(loose, { mode: 0o777 });
    chmodSync(loose, 0o777);
    await loadOnce(path, { codeCache: { dir: loose } });
    expect(statSync(loose).mode & 0o777).toBe(0o700);

    const target = join(home, 'target');
    mkdirSync(target, { mode: 0o700 });
    const link = join(home, 'link');
    symlinkSync(target, link);
    expect(await loadOnce(path, { codeCache: { dir: link } })).toEqual({ status: 'off', sum: 5, label: 'perm' });
    expect(readdirSync(target)).toEqual([]);
  });

  it('K10: prepare() compiles and runs the next module on the standby; the swap to those bytes runs only onLoad; other bytes get fresh workers', async () => {
    const dir = join(tempDir(), 'cache');
    const folder = tempDir();
    const log = join(folder, 'log');
    writeFileSync(log, '');
    // Each module says when its top level and its onLoad ran.
    const source = (label: string) =>
      `const { appendFileSync } = require('node:fs');\nappendFileSync(${JSON.stringify(log)}, 'top:${label}\\n');\n` +
      `exports.onLoad = () => appendFileSync(${JSON.stringify(log)}, 'onLoad:${label}\\n');\n` +
      `exports.label = () => ${JSON.stringify(label)};\n`;
    const [a, b, c] = ['a', 'b', 'c'].map((label) => writePlugin(folder, `${label}.cjs`, source(label)));
    const lines = () => readFileSync(log, 'utf8').split('\n').filter(Boolean);
    const hs = await createHotSwap<Adder>(a!, { standby: true, codeCache: { dir } });
    expect(await hs.prepare(b!)).toBe(true);
    // Resolved once the standby ran b's top level; onLoad waits for the swap.
    expect(lines()).toEqual(['top:a', 'onLoad:a', 'top:b']);
    expect(await hs.swap(b!)).toMatchObject({ standby: true });
    expect(lines()).toEqual(['top:a', 'onLoad:a', 'top:b', 'onLoad:b']);
    expect(await hs.api.label()).toBe('b');
    // The next standby (it boots after the swap) runs b again; preparing the same bytes twice runs it once.
    expect(await hs.prepare(b!)).toBe(true);
    expect(await hs.prepare(b!)).toBe(true);
    expect(lines().slice(4)).toEqual(['top:b']);
    // A standby that ran b cannot serve c: the swap boots fresh workers, and ends that standby.
    expect(await hs.swap(c!)).toMatchObject({ standby: false });
    expect(lines().slice(5)).toEqual(['top:c', 'onLoad:c']);
    expect(await hs.api.label()).toBe('c');
    // `run: false` compiles only: the module's top level runs at the swap.
    expect(await hs.prepare(a!, { run: false })).toBe(true);
    expect(lines()).toHaveLength(7);
    expect(await hs.swap(a!)).toMatchObject({ standby: true });
    expect(lines().slice(7)).toEqual(['top:a', 'onLoad:a']);
    // An ES module, or a bad option: nothing to prepare.
    expect(await hs.prepare(writePlugin(folder, 'e.mjs', 'export const label = () => "e";'))).toBe(false);
    await expect(hs.prepare(b!, { run: 'yes' } as never)).rejects.toMatchObject({
      code: 'ERR_PLUGIN_INVALID_OPTION',
      option: 'prepareOptions.run',
    });
    await hs.close();
    const plain = await createHotSwap<Adder>(a!, { codeCache: { dir } });
    expect(await plain.prepare(b!)).toBe(false);
    await plain.close();
    await codeCacheIdle(dir);
  });

  it('K12: a module whose top level throws while prepared fails its swap as it would have at the load; the old version serves', async () => {
    const dir = join(tempDir(), 'cache');
    const folder = tempDir();
    const a = writePlugin(folder, 'a.cjs', adderSource('a'));
    const bad = writePlugin(folder, 'bad.cjs', `exports.label = () => 'bad';\nthrow new RangeError('top level');\n`);
    const hs = await createHotSwap<Adder>(a, { standby: true, codeCache: { dir } });
    expect(await hs.prepare(bad)).toBe(true);
    const error = await hs.swap(bad).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'ERR_SWAP_FAILED',
      cause: { code: 'ERR_PLUGIN_LOAD', cause: { name: 'RangeError' } },
    });
    expect(await hs.api.label()).toBe('a');
    await hs.close();
    await codeCacheIdle(dir);
  });

  it("K11: an ES module uses Node's own compile cache in <dir>/node where Node has it (22.1+), and nothing on Node 20", async () => {
    const dir = join(tempDir(), 'cache');
    const esm = writePlugin(
      tempDir(),
      'esm.mjs',
      adderSource('esm', 50).replace(/exports\.(\w+) =/g, 'export const $1 ='),
    );
    expect(await loadOnce(esm, { codeCache: { dir } })).toEqual({ status: 'off', sum: 5, label: 'esm' });
    const hasCompileCache = typeof (nodeModule as { enableCompileCache?: unknown }).enableCompileCache === 'function';
    // Node writes its entries when the worker ends (close() waited for that).
    expect(existsSync(join(dir, 'node'))).toBe(hasCompileCache);
    if (hasCompileCache) expect(readdirSync(join(dir, 'node'), { recursive: true }).length).toBeGreaterThan(0);
  });

  it('K8: bad codeCache options fail with a TypeError/RangeError naming the option', async () => {
    const path = writePlugin(tempDir(), 'adder.cjs', adderSource('opts'));
    const bad: Array<[unknown, string]> = [
      ['yes', 'options.codeCache'],
      [{ maxBytes: -1 }, 'options.codeCache.maxBytes'],
      [{ maxBytes: 1.5 }, 'options.codeCache.maxBytes'],
      [{ dir: '' }, 'options.codeCache.dir'],
      [{ dir: 7 }, 'options.codeCache.dir'],
      [{ folder: 'x' }, 'options.codeCache'],
    ];
    for (const [codeCache, option] of bad) {
      const error = await loadPlugin(path, { codeCache: codeCache as never }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_PLUGIN_INVALID_OPTION' });
      expect(error instanceof TypeError || error instanceof RangeError).toBe(true);
      expect((error as { option: string }).option).toContain(option);
    }
  });
});

describe('code cache memory', { timeout: 240_000 }, () => {
  it('K9: 150 loads served from the cache leave the host heap flat (growth ≤ 2 MB)', async () => {
    const dir = join(tempDir(), 'cache');
    const path = writePlugin(tempDir(), 'adder.cjs', adderSource('mem', 2_000));
    await loadOnce(path, { codeCache: { dir } });
    const heap = () => {
      globalThis.gc!();
      globalThis.gc!();
      return process.memoryUsage().heapUsed;
    };
    const samples: number[] = [];
    for (let i = 0; i < 150; i++) {
      const plugin = await loadPlugin<Adder>(path, { codeCache: { dir } });
      expect(plugin.codeCache).toBe('hit');
      await plugin.close();
      if (i % 10 === 9) samples.push(heap());
    }
    await codeCacheIdle(dir);
    const growth = samples.at(-1)! - samples[0]!;
    expect(growth).toBeLessThanOrEqual(2 * 2 ** 20);
  });
});
