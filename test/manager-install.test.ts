import { mkdirSync, writeFileSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PluginManager, type ManagerFs } from '../src/index.js';
import { tempDir } from './helpers.js';

// Compiling TypeScript without type stripping starts esbuild's service process, which esbuild keeps for
// the next build (unref'd); end it so the leak check sees what each test leaves.
afterEach(async () => {
  const { stop } = await import('esbuild');
  await stop();
});

function write(root: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

/** node:fs/promises, recording every path the manager reads or lists. */
function recordingFs(): { fs: ManagerFs; touched: string[] } {
  const touched: string[] = [];
  const fs: ManagerFs = {
    readdir: (path) => (touched.push(path), readdir(path)),
    stat: (path) => (touched.push(path), stat(path)),
    readFile: (path) => (touched.push(path), readFile(path)),
  };
  return { fs, touched };
}

/** A plugin folder with its own install: `dep` (a few hundred files) and npm's install record. */
function installedPlugin(dir: string, version: string): void {
  const files: Record<string, string> = {
    'shop/package.json': JSON.stringify({ name: 'shop', type: 'module', dependencies: { dep: '^1.0.0' } }),
    'shop/package-lock.json': JSON.stringify({ lockfileVersion: 3, packages: { 'node_modules/dep': { version } } }),
    'shop/index.ts': "import { v } from 'dep';\nexport const which = (): string => `shop+${v()}`;\n",
    'shop/node_modules/.package-lock.json': JSON.stringify({ packages: { 'node_modules/dep': { version } } }),
    'shop/node_modules/dep/package.json': JSON.stringify({ name: 'dep', version, type: 'module', exports: './i.js' }),
    'shop/node_modules/dep/i.js': `export const v = () => '${version}';`,
  };
  for (let i = 0; i < 300; i++) files[`shop/node_modules/dep/lib/${i % 10}/f${i}.js`] = `export const x${i} = ${i};`;
  write(dir, files);
}

describe('manager: a plugin folder with its own node_modules', () => {
  it('reads only what decides the installed versions, and reloads when another version is installed', async () => {
    const dir = tempDir();
    installedPlugin(dir, '1.0.0');
    const { fs, touched } = recordingFs();
    await using manager = new PluginManager({ dir, fs });
    await manager.reload();
    expect(await manager.invoke('shop', 'which')).toBe('shop+1.0.0');

    touched.length = 0;
    expect(await manager.reload()).toMatchObject({ unchanged: ['shop'], loaded: [] });
    const inInstall = touched
      .map((path) => relative(dir, path).split(sep).join('/'))
      .filter((path) => path.includes('node_modules'));
    expect([...new Set(inInstall)].sort()).toEqual([
      'shop/node_modules/.package-lock.json',
      'shop/node_modules/dep/package.json',
    ]);

    // Another version installed: only files under node_modules change.
    write(dir, {
      'shop/node_modules/dep/package.json': JSON.stringify({
        name: 'dep',
        version: '1.1.0',
        type: 'module',
        exports: './i.js',
      }),
      'shop/node_modules/dep/i.js': "export const v = () => '1.1.0';",
    });
    expect(await manager.reload()).toMatchObject({ loaded: ['shop'] });
    expect(await manager.invoke('shop', 'which')).toBe('shop+1.1.0');
  });
});
