// `isoplug build` and buildPlugin(): one content-hashed ESM file per version, loadable by loadPlugin.
// The command-line cases spawn the built CLI (dist/cli.js): run `npm run build` first (`npm test` does).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPlugin, versionLabel } from '../src/index.js';
import { BuildError, buildPlugin, watchPlugin, type BuiltPlugin } from '../src/cli/build.js';
import { caught, tempDir, writePlugin } from './helpers.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

// esbuild keeps its service process (unref'd) for the life of the process, to reuse it; each test stops it
// so that it ends with no child process left.
afterEach(async () => {
  const { stop } = await import('esbuild');
  await stop();
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI to its end. */
function cli(args: string[], cwd?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A running CLI whose output lines can be awaited one pattern at a time. */
function start(args: string[]): { next(pattern: RegExp): Promise<string>; stop(): Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let waiter: { pattern: RegExp; resolve(line: string): void } | undefined;
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const take = (): void => {
    if (!waiter) return;
    const at = lines.findIndex((line) => waiter!.pattern.test(line));
    if (at < 0) return;
    const [line] = lines.splice(0, at + 1).slice(-1);
    const { resolve } = waiter;
    waiter = undefined;
    resolve(line!);
  };
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    take();
  });
  return {
    next: (pattern) =>
      new Promise((resolve, reject) => {
        waiter = { pattern, resolve };
        void exited.then((status) => reject(new Error(`the CLI exited (${status}) before printing ${pattern}`)));
        take();
      }),
    stop: () => {
      child.kill('SIGINT');
      return exited;
    },
  };
}

/** A tiny TypeScript plugin importing a local module, in a fresh folder. */
function tinyPlugin(greeting = 'Hello'): { dir: string; entry: string } {
  const dir = tempDir();
  writePlugin(dir, 'words.ts', `export const greeting: string = ${JSON.stringify(greeting)};\n`);
  const entry = writePlugin(
    dir,
    'tiny.ts',
    `import { greeting } from './words.js';\n` +
      `interface Person { name: string }\n` +
      `export function greet(person: Person): string {\n  return \`\${greeting}, \${person.name}!\`;\n}\n`,
  );
  return { dir, entry };
}

describe('buildPlugin', () => {
  it('bundles a TypeScript plugin into <name>.<hash8>.mjs that loadPlugin runs', async () => {
    const { entry } = tinyPlugin();
    const out = join(tempDir(), 'out');
    const built = await buildPlugin(entry, out);
    expect(basename(built.file)).toMatch(/^tiny\.[0-9a-f]{8}\.mjs$/);
    expect(basename(built.file)).toBe(`tiny.${built.hash}.mjs`);
    expect(built).toMatchObject({ name: 'tiny', written: true });
    expect(built.inputs.map((input) => basename(input)).sort()).toEqual(['tiny.ts', 'words.ts']);
    expect(readdirSync(out)).toEqual([basename(built.file)]);

    const plugin = await loadPlugin<{ greet(person: { name: string }): string }>(built.file);
    try {
      expect(await plugin.api.greet({ name: 'Ada' })).toBe('Hello, Ada!');
      // Named by the plugin, not by the hashed file; labelled by what it runs (the bundle imports nothing local).
      expect(plugin.name).toBe('tiny');
      expect(plugin.version).toBe((await versionLabel(built.file)).hash);
    } finally {
      await plugin.close();
    }
  });

  it('gives the same name to the same content, and a new name to changed content', async () => {
    const first = tinyPlugin('Hello');
    const twin = tinyPlugin('Hello');
    const out = tempDir();
    const a = await buildPlugin(first.entry, out);
    const again = await buildPlugin(first.entry, out);
    const fromTwin = await buildPlugin(twin.entry, out);
    expect(again.file).toBe(a.file);
    expect(again.written).toBe(false);
    expect(fromTwin.file).toBe(a.file);

    writePlugin(first.dir, 'words.ts', `export const greeting: string = 'Bonjour';\n`);
    const changed = await buildPlugin(first.entry, out);
    expect(changed.file).not.toBe(a.file);
    expect(changed.name).toBe('tiny');
    const defined = await buildPlugin(first.entry, out, { define: { __UNUSED__: '"x"' }, name: 'other' });
    expect(basename(defined.file)).toMatch(/^other\.[0-9a-f]{8}\.mjs$/);
    expect(readdirSync(out).sort()).toEqual([basename(a.file), basename(changed.file), basename(defined.file)].sort());
  });

  it('takes a folder: package.json main, else index.ts; named after the package', async () => {
    const withMain = tempDir();
    mkdirSync(join(withMain, 'src'));
    writePlugin(withMain, 'package.json', JSON.stringify({ name: '@acme/greeter', main: 'src/entry.ts' }));
    writePlugin(join(withMain, 'src'), 'entry.ts', `export const hi = (): string => 'main';\n`);
    const fromMain = await buildPlugin(withMain, tempDir());
    expect(basename(fromMain.file)).toMatch(/^greeter\.[0-9a-f]{8}\.mjs$/);

    const withIndex = join(tempDir(), 'indexed');
    mkdirSync(withIndex);
    writePlugin(withIndex, 'index.ts', `export const hi = (): string => 'index';\n`);
    const fromIndex = await buildPlugin(withIndex, tempDir());
    expect(basename(fromIndex.file)).toMatch(/^indexed\.[0-9a-f]{8}\.mjs$/);

    const plugin = await loadPlugin<{ hi(): string }>(fromIndex.file);
    try {
      expect(await plugin.api.hi()).toBe('index');
      // The plugin's own name, not the file's (which carries the hash).
      expect(plugin.name).toBe('indexed');
    } finally {
      await plugin.close();
    }
  });

  it('rejects with a coded BuildError: missing entry, folder without entry, syntax error', async () => {
    const out = tempDir();
    const missing = await caught(buildPlugin(join(tempDir(), 'nope.ts'), out));
    expect(missing).toBeInstanceOf(BuildError);
    expect(missing).toMatchObject({ code: 'ERR_BUILD_ENTRY' });

    expect(await caught(buildPlugin(tempDir(), out))).toMatchObject({ code: 'ERR_BUILD_ENTRY' });

    const broken = writePlugin(tempDir(), 'broken.ts', 'export const = ;\n');
    const failed = await caught(buildPlugin(broken, out));
    expect(failed).toMatchObject({ code: 'ERR_BUILD_FAILED' });
    expect((failed as BuildError).errors[0]).toMatchObject({ file: 'broken.ts', line: 1 });
    expect(readdirSync(out)).toEqual([]);
  });

  it('watchPlugin rebuilds on save, including a save by rename, and closes', async () => {
    const { dir, entry } = tinyPlugin('One');
    const builds: BuiltPlugin[] = [];
    let next: ((built: BuiltPlugin) => void) | undefined;
    const watcher = await watchPlugin(entry, tempDir(), {
      debounceMs: 10,
      onBuild: (built, info) => {
        if (!info.changed) return;
        builds.push(built);
        next?.(built);
      },
    });
    try {
      expect(builds).toHaveLength(1);
      const rebuilt = (): Promise<BuiltPlugin> => new Promise((resolve) => (next = resolve));

      let waiting = rebuilt();
      writePlugin(dir, 'words.ts', `export const greeting: string = 'Two';\n`);
      const second = await waiting;
      expect(second.file).not.toBe(builds[0]!.file);

      // An editor's atomic save: write aside, rename over the original.
      waiting = rebuilt();
      writePlugin(dir, '.words.ts.tmp', `export const greeting: string = 'Three';\n`);
      renameSync(join(dir, '.words.ts.tmp'), join(dir, 'words.ts'));
      const third = await waiting;
      expect(new Set([builds[0]!.file, second.file, third.file]).size).toBe(3);
      expect(watcher.last?.file).toBe(third.file);
    } finally {
      await watcher.close();
    }
  });
});

describe('isoplug CLI', () => {
  it('builds and prints the output path; --json prints name, file, hash, bytes', async () => {
    expect(existsSync(CLI), 'dist/cli.js is missing: run npm run build').toBe(true);
    const { entry } = tinyPlugin();
    const out = tempDir();
    const plain = await cli(['build', entry, out]);
    expect(plain.status).toBe(0);
    const file = plain.stdout.trim();
    expect(basename(file)).toMatch(/^tiny\.[0-9a-f]{8}\.mjs$/);
    expect(existsSync(file)).toBe(true);

    const json = await cli(['build', entry, out, '--json']);
    expect(json.status).toBe(0);
    const report = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(Object.keys(report).sort()).toEqual(['bytes', 'file', 'hash', 'name']);
    expect(report).toMatchObject({ name: 'tiny', file });
    expect(basename(file)).toBe(`tiny.${String(report.hash)}.mjs`);
  });

  it('--watch prints each new file and stops cleanly on Ctrl-C', async () => {
    const { dir, entry } = tinyPlugin('One');
    const run = start(['build', entry, tempDir(), '--watch']);
    try {
      const first = await run.next(/tiny\.[0-9a-f]{8}\.mjs$/);
      const second = run.next(/tiny\.[0-9a-f]{8}\.mjs$/);
      writePlugin(dir, 'words.ts', `export const greeting: string = 'Two';\n`);
      expect(await second).not.toBe(first);
    } finally {
      expect(await run.stop()).toBe(0);
    }
  });

  it('--help works for isoplug and for build', async () => {
    const top = await cli(['--help']);
    expect(top.status).toBe(0);
    expect(top.stdout).toMatch(/^Usage: isoplug/);
    const build = await cli(['build', '--help']);
    expect(build.status).toBe(0);
    expect(build.stdout).toMatch(/^Usage: isoplug build/);
    expect(build.stdout).toContain('--watch');
  });

  it('a bad path exits 1 with one line naming it and the error code', async () => {
    const missing = join(tempDir(), 'no-such-plugin.ts');
    const run = await cli(['build', missing, tempDir()]);
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain(missing);
    expect(run.stderr).toContain('ERR_BUILD_ENTRY');
  });

  it('an out dir that is a file exits 1 naming it', async () => {
    const { entry } = tinyPlugin();
    const notADir = writePlugin(tempDir(), 'file.txt', 'x');
    const run = await cli(['build', entry, notADir]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(notADir);
    expect(run.stderr).toContain('ERR_BUILD_OUT_DIR');
  });

  it('unknown options, missing arguments and unknown commands exit 2 naming the culprit', async () => {
    const { entry } = tinyPlugin();
    const unknown = await cli(['build', entry, tempDir(), '--frobnicate']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toContain('--frobnicate');

    const missing = await cli(['build', entry]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('<outDir>');

    const command = await cli(['frobnicate']);
    expect(command.status).toBe(2);
    expect(command.stderr).toContain('frobnicate');
  });
});
