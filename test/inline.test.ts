// Inline versions from a bundle: a closed version's memory comes back, relative imports belong to the
// version, stack traces point at the sources, and timers a version leaves behind end at close and are
// reported.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PluginManager, type VersionClosed } from '../src/index.js';
import { tempDir, stopEsbuild } from './helpers.js';

// Inline versions are bundled by esbuild: its service process ends after each test.
afterEach(stopEsbuild);

/** Host heap after a full collection, in bytes. Needs --expose-gc (set in vitest.config.ts). */
function heapAfterGc(): number {
  globalThis.gc!();
  globalThis.gc!();
  return process.memoryUsage().heapUsed;
}

/** A plugin folder `p`: an entry and a relative module holding state. */
function writeVersion(dir: string, v: string, leaky = false): void {
  mkdirSync(join(dir, 'p'), { recursive: true });
  writeFileSync(
    join(dir, 'p', 'lib.mjs'),
    [
      `export const LIB = '${v}';`,
      'let hits = 0;',
      'export function hit() {',
      '  return ++hits;',
      '}',
      'export function boom() {',
      "  throw new Error('boom');",
      '}',
      // One interval at import, one timeout at each call; an immediate its own code clears is no leftover.
      ...(leaky
        ? [
            'setInterval(() => {}, 60_000);',
            'export function later() {',
            '  setTimeout(() => {}, 60_000);',
            '  clearImmediate(setImmediate(() => {}));',
            '}',
          ]
        : []),
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'p', 'index.mjs'),
    [
      "import { LIB, hit, boom } from './lib.mjs';",
      `export const whoami = () => ['${v}', LIB];`,
      'export const count = () => hit();',
      'export function fail() {',
      '  boom();',
      '}',
      ...(leaky ? ["export { later } from './lib.mjs';"] : []),
    ].join('\n'),
  );
}

describe("isolation: 'inline'", () => {
  it('relative imports belong to the version: new code, fresh module state', async () => {
    const dir = tempDir();
    writeVersion(dir, 'v1');
    await using manager = new PluginManager({ dir, isolation: 'inline' });
    await manager.reload();
    expect(await manager.invoke('p', 'whoami')).toEqual(['v1', 'v1']);
    expect(await manager.invoke('p', 'count')).toBe(1);
    expect(await manager.invoke('p', 'count')).toBe(2);
    writeVersion(dir, 'v2');
    expect(await manager.reload()).toMatchObject({ loaded: ['p'] });
    expect(await manager.invoke('p', 'whoami')).toEqual(['v2', 'v2']);
    expect(await manager.invoke('p', 'count')).toBe(1);
  });

  it('bare packages are bundled into each version, unless listed in inline.external (then shared)', async () => {
    const root = tempDir();
    const pkg = join(root, 'node_modules', 'counter');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({ name: 'counter', type: 'module', exports: './index.js' }),
    );
    writeFileSync(join(pkg, 'index.js'), 'let n = 0;\nexport const next = () => ++n;\n');
    const dir = join(root, 'plugins');
    mkdirSync(dir);
    const write = (v: string) =>
      writeFileSync(
        join(dir, 'c.mjs'),
        `import { next } from 'counter';\nexport const count = () => ['${v}', next()];\n`,
      );
    for (const [external, third] of [
      [[], 1],
      [['counter'], 3],
    ] as const) {
      write('v1');
      await using manager = new PluginManager({ dir, isolation: 'inline', inline: { external: [...external] } });
      await manager.reload();
      expect(await manager.invoke('c', 'count')).toEqual(['v1', 1]);
      expect(await manager.invoke('c', 'count')).toEqual(['v1', 2]);
      write('v2');
      await manager.reload();
      expect(await manager.invoke('c', 'count')).toEqual(['v2', third]);
    }
    expect(() => new PluginManager({ dir, inline: { external: 'counter' } as never })).toThrow(
      expect.objectContaining({ code: 'ERR_PLUGIN_INVALID_OPTION', option: 'options.inline.external' }),
    );
  });

  it('stack traces point at the source files and lines (source maps on)', async () => {
    const dir = tempDir();
    writeVersion(dir, 'v1');
    const wasOn = process.sourceMapsEnabled;
    process.setSourceMapsEnabled(true);
    const prepare = Error.prepareStackTrace;
    // Node maps stacks only through its own prepareStackTrace; the test runner may have set another.
    Reflect.deleteProperty(Error, 'prepareStackTrace');
    try {
      await using manager = new PluginManager({ dir, isolation: 'inline' });
      await manager.reload();
      const error = (await manager.invoke('p', 'fail').catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(Error);
      expect(error.stack).toContain(`${join(dir, 'p', 'lib.mjs')}:7:9`);
      expect(error.stack).toContain(`${join(dir, 'p', 'index.mjs')}:5:3`);
    } finally {
      if (prepare !== undefined) Error.prepareStackTrace = prepare;
      process.setSourceMapsEnabled(wasOn);
    }
  });

  it('ends the timers a closed version left pending, and reports them', async () => {
    const dir = tempDir();
    writeVersion(dir, 'v1', true);
    const closed: VersionClosed[] = [];
    await using manager = new PluginManager({ dir, isolation: 'inline' });
    manager.on('versionClosed', (report) => closed.push(report));
    await manager.reload();
    await manager.invoke('p', 'later');
    await manager.invoke('p', 'later');
    writeVersion(dir, 'v2');
    await manager.reload();
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ name: 'p', how: 'closed', report: undefined });
    expect(closed[0]!.leftovers).toEqual({ timers: 3, immediates: 0, handles: {} });
    // A version that left nothing reports nothing.
    await manager.close();
    expect(closed).toHaveLength(2);
    expect(closed[1]!.leftovers).toEqual({ timers: 0, immediates: 0, handles: {} });
  });

  it('a closed version is garbage: the heap stays bounded over many reloads of a large plugin', async () => {
    const dir = tempDir();
    // ~250 KB of code per version: 5000 small functions.
    const bulk = Array.from({ length: 5000 }, (_, i) => `export function f${i}(x) { return x * ${i} + '${i}'; }`);
    const write = (v: number) => {
      mkdirSync(join(dir, 'big'), { recursive: true });
      writeFileSync(join(dir, 'big', 'bulk.mjs'), `export const V = ${v};\n${bulk.join('\n')}\n`);
      writeFileSync(join(dir, 'big', 'index.mjs'), `export * from './bulk.mjs';\nexport const version = ${v};\n`);
    };
    write(0);
    await using manager = new PluginManager({ dir, isolation: 'inline' });
    await manager.reload();
    const reload = async (v: number) => {
      write(v);
      await manager.reload();
      expect(await manager.invoke('big', 'f7', 1)).toBe('77');
    };
    for (let v = 1; v <= 10; v++) await reload(v);
    const before = heapAfterGc();
    for (let v = 11; v <= 70; v++) await reload(v);
    const growth = heapAfterGc() - before;
    // The cache-busting import this replaces kept every version: ~60 × the plugin's code, far above this.
    expect(growth).toBeLessThan(8 * 1024 * 1024);
    expect(await manager.invoke('big', 'f1', 2)).toBe('21');
  });
});
