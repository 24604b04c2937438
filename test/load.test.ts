import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadPlugin, type LoadOptions } from '../src/index.js';
import { fixture, tempDir, writePlugin } from './helpers.js';

// What each fixture exports, as the tests use it.
interface Data {
  loaded(): unknown;
}
interface Counter {
  inc(): number;
}
interface Cjs {
  add(a: number, b: number): number;
  loaded(): unknown;
}
interface Env {
  env(name: string): string | undefined;
  envKeys(): string[];
}
interface Changing {
  which(): string;
  added(): boolean;
}

/** The default version label of a module that imports nothing: 12 hex digits of the SHA-256 of its name, size and bytes. */
function hashOf(path: string): string {
  const bytes = readFileSync(path);
  return createHash('sha256')
    .update(`${basename(path)}\0${bytes.length}\0`)
    .update(bytes)
    .digest('hex')
    .slice(0, 12);
}

describe('loadPlugin: first load', () => {
  it('L1: loads a module and calls it; onLoad receives data', async () => {
    const data = { seed: 7, list: [1, 2], nested: { when: new Date(0) } };
    const plugin = await loadPlugin<Data>(fixture('l-data.mjs'), { data });
    try {
      expect(plugin.state).toBe('ready');
      expect(plugin.methods).toEqual(['loaded']);
      expect(await plugin.api.loaded()).toEqual(data);
      expect(await plugin.call('loaded')).toEqual(data);
    } finally {
      await plugin.close();
    }
  });

  it('onLoad receives undefined when no data is given', async () => {
    const plugin = await loadPlugin<Data>(fixture('l-data.mjs'));
    try {
      expect(await plugin.api.loaded()).toBeUndefined();
    } finally {
      await plugin.close();
    }
  });

  it('version defaults to 12 hex digits of the content hash, name to the file base name, url to the file URL', async () => {
    const path = fixture('l-data.mjs');
    const plugin = await loadPlugin(path);
    try {
      expect(plugin.version).toMatch(/^[0-9a-f]{12}$/);
      expect(plugin.version).toBe(hashOf(path));
      expect(plugin.name).toBe('l-data');
      expect(plugin.url).toBe(pathToFileURL(path).href);
    } finally {
      await plugin.close();
    }
  });

  it('accepts a file: URL, as a URL or a string', async () => {
    const url = pathToFileURL(fixture('l-counter.mjs'));
    const a = await loadPlugin<Counter>(url);
    const b = await loadPlugin<Counter>(url.href);
    try {
      expect(await a.api.inc()).toBe(1);
      expect(await b.api.inc()).toBe(1);
      expect(b.version).toBe(a.version);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('explicit version and name are used as given, and carried by errors', async () => {
    const plugin = await loadPlugin(fixture('l-data.mjs'), { version: 'v2.0.0-rc.1', name: 'greeter' });
    try {
      expect(plugin.version).toBe('v2.0.0-rc.1');
      expect(plugin.name).toBe('greeter');
      await expect(plugin.call('missing')).rejects.toMatchObject({
        code: 'ERR_PLUGIN_NO_METHOD',
        pluginName: 'greeter',
        version: 'v2.0.0-rc.1',
        method: 'missing',
      });
    } finally {
      await plugin.close();
    }
  });

  it('two loads of one path are independent versions: separate state, separate threads', async () => {
    const path = fixture('l-counter.mjs');
    const a = await loadPlugin<Counter>(path);
    const b = await loadPlugin<Counter>(path);
    try {
      expect(a.threadId).not.toBe(b.threadId);
      expect(a.version).toBe(b.version);
      expect(await a.api.inc()).toBe(1);
      expect(await a.api.inc()).toBe(2);
      expect(await a.api.inc()).toBe(3);
      expect(await b.api.inc()).toBe(1);
      // Closing one leaves the other serving.
      await a.close();
      expect(await b.api.inc()).toBe(2);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a changed file gives the new code when loaded again; both versions stay alive', async () => {
    const dir = tempDir();
    const path = writePlugin(dir, 'changing.mjs', 'export function which() { return "first"; }\n');
    const first = await loadPlugin<Changing>(path);
    try {
      writePlugin(
        dir,
        'changing.mjs',
        'export function which() { return "second"; }\nexport function added() { return true; }\n',
      );
      const second = await loadPlugin<Changing>(path);
      try {
        expect(await second.api.which()).toBe('second');
        expect(await second.api.added()).toBe(true);
        expect(await first.api.which()).toBe('first');
        await expect(first.call('added')).rejects.toMatchObject({ code: 'ERR_PLUGIN_NO_METHOD' });
        expect(second.version).not.toBe(first.version);
        expect(second.version).toBe(hashOf(path));
        expect(second.name).toBe(first.name);
      } finally {
        await second.close();
      }
    } finally {
      await first.close();
    }
  });

  it('loads a CommonJS plugin (module.exports), onLoad included', async () => {
    const plugin = await loadPlugin<Cjs>(fixture('l-cjs.cjs'), { data: 'cjs-data' });
    try {
      expect([...plugin.methods].sort()).toEqual(['add', 'loaded']);
      expect(await plugin.api.add(2, 3)).toBe(5);
      expect(await plugin.api.loaded()).toBe('cjs-data');
      expect(plugin.name).toBe('l-cjs');
    } finally {
      await plugin.close();
    }
  });
});

describe('loadPlugin: load failures reject ERR_PLUGIN_LOAD and leave no worker', () => {
  it('L2: missing file: cause code ENOENT', async () => {
    await expect(loadPlugin(fixture('l-does-not-exist.mjs'))).rejects.toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
      cause: { code: 'ERR_PLUGIN_ENTRY', cause: { code: 'ENOENT' } },
    });
  });

  it('L2: relative path without ./ to a missing file: cause code ENOENT', async () => {
    await expect(loadPlugin('l-does-not-exist-either.mjs')).rejects.toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
      cause: { code: 'ERR_PLUGIN_ENTRY', cause: { code: 'ENOENT' } },
    });
  });

  it('L2: a folder without an entry: cause code ERR_PLUGIN_ENTRY', async () => {
    await expect(loadPlugin(tempDir())).rejects.toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
      cause: { code: 'ERR_PLUGIN_ENTRY' },
    });
  });

  it('L2: a data: URL (string or URL) is refused: the cause names the specifier', async () => {
    const source = 'data:text/javascript,export function f() { return 1; }';
    await expect(loadPlugin(source)).rejects.toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
      cause: { code: 'ERR_PLUGIN_INVALID_OPTION', option: 'specifier' },
    });
    await expect(loadPlugin(new URL(source))).rejects.toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
      cause: { code: 'ERR_PLUGIN_INVALID_OPTION', option: 'specifier' },
    });
  });

  it('L3: a syntax error: the cause is a SyntaxError', async () => {
    const error = await loadPlugin(fixture('l-syntax.mjs')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'ERR_PLUGIN_LOAD', name: 'PluginLoadError' });
    expect((error as Error).cause).toBeInstanceOf(SyntaxError);
  });

  it('L3: a throw at import: the cause keeps its message and code', async () => {
    await expect(loadPlugin(fixture('l-throw.mjs'))).rejects.toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
      pluginName: 'l-throw',
      version: hashOf(fixture('l-throw.mjs')),
      cause: { message: 'l-throw failed at import', code: 'E_L_THROW' },
    });
  });

  it('L3: a top-level await that rejects: the cause keeps its class, message and code', async () => {
    const error = await loadPlugin(fixture('l-tla-reject.mjs')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
      cause: { message: 'l-tla-reject rejected', code: 'E_L_TLA' },
    });
    expect((error as Error).cause).toBeInstanceOf(RangeError);
  });

  it('L6: onLoad throws: the cause keeps its message and code', async () => {
    await expect(loadPlugin(fixture('l-onload-throws.mjs'))).rejects.toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
      cause: { message: 'l-onload-throws', code: 'E_L_ONLOAD_THROWS' },
    });
  });

  it('L6: onLoad rejects: the cause keeps its class, message and code', async () => {
    const error = await loadPlugin(fixture('l-onload-rejects.mjs')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
      cause: { message: 'l-onload-rejects', code: 'E_L_ONLOAD_REJECTS' },
    });
    expect((error as Error).cause).toBeInstanceOf(TypeError);
  });

  it('L4: a module that never finishes importing fails at readyTimeoutMs; the cause is ERR_PLUGIN_TIMEOUT', async () => {
    await expect(loadPlugin(fixture('l-hang.mjs'), { readyTimeoutMs: 200 })).rejects.toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
      cause: { code: 'ERR_PLUGIN_TIMEOUT', timeoutMs: 200 },
    });
  });

  it('L5: a module that calls process.exit(0) at import: the cause is ERR_PLUGIN_CRASHED with exit code 0', async () => {
    await expect(loadPlugin(fixture('l-exit.mjs'))).rejects.toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
      cause: { code: 'ERR_PLUGIN_CRASHED', exitCode: 0, state: 'loading' },
    });
  });
});

