import { afterEach, describe, expect, it, vi } from 'vitest';
import { MessageChannel } from 'node:worker_threads';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Volume, createFsFromVolume } from 'memfs';
import { PluginManager, type ManagerFs } from '../src/index.js';
import { diffScan, scanPlugins } from '../src/manager/scan.js';
import { serveVault, serviceTable } from '../src/manager/vault.js';
import type { WireReply } from '../src/shared/peer-wire.js';
import { caught, fixture, tempDir, stopEsbuild } from './helpers.js';
import { atomicSave, install, until } from './manager-helpers.js';

// Inline versions are bundled by esbuild: its service process ends after each test.
afterEach(stopEsbuild);

function memfs(files: Record<string, string>): ManagerFs {
  return createFsFromVolume(Volume.fromJSON(files)).promises;
}

describe('scan and hash (memfs)', () => {
  const files = {
    '/p/a.mjs': 'export const a = 1;',
    '/p/b.cjs': 'module.exports = {};',
    '/p/README.md': 'not a plugin',
    '/p/.hidden.mjs': 'ignored',
    '/p/c.mjs~': 'backup',
    '/p/folder/index.mjs': 'export const f = 1;',
    '/p/folder/lib/util.js': 'x',
    '/p/pkg/package.json': JSON.stringify({ main: 'src/main.js' }),
    '/p/pkg/src/main.js': 'module.exports = {};',
  };

  it('finds module files by base name and folders by folder name, with their entries', async () => {
    const found = await scanPlugins(memfs(files), '/p');
    expect([...found.keys()].sort()).toEqual(['a', 'b', 'folder', 'pkg']);
    expect(found.get('folder')?.entry).toBe('/p/folder/index.mjs');
    expect(found.get('pkg')?.entry).toBe('/p/pkg/src/main.js');
    expect(found.get('a')?.entry).toBe('/p/a.mjs');
  });

  it('a folder hash covers every file in it: a change deep inside changes only that plugin', async () => {
    const before = await scanPlugins(memfs(files), '/p');
    const after = await scanPlugins(memfs({ ...files, '/p/folder/lib/util.js': 'y', '/p/new.js': '' }), '/p');
    const diff = diffScan(new Map([...before].map(([n, p]) => [n, p.hash])), after);
    expect(diff).toEqual({ unchanged: ['a', 'b', 'pkg'], changed: ['folder'], added: ['new'], removed: [] });
    const gone = { ...files } as Record<string, string>;
    delete gone['/p/a.mjs'];
    expect(
      diffScan(new Map([...before].map(([n, p]) => [n, p.hash])), await scanPlugins(memfs(gone), '/p')).removed,
    ).toEqual(['a']);
  });

  it('same content, same hash; two entries claiming one name, or a folder without entry, fail ERR_MANAGER_SCAN', async () => {
    const one = await scanPlugins(memfs(files), '/p');
    const two = await scanPlugins(memfs(files), '/p');
    expect(one.get('folder')?.hash).toBe(two.get('folder')?.hash);
    await expect(scanPlugins(memfs({ '/p/a.mjs': '', '/p/a.js': '' }), '/p')).rejects.toMatchObject({
      code: 'ERR_MANAGER_SCAN',
      pluginName: 'a',
    });
    await expect(scanPlugins(memfs({ '/p/empty/readme.txt': '' }), '/p')).rejects.toMatchObject({
      code: 'ERR_MANAGER_SCAN',
      pluginName: 'empty',
    });
    await expect(scanPlugins(memfs({}), '/nope')).rejects.toMatchObject({ code: 'ERR_MANAGER_SCAN' });
  });

  it('the manager reads through the injected fs (a missing directory on memfs fails the reload coded)', async () => {
    await using manager = new PluginManager({ dir: '/nope', fs: memfs({ '/p/a.mjs': '' }) });
    await expect(manager.reload()).rejects.toMatchObject({ code: 'ERR_MANAGER_SCAN' });
  });
});

