import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeTypeScript } from '../src/typescript.js';
import { tempDir } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const check = fileURLToPath(new URL('./packed/check.mjs', import.meta.url));

interface Seen {
  ts?: { name: string; version: string; out: string };
  folder?: { name: string; version: string; out: string };
  edited?: { name: string; version: string; out: string };
  upgraded?: { name: string; version: string; out: string };
  error?: { code: string; message: string };
}

let tarball: string;
let packDir: string;

beforeAll(() => {
  // Outlives each test (tempDir() folders go after each one).
  packDir = mkdtempSync(join(tmpdir(), 'isoplug-pack-'));
  const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', packDir], { cwd: root, encoding: 'utf8' });
  tarball = join(packDir, out.trim().split('\n').pop()!);
}, 120_000);
afterAll(() => rmSync(packDir, { recursive: true, force: true }));

/** An application folder with the packed isoplug (and its dependency) installed; esbuild beside it when asked. */
function app(withEsbuild: boolean): string {
  const dir = tempDir();
  const modules = join(dir, 'node_modules');
  mkdirSync(join(modules, 'isoplug'), { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', join(modules, 'isoplug'), '--strip-components=1']);
  symlinkSync(join(root, 'node_modules/comlink'), join(modules, 'comlink'), 'dir');
  if (withEsbuild) {
    symlinkSync(join(root, 'node_modules/esbuild'), join(modules, 'esbuild'), 'dir');
    for (const name of readdirSync(join(root, 'node_modules/@esbuild'))) {
      mkdirSync(join(modules, '@esbuild'), { recursive: true });
      symlinkSync(join(root, 'node_modules/@esbuild', name), join(modules, '@esbuild', name), 'dir');
    }
  }
  cpSync(check, join(dir, 'check.mjs'));
  mkdirSync(join(dir, 'plugins'));
  return dir;
}

function run(dir: string): Seen {
  const result = spawnSync(process.execPath, [join(dir, 'check.mjs'), join(dir, 'plugins')], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, ISOPLUG_CACHE_DIR: join(dir, 'cache') },
    timeout: 60_000,
  });
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as Seen;
}

describe('the packed package', () => {
  it('with esbuild beside it: a .ts plugin loads by path, a folder loads, edits and installs change the label', () => {
    const seen = run(app(true));
    expect(seen.error).toBeUndefined();
    expect(seen.ts).toMatchObject({ name: 'plugin', out: '1.0.0:4' });
    expect(seen.folder).toMatchObject({ name: 'folder', out: 'folder' });
    expect(seen.edited?.out).toBe('1.0.0:40');
    expect(seen.edited?.version).not.toBe(seen.ts?.version);
    expect(seen.upgraded?.out).toBe('2.0.0:40');
    expect(seen.upgraded?.version).not.toBe(seen.edited?.version);
  });

  it.runIf(!nativeTypeScript())('without esbuild, on a line without type stripping: ERR_PLUGIN_NO_ESBUILD', () => {
    const seen = run(app(false));
    expect(seen.error).toMatchObject({ code: 'ERR_PLUGIN_NO_ESBUILD' });
    expect(seen.error?.message).toContain('npm install esbuild');
    expect(seen.error?.message).toContain('isoplug build');
  });
});