describe('loadPlugin: options are validated before anything starts', () => {
  const bad: Array<[label: string, options: unknown, option: string]> = [
    ['callTimeoutMs: -1', { callTimeoutMs: -1 }, 'options.callTimeoutMs'],
    ["readyTimeoutMs: 'x'", { readyTimeoutMs: 'x' }, 'options.readyTimeoutMs'],
    ['readyTimeoutMs: Infinity', { readyTimeoutMs: Infinity }, 'options.readyTimeoutMs'],
    ['readyTimeoutMs: NaN', { readyTimeoutMs: Number.NaN }, 'options.readyTimeoutMs'],
    [
      'resourceLimits.maxOldGenerationSizeMb: -1',
      { resourceLimits: { maxOldGenerationSizeMb: -1 } },
      'options.resourceLimits.maxOldGenerationSizeMb',
    ],
    ['resourceLimits.bogus', { resourceLimits: { bogus: 1 } }, 'options.resourceLimits.bogus'],
    ['env: { A: 1 }', { env: { A: 1 } }, 'options.env.A'],
    ['env: a string', { env: 'A=1' }, 'options.env'],
    ['an unknown key', { bogus: true }, 'options.bogus'],
    ["version: ''", { version: '' }, 'options.version'],
    ['name: 42', { name: 42 }, 'options.name'],
    ['execArgv: a string', { execArgv: '--inspect' }, 'options.execArgv'],
    ['options: null', null, 'options'],
  ];

  it.each(bad)(
    '%s rejects ERR_PLUGIN_INVALID_OPTION naming the option (never throws synchronously)',
    async (_label, options, option) => {
      let returned: unknown;
      expect(() => {
        returned = loadPlugin(fixture('l-data.mjs'), options as LoadOptions);
      }).not.toThrow();
      expect(returned).toBeInstanceOf(Promise);
      await expect(returned).rejects.toMatchObject({ code: 'ERR_PLUGIN_INVALID_OPTION', option });
    },
  );

  it('range errors are RangeErrors and type errors are TypeErrors', async () => {
    await expect(loadPlugin(fixture('l-data.mjs'), { callTimeoutMs: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(loadPlugin(fixture('l-data.mjs'), { readyTimeoutMs: 'x' as never })).rejects.toBeInstanceOf(TypeError);
  });

  it('a bad option wins over a missing file (validation comes first)', async () => {
    await expect(loadPlugin(fixture('l-does-not-exist.mjs'), { version: '' })).rejects.toMatchObject({
      code: 'ERR_PLUGIN_INVALID_OPTION',
      option: 'options.version',
    });
  });
});

describe('loadPlugin: env', () => {
  const SECRET = 'ISOPLUG_TEST_HOST_SECRET';

  it('X6: the plugin sees only the env it was given; without the option it sees a copy of the host env', async () => {
    const before = process.env[SECRET];
    process.env[SECRET] = 'host-only';
    try {
      const given = await loadPlugin<Env>(fixture('l-env.mjs'), { env: { X: 'given' } });
      const inherited = await loadPlugin<Env>(fixture('l-env.mjs'));
      try {
        expect(await given.api.env('X')).toBe('given');
        expect(await given.api.env(SECRET)).toBeUndefined();
        expect(await given.api.envKeys()).toEqual(['X']);
        // The control: the same fixture does see host variables when no env is given.
        expect(await inherited.api.env(SECRET)).toBe('host-only');
        expect(await inherited.api.env('X')).toBe(process.env['X']);
      } finally {
        await Promise.all([given.close(), inherited.close()]);
      }
    } finally {
      if (before === undefined) delete process.env[SECRET];
      else process.env[SECRET] = before;
    }
  });
});

describe('idle plugins do not keep the host alive', () => {
  it('a host that loaded a plugin, called it and never closed it exits by itself with code 0', async () => {
    const script = fixture('l-idle-host.mjs');
    const child = spawn(process.execPath, [script, fixture('l-counter.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    // Safety net only: a child that hangs is killed so the test fails instead of hanging.
    const safetyNet = setTimeout(() => child.kill('SIGKILL'), 45_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('close', (c, s) => resolve([c, s])),
    );
    clearTimeout(safetyNet);
    expect({ code, signal, stdout }, `child stderr: ${stderr}`).toEqual({
      code: 0,
      signal: null,
      stdout: 'called:1\n',
    });
  });
});