describe('options', () => {
  it.each([
    [{}, 'options.dir'],
    [{ dir: 'x', isolation: 'thread' }, 'options.isolation'],
    [{ dir: 'x', services: { a: 1 } }, 'options.services.a'],
    [{ dir: 'x', load: { callTimeoutMs: -1 } }, 'options.load.callTimeoutMs'],
    [{ dir: 'x', load: { data: 1 } }, 'options.load.data'],
    [{ dir: 'x', drainTimeoutMs: 'soon' }, 'options.drainTimeoutMs'],
    [{ dir: 'x', fs: {} }, 'options.fs'],
    [{ dir: 'x', nope: 1 }, 'options.nope'],
  ])('bad options fail ERR_PLUGIN_INVALID_OPTION naming the option (%o)', (options, option) => {
    let error: unknown;
    try {
      new PluginManager(options as never);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ERR_PLUGIN_INVALID_OPTION', option });
  });
});

describe.each(['worker', 'inline'] as const)('PluginManager (isolation: %s)', (isolation) => {
  it('reload loads new plugins, leaves unchanged ones, and switches changed ones', async () => {
    const dir = tempDir();
    install(dir, 'm-basic.mjs', 'a.mjs', { V: 'a1' });
    install(dir, 'm-basic.mjs', 'b/index.mjs', { V: 'b1' });
    await using manager = new PluginManager({ dir, isolation });
    expect(await manager.reload()).toEqual({ unchanged: [], notReloadable: [], loaded: ['a', 'b'], removed: [] });
    expect(await manager.invoke('a', 'whoami')).toBe('a1');
    expect(await manager.invoke('b', 'whoami')).toBe('b1');
    expect(await manager.reload()).toEqual({ unchanged: ['a', 'b'], notReloadable: [], loaded: [], removed: [] });
    install(dir, 'm-basic.mjs', 'a.mjs', { V: 'a2' });
    expect(await manager.reload()).toEqual({ unchanged: ['b'], notReloadable: [], loaded: ['a'], removed: [] });
    expect(await manager.invoke('a', 'whoami')).toBe('a2');
    rmSync(join(dir, 'b'), { recursive: true });
    expect(await manager.reload()).toMatchObject({ removed: ['b'] });
    await expect(manager.invoke('b', 'whoami')).rejects.toMatchObject({ code: 'ERR_MANAGER_NO_PLUGIN' });
    await expect(manager.invoke('a', 'onInit')).rejects.toMatchObject({ code: 'ERR_PLUGIN_NO_METHOD' });
  });

  it('lifecycle: reloadable → onLoad → vault ready → onInit, then onFree on the old version after the switch', async () => {
    const dir = tempDir();
    const log: string[] = [];
    let reloads = 0;
    install(dir, 'm-life.mjs', 'life.mjs', { V: 'v1', RELOADABLE: 'true' });
    await using manager = new PluginManager({
      dir,
      isolation,
      data: { tag: 't' },
      services: { record: (event: string) => void log.push(event) },
      extension: () => ({ reload: ++reloads }),
    });
    await manager.reload();
    install(dir, 'm-life.mjs', 'life.mjs', { V: 'v2', RELOADABLE: 'true' });
    expect(await manager.reload()).toMatchObject({ loaded: ['life'] });
    expect(log).toEqual([
      'v1:import',
      'v1:onLoad(t)',
      'v1:onInit(function,1)',
      'v1:reloadable',
      'v2:import',
      'v2:onLoad(t)',
      'v2:onInit(function,2)',
      'v1:onFree',
    ]);
    // The data bag is the host's: v2 reads what v1 wrote.
    expect(await manager.invoke('life', 'bag', 'init:v1')).toBe(true);
  });

  it('a plugin whose reloadable() returns false is kept and reported in notReloadable', async () => {
    const dir = tempDir();
    install(dir, 'm-life.mjs', 'life.mjs', { V: 'v1', RELOADABLE: 'false' });
    install(dir, 'm-basic.mjs', 'other.mjs', { V: 'o1' });
    await using manager = new PluginManager({ dir, isolation, services: { record: () => {} } });
    await manager.reload();
    install(dir, 'm-life.mjs', 'life.mjs', { V: 'v2', RELOADABLE: 'true' });
    install(dir, 'm-basic.mjs', 'other.mjs', { V: 'o2' });
    expect(await manager.reload()).toEqual({ unchanged: [], notReloadable: ['life'], loaded: ['other'], removed: [] });
    expect(await manager.invoke('life', 'whoami')).toBe('v1');
    expect(await manager.invoke('other', 'whoami')).toBe('o2');
  });

  it('transactional under load: one failing plugin switches nothing; 0 failed calls on the old set; each failure coded', async () => {
    const dir = tempDir();
    install(dir, 'm-basic.mjs', 'a.mjs', { V: 'a1' });
    install(dir, 'm-basic.mjs', 'b.mjs', { V: 'b1' });
    await using manager = new PluginManager({ dir, isolation });
    await manager.reload();
    let running = true;
    const failed: unknown[] = [];
    let ok = 0;
    const callers = Array.from({ length: 16 }, async (_, i) => {
      while (running) {
        try {
          const v = await manager.invoke(i % 2 ? 'a' : 'b', 'work', 0);
          if (v !== 'a1' && v !== 'b1') failed.push(v);
          ok++;
        } catch (error) {
          failed.push(error);
        }
      }
    });
    install(dir, 'm-basic.mjs', 'a.mjs', { V: 'a2' });
    install(dir, 'm-onload-throws.mjs', 'c.mjs');
    writeFileSync(join(dir, 'd.mjs'), 'export const x = ;');
    const error = await caught(manager.reload());
    expect(error).toMatchObject({ code: 'ERR_MANAGER_RELOAD' });
    const failures = (
      error as { failures: Array<{ name: string; error: { code: string; cause?: { code?: string } } }> }
    ).failures;
    expect(failures.map((f) => [f.name, f.error.code]).sort()).toEqual([
      ['c', 'ERR_PLUGIN_LOAD'],
      ['d', 'ERR_PLUGIN_LOAD'],
    ]);
    expect(failures.find((f) => f.name === 'c')?.error.cause?.code).toBe('E_M_REFUSED');
    expect(await manager.invoke('a', 'whoami')).toBe('a1');
    running = false;
    await Promise.all(callers);
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(0);
    expect(manager.plugins).toEqual(['a', 'b']);
  });

  it('invokeEach runs in dependency order, invokeEachBackward in reverse; plugins without fn are skipped', async () => {
    const dir = tempDir();
    const log: string[] = [];
    install(dir, 'm-dep.mjs', 'zeta.mjs', { V: 'zeta', DEPS: '[]' });
    install(dir, 'm-dep.mjs', 'mid.mjs', { V: 'mid', DEPS: '["zeta"]' });
    install(dir, 'm-dep.mjs', 'alpha.mjs', { V: 'alpha', DEPS: '["mid"]' });
    install(dir, 'm-basic.mjs', 'other.mjs', { V: 'o' });
    await using manager = new PluginManager({ dir, isolation, services: { record: (n: string) => void log.push(n) } });
    await manager.reload();
    expect(await manager.invokeEach('order')).toEqual([
      { name: 'zeta', value: 'zeta' },
      { name: 'mid', value: 'mid' },
      { name: 'alpha', value: 'alpha' },
    ]);
    expect((await manager.invokeEachBackward('order')).map((r) => r.name)).toEqual(['alpha', 'mid', 'zeta']);
    expect(log).toEqual(['zeta', 'mid', 'alpha', 'alpha', 'mid', 'zeta']);
  });

  it('dependencies: ctx.plugins reaches the dependency directly; a dependent reloads with its dependency', async () => {
    const dir = tempDir();
    install(dir, 'm-dep.mjs', 'db.mjs', { V: 'db1', DEPS: '[]' });
    install(dir, 'm-dep.mjs', 'svc.mjs', { V: 'svc', DEPS: '["db"]' });
    install(dir, 'm-basic.mjs', 'other.mjs', { V: 'o' });
    await using manager = new PluginManager({ dir, isolation });
    await manager.reload();
    expect(await manager.invoke('svc', 'peers')).toEqual(['db']);
    expect(await manager.invoke('svc', 'via', 'db', 'k')).toBe('db1:k');
    install(dir, 'm-dep.mjs', 'db.mjs', { V: 'db2', DEPS: '[]' });
    expect(await manager.reload()).toEqual({
      unchanged: ['other'],
      notReloadable: [],
      loaded: ['db', 'svc'],
      removed: [],
    });
    expect(await manager.invoke('svc', 'via', 'db', 'k')).toBe('db2:k');
  });

  it('a dependency cycle or a missing dependency fails the reload coded; nothing switches', async () => {
    const dir = tempDir();
    install(dir, 'm-dep.mjs', 'a.mjs', { V: 'a1', DEPS: '[]' });
    await using manager = new PluginManager({ dir, isolation });
    await manager.reload();
    install(dir, 'm-dep.mjs', 'a.mjs', { V: 'a2', DEPS: '["b"]' });
    install(dir, 'm-dep.mjs', 'b.mjs', { V: 'b', DEPS: '["a"]' });
    const cycle = await caught(manager.reload());
    expect(cycle).toMatchObject({
      code: 'ERR_MANAGER_RELOAD',
      failures: [{ error: { code: 'ERR_MANAGER_DEPENDENCY_CYCLE' } }],
    });
    install(dir, 'm-dep.mjs', 'b.mjs', { V: 'b', DEPS: '["nowhere"]' });
    const missing = await caught(manager.reload());
    expect(missing).toMatchObject({
      code: 'ERR_MANAGER_RELOAD',
      failures: [{ name: 'b', error: { code: 'ERR_MANAGER_DEPENDENCY', dependency: 'nowhere' } }],
    });
    expect(await manager.invoke('a', 'get', 'k')).toBe('a1:k');
    expect(manager.plugins).toEqual(['a']);
  });

  it('live job: scheduled on v1, fired after a reload, runs v2; uncloneable data fails at schedule time; close rejects pending jobs', async () => {
    const dir = tempDir();
    install(dir, 'm-basic.mjs', 'p.mjs', { V: 'v1' });
    const manager = new PluginManager({ dir, isolation });
    await manager.reload();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const data = { n: 1 };
      const job = manager.schedule(60_000, 'p', 'live_echo', data);
      data.n = 2; // the job holds a copy
      install(dir, 'm-basic.mjs', 'p.mjs', { V: 'v2' });
      await manager.reload();
      vi.advanceTimersByTime(60_000);
      expect(await job).toEqual({ v: 'v2', data: { n: 1 } });
      await expect(manager.schedule(0, 'p', 'live_echo', { f: () => {} })).rejects.toMatchObject({
        code: 'ERR_MANAGER_JOB_CLONE',
      });
      await expect(manager.schedule(0, 'p', 'whoami' as 'live_x')).rejects.toMatchObject({
        code: 'ERR_PLUGIN_INVALID_OPTION',
        option: 'fn',
      });
      const pending = caught(manager.schedule(new Date(Date.now() + 60_000), 'p', 'live_echo', 1));
      await manager.close();
      expect(await pending).toMatchObject({ code: 'ERR_MANAGER_CLOSED' });
      await expect(manager.invoke('p', 'whoami')).rejects.toMatchObject({ code: 'ERR_MANAGER_CLOSED' });
      await expect(manager.reload()).rejects.toMatchObject({ code: 'ERR_MANAGER_CLOSED' });
    } finally {
      vi.useRealTimers();
      await manager.close();
    }
  });

  it('watch: a save reloads; a broken save is a reloadError event and the old version keeps serving; an atomic rename-save reloads', async () => {
    const dir = tempDir();
    install(dir, 'm-basic.mjs', 'a.mjs', { V: 'v1' });
    await using manager = new PluginManager({ dir, isolation, watchDebounceMs: 20 });
    await manager.reload();
    manager.watch();
    let reloaded = until<{ loaded: string[] }>(manager, 'reload', (r) => r.loaded.includes('a'));
    install(dir, 'm-basic.mjs', 'a.mjs', { V: 'v2' });
    await reloaded;
    expect(await manager.invoke('a', 'whoami')).toBe('v2');
    const broken = until<{ code: string }>(manager, 'reloadError');
    writeFileSync(join(dir, 'a.mjs'), 'export const = ;');
    expect(await broken).toMatchObject({
      code: 'ERR_MANAGER_RELOAD',
      failures: [{ name: 'a', error: { code: 'ERR_PLUGIN_LOAD' } }],
    });
    expect(await manager.invoke('a', 'whoami')).toBe('v2');
    reloaded = until<{ loaded: string[] }>(manager, 'reload', (r) => r.loaded.includes('a'));
    atomicSave(dir, 'a.mjs', readFileSync(fixture('m-basic.mjs'), 'utf8').replaceAll('__V__', 'v3'));
    await reloaded;
    expect(await manager.invoke('a', 'whoami')).toBe('v3');
  });
});

