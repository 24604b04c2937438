import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Volume, createFsFromVolume } from 'memfs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHotSwap, loadPlugin, PluginManager } from '../src/index.js';
import { resolveEntry, type EntryFs } from '../src/entry.js';
import { versionLabel } from '../src/label.js';
import { nativeTypeScript } from '../src/typescript.js';
import { tempDir } from './helpers.js';

/** Writes files (paths relative to `root`, folders created) and returns `root`. */
function tree(root: string, files: Record<string, string>): string {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** A fake installed package: only its package.json version and one module. */
function fakePackage(root: string, name: string, version: string, body = 'export const v = () => 1;'): void {
  tree(root, {
    [`node_modules/${name}/package.json`]: JSON.stringify({ name, version, type: 'module', exports: './index.js' }),
    [`node_modules/${name}/index.js`]: body,
  });
}

function memfs(files: Record<string, string>): EntryFs {
  return createFsFromVolume(Volume.fromJSON(files)).promises;
}

const TS_PLUGIN = {
  'plugin.ts': [
    "import { twice } from './lib/math.ts';",
    "import { tag } from 'tagger';",
    'export function run(n: number): string {',
    '  return `${tag()}:${twice(n)}`;',
    '}',
  ].join('\n'),
  'lib/math.ts': 'export const twice = (n: number): number => n * 2;\n',
  'package.json': JSON.stringify({ type: 'module' }),
};

// Compiling TypeScript without type stripping starts esbuild's service process, which esbuild keeps for
// the next build (unref'd); end it so the leak check sees what each test leaves.
afterEach(async () => {
  const { stop } = await import('esbuild');
  await stop();
});

let cacheBefore: string | undefined;
beforeEach(() => {
  cacheBefore = process.env['ISOPLUG_CACHE_DIR'];
  process.env['ISOPLUG_CACHE_DIR'] = tempDir();
});
afterEach(() => {
  if (cacheBefore === undefined) delete process.env['ISOPLUG_CACHE_DIR'];
  else process.env['ISOPLUG_CACHE_DIR'] = cacheBefore;
});

describe('TypeScript plugins', () => {
  it('a .ts plugin with a relative .ts import and a package import loads by its path and runs', async () => {
    const dir = tree(tempDir(), TS_PLUGIN);
    fakePackage(dir, 'tagger', '1.0.0', "export const tag = () => 'v1';");
    await using plugin = await loadPlugin<{ run(n: number): string }>(join(dir, 'plugin.ts'));
    expect(await plugin.api.run(21)).toBe('v1:42');
    expect(plugin.name).toBe('plugin');
  });

  it.runIf(!nativeTypeScript())(
    'without type stripping, the compiled module goes to the cache under a content hash, once',
    async () => {
      const dir = tree(tempDir(), TS_PLUGIN);
      fakePackage(dir, 'tagger', '1.0.0', "export const tag = () => 'v1';");
      const cache = process.env['ISOPLUG_CACHE_DIR']!;
      await using a = await loadPlugin(join(dir, 'plugin.ts'));
      await using b = await loadPlugin(join(dir, 'plugin.ts'));
      expect(dirname(fileURLToPath(a.url))).toBe(cache);
      expect(basename(fileURLToPath(a.url))).toMatch(/^plugin\.[0-9a-f]{16}\.mjs$/);
      expect(b.url).toBe(a.url);
      expect(readdirSync(cache)).toEqual([basename(fileURLToPath(a.url))]);
    },
  );

  it.runIf(nativeTypeScript())('with type stripping, the workers import the .ts file itself', async () => {
    const dir = tree(tempDir(), TS_PLUGIN);
    fakePackage(dir, 'tagger', '1.0.0', "export const tag = () => 'v1';");
    await using plugin = await loadPlugin(join(dir, 'plugin.ts'));
    expect(fileURLToPath(plugin.url)).toBe(join(dir, 'plugin.ts'));
  });

  it('.mts and .cts plugins load', async () => {
    const dir = tree(tempDir(), {
      'esm.mts': 'export function kind(): string { return "esm"; }\n',
      'cjs.cts': 'function kind(): string { return "cjs"; }\nmodule.exports = { kind };\n',
    });
    await using esm = await loadPlugin<{ kind(): string }>(join(dir, 'esm.mts'));
    await using cjs = await loadPlugin<{ kind(): string }>(join(dir, 'cjs.cts'));
    expect(await esm.api.kind()).toBe('esm');
    expect(await cjs.api.kind()).toBe('cjs');
  });

  it('a syntax error rejects with a code: ERR_PLUGIN_COMPILE from esbuild, ERR_PLUGIN_LOAD from Node', async () => {
    const dir = tree(tempDir(), { 'broken.ts': 'export function f(: number {\n' });
    await expect(loadPlugin(join(dir, 'broken.ts'))).rejects.toMatchObject({
      code: nativeTypeScript() ? 'ERR_PLUGIN_LOAD' : 'ERR_PLUGIN_COMPILE',
      pluginName: 'broken',
    });
  });

  it('a hot swap moves from one TypeScript version to the next', async () => {
    const dir = tree(tempDir(), TS_PLUGIN);
    fakePackage(dir, 'tagger', '1.0.0', "export const tag = () => 'v1';");
    const hs = await createHotSwap<{ run(n: number): string }>(join(dir, 'plugin.ts'));
    try {
      expect(await hs.api.run(1)).toBe('v1:2');
      const before = hs.version;
      tree(dir, { 'lib/math.ts': 'export const twice = (n: number): number => n * 20;\n' });
      const report = await hs.swap(join(dir, 'plugin.ts'));
      expect(report.to).not.toBe(report.from);
      expect(hs.version).not.toBe(before);
      expect(await hs.api.run(1)).toBe('v1:20');
    } finally {
      await hs.close();
    }
  });
});

describe.each(['worker', 'inline'] as const)('manager, %s isolation', (isolation) => {
  it('loads a .ts plugin file and a folder whose entry is index.ts', async () => {
    const dir = tree(tempDir(), {
      'calc.ts': 'export const add = (a: number, b: number): number => a + b;\n',
      'shop/index.ts': "import { price } from './price.ts';\nexport const total = (n: number): number => price * n;\n",
      'shop/price.ts': 'export const price: number = 3;\n',
    });
    await using manager = new PluginManager({ dir, isolation });
    expect(await manager.reload()).toMatchObject({ loaded: expect.arrayContaining(['calc', 'shop']) as unknown });
    expect(await manager.invoke('calc', 'add', 2, 3)).toBe(5);
    expect(await manager.invoke('shop', 'total', 2)).toBe(6);
  });
});

describe('folders', () => {
  it('load by package.json exports, main, or an index file, named after the package or the folder', async () => {
    const root = tempDir();
    tree(root, {
      'by-exports/package.json': JSON.stringify({
        name: '@acme/by-exports',
        exports: { '.': { types: './x.d.ts', import: './src/entry.mjs', require: './cjs.cjs' } },
      }),
      'by-exports/src/entry.mjs': 'export const which = () => "exports";',
      'by-main/package.json': JSON.stringify({ main: 'lib/main' }),
      'by-main/lib/main.js': 'module.exports = { which: () => "main" };',
      'by-index/index.ts': 'export const which = (): string => "index";',
    });
    const loaded = await Promise.all(
      ['by-exports', 'by-main', 'by-index'].map((name) => loadPlugin<{ which(): string }>(join(root, name))),
    );
    try {
      expect(await Promise.all(loaded.map((p) => p.api.which()))).toEqual(['exports', 'main', 'index']);
      expect(loaded.map((p) => p.name)).toEqual(['by-exports', 'by-main', 'by-index']);
    } finally {
      await Promise.all(loaded.map((p) => p.close()));
    }
  });

  it('the rule: exports conditions in order, main with extensions, index files in order (memfs)', async () => {
    const fs = memfs({
      '/a/package.json': JSON.stringify({ exports: { node: { import: './n.mjs' }, default: './d.mjs' } }),
      '/a/n.mjs': '',
      '/a/d.mjs': '',
      '/b/package.json': JSON.stringify({ exports: { require: './r.cjs', default: './d.mjs' }, main: './m.js' }),
      '/b/r.cjs': '',
      '/b/d.mjs': '',
      '/c/package.json': JSON.stringify({ main: 'dist' }),
      '/c/dist/index.cjs': '',
      '/d/index.ts': '',
      '/d/index.mjs': '',
      '/e/package.json': JSON.stringify({ exports: './missing.mjs' }),
      '/f/readme.md': '',
      '/g/package.json': '{ not json',
    });
    expect((await resolveEntry('/a', fs)).entry).toBe('/a/n.mjs');
    expect((await resolveEntry('/b', fs)).entry).toBe('/b/d.mjs');
    expect((await resolveEntry('/c', fs)).entry).toBe('/c/dist/index.cjs');
    expect((await resolveEntry('/d', fs)).entry).toBe('/d/index.mjs');
    expect(await resolveEntry('/d/index.ts', fs)).toMatchObject({ entry: '/d/index.ts', folder: false });
    for (const bad of ['/e', '/f', '/g', '/nothing'])
      await expect(resolveEntry(bad, fs)).rejects.toMatchObject({ code: 'ERR_PLUGIN_ENTRY' });
  });
});

describe('default version label', () => {
  function plugin(): string {
    const dir = tree(tempDir(), {
      'entry.mjs': [
        "import { a } from './a.mjs';",
        "export * from './b.mjs';",
        "import 'dep';",
        "const lazy = () => import('./lazy.mjs');",
        "const json = require('./data.json');",
        'export { a, lazy, json };',
      ].join('\n'),
      'a.mjs': "import { deep } from './deep/index.mjs'; export const a = deep;",
      'deep/index.mjs': 'export const deep = 1;',
      'b.mjs': 'export const b = 2;',
      'lazy.mjs': 'export const lazy = 3;',
      'data.json': '{"x":1}',
      'unrelated.mjs': 'export const u = 4;',
    });
    fakePackage(dir, 'dep', '1.0.0');
    return dir;
  }

  it('covers the entry and every local module it reaches, and the installed version of each package', async () => {
    const dir = plugin();
    const label = await versionLabel(join(dir, 'entry.mjs'));
    expect(label.hash).toMatch(/^[0-9a-f]{12}$/);
    expect(label.files.map((f) => f.slice(dir.length + 1)).sort()).toEqual(
      ['a.mjs', 'b.mjs', 'data.json', 'deep/index.mjs', 'entry.mjs', 'lazy.mjs'].sort(),
    );
    expect(label.packages).toEqual(['dep@1.0.0']);
    expect((await versionLabel(join(dir, 'entry.mjs'))).hash).toBe(label.hash);
  });

  it.each([
    ['a deeply imported module', 'deep/index.mjs', 'export const deep = 10;'],
    ['a lazily imported module', 'lazy.mjs', 'export const lazy = 30;'],
    ['a re-exported module', 'b.mjs', 'export const b = 20;'],
    ['a required JSON file', 'data.json', '{"x":2}'],
  ])('editing only %s changes the label', async (_what, file, text) => {
    const dir = plugin();
    const before = await versionLabel(join(dir, 'entry.mjs'));
    tree(dir, { [file]: text });
    expect((await versionLabel(join(dir, 'entry.mjs'))).hash).not.toBe(before.hash);
  });

  it('another installed version of a package changes it; other files of node_modules and unrelated files do not', async () => {
    const dir = plugin();
    const before = (await versionLabel(join(dir, 'entry.mjs'))).hash;
    tree(dir, { 'unrelated.mjs': 'changed', 'node_modules/dep/index.js': 'export const changed = 1;' });
    expect((await versionLabel(join(dir, 'entry.mjs'))).hash).toBe(before);
    fakePackage(dir, 'dep', '1.0.1');
    expect((await versionLabel(join(dir, 'entry.mjs'))).hash).not.toBe(before);
  });

  it('loadPlugin uses it: editing only a relative import gives the next load another label', async () => {
    const dir = tree(tempDir(), {
      'entry.mjs': "export { deep } from './deep/index.mjs';",
      'deep/index.mjs': 'export const deep = () => 1;',
    });
    const first = await loadPlugin(join(dir, 'entry.mjs'));
    try {
      expect(first.version).toBe((await versionLabel(join(dir, 'entry.mjs'))).hash);
    } finally {
      await first.close();
    }
    tree(dir, { 'deep/index.mjs': 'export const deep = () => 2;' });
    await using second = await loadPlugin<{ deep(): number }>(join(dir, 'entry.mjs'));
    expect(second.version).not.toBe(first.version);
    expect(await second.api.deep()).toBe(2);
  });
});