describe('PluginManager (worker only)', () => {
  it('vault services facade: own listed functions only, null prototype; a plugin cannot reach or pollute the host', async () => {
    const dir = tempDir();
    install(dir, 'm-hostile.mjs', 'h.mjs');
    class Services {
      hidden() {
        return 'prototype member';
      }
    }
    const services = Object.assign(new Services(), { fn: (x: number) => x * 21 });
    await using manager = new PluginManager({ dir, services: services as unknown as Record<string, () => unknown> });
    await manager.reload();
    expect(await manager.invoke('h', 'probe')).toEqual({
      constructor: 'undefined',
      proto: true,
      prototypeOf: true,
      keys: ['fn'],
      frozen: true,
      localPolluted: 'yes',
      fn: 42,
    });
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('vault host side refuses crafted requests: unlisted names, prototype names, unknown ops; data bag keys cannot pollute', async () => {
    const { port1, port2 } = new MessageChannel();
    const data = new Map<string, unknown>();
    serveVault(port1, serviceTable({ fn: () => 1 }), data, 'x');
    const replies = new Map<number, WireReply>();
    const ask = (id: number, op: string, name: unknown, a: unknown[] = []) =>
      new Promise<WireReply>((resolve) => {
        const on = (reply: WireReply) => {
          if (reply.id !== id) return;
          port2.off('message', on);
          replies.set(id, reply);
          resolve(reply);
        };
        port2.on('message', on);
        port2.postMessage({ id, op, name, a });
      });
    try {
      for (const [id, name] of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'hidden'].entries()) {
        expect(await ask(id, 'call', name)).toMatchObject({ ok: false, e: { code: 'ERR_MANAGER_VAULT_DENIED' } });
      }
      expect(await ask(10, 'eval', 'fn')).toMatchObject({ ok: false, e: { code: 'ERR_MANAGER_VAULT_DENIED' } });
      expect(await ask(11, 'call', { toString: 1 })).toMatchObject({ ok: false });
      expect(await ask(12, 'set', '__proto__', [{ polluted: 1 }])).toMatchObject({ ok: true });
      expect(await ask(13, 'get', '__proto__')).toMatchObject({ ok: true, v: { polluted: 1 } });
      expect(await ask(14, 'call', 'fn')).toMatchObject({ ok: true, v: 1 });
      expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    } finally {
      port1.close();
      port2.close();
    }
  });

  it("a dependency's worker dies: the dependent's pending peer call rejects ERR_MANAGER_PEER_CLOSED", async () => {
    const dir = tempDir();
    install(dir, 'm-dep.mjs', 'db.mjs', { V: 'db1', DEPS: '[]' });
    install(dir, 'm-dep.mjs', 'svc.mjs', { V: 'svc', DEPS: '["db"]' });
    await using manager = new PluginManager({ dir });
    await manager.reload();
    const pending = manager.invoke('svc', 'viaHang', 'db');
    await expect(manager.invoke('db', 'die')).rejects.toMatchObject({ code: 'ERR_PLUGIN_CRASHED' });
    expect(await pending).toEqual({ code: 'ERR_MANAGER_PEER_CLOSED' });
  });
});
