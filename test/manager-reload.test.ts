import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagerReloadError, PluginManager } from '../src/index.js';
import { caught, fixture, tempDir, stopEsbuild } from './helpers.js';
import { install } from './manager-helpers.js';

// Inline versions are bundled by esbuild: its service process ends after each test.
afterEach(stopEsbuild);

describe.each(['worker', 'inline'] as const)(
  'PluginManager.reload() asks reloadable() (isolation: %s)',
  (isolation) => {
    it('once per plugin: an answer that would flip cannot take another plugin out of unchanged', async () => {
      const dir = tempDir();
      install(dir, 'r-asked.mjs', 'b.mjs', { V: 'b1', DEPS: '[]', ANSWER: 'true' });
      // false when first asked, true afterwards
      install(dir, 'r-asked.mjs', 'a.mjs', { V: 'a1', DEPS: '["b"]', ANSWER: 'asked > 0' });
      install(dir, 'r-asked.mjs', 'c.mjs', { V: 'c1', DEPS: '[]', ANSWER: 'true' });
      await using manager = new PluginManager({ dir, isolation });
      await manager.reload();
      install(dir, 'r-asked.mjs', 'a.mjs', { V: 'a2', DEPS: '["b"]', ANSWER: 'asked > 0' });
      install(dir, 'r-asked.mjs', 'b.mjs', { V: 'b2', DEPS: '[]', ANSWER: 'true' });
      // a refused its own change, so it pins b: the reload fails, and nothing switches.
      const error = await caught(manager.reload());
      expect(error).toBeInstanceOf(ManagerReloadError);
      expect(error).toMatchObject({ code: 'ERR_MANAGER_RELOAD' });
      expect((error as ManagerReloadError).failures.map((f) => [f.name, (f.error as { code?: string }).code])).toEqual([
        ['a', 'ERR_MANAGER_NOT_RELOADABLE'],
      ]);
      expect(await manager.invoke('a', 'asked')).toBe(1);
      expect(await manager.invoke('a', 'whoami')).toBe('a1');
      expect(await manager.invoke('b', 'whoami')).toBe('b1');
      expect(await manager.invoke('c', 'whoami')).toBe('c1');
    });

    it('once per plugin: a dependent that refuses is reported once, however many dependents join the set', async () => {
      const dir = tempDir();
      install(dir, 'r-asked.mjs', 'b.mjs', { V: 'b1', DEPS: '[]', ANSWER: 'true' });
      install(dir, 'r-asked.mjs', 'a.mjs', { V: 'a1', DEPS: '["b"]', ANSWER: 'false' });
      install(dir, 'r-asked.mjs', 'e.mjs', { V: 'e1', DEPS: '["b"]', ANSWER: 'true' });
      await using manager = new PluginManager({ dir, isolation });
      await manager.reload();
      install(dir, 'r-asked.mjs', 'b.mjs', { V: 'b2', DEPS: '[]', ANSWER: 'true' });
      const error = (await caught(manager.reload())) as ManagerReloadError;
      expect(error.code).toBe('ERR_MANAGER_RELOAD');
      expect(error.failures.map((f) => [f.name, (f.error as { code?: string }).code])).toEqual([
        ['a', 'ERR_MANAGER_NOT_RELOADABLE'],
      ]);
      expect(await manager.invoke('a', 'asked')).toBe(1);
      expect(await manager.invoke('b', 'whoami')).toBe('b1');
    });

    it('a plugin that joins the set for its dependency leaves unchanged, and only it', async () => {
      const dir = tempDir();
      install(dir, 'r-asked.mjs', 'b.mjs', { V: 'b1', DEPS: '[]', ANSWER: 'true' });
      install(dir, 'r-asked.mjs', 'a.mjs', { V: 'a1', DEPS: '["b"]', ANSWER: 'true' });
      install(dir, 'r-asked.mjs', 'c.mjs', { V: 'c1', DEPS: '[]', ANSWER: 'true' });
      await using manager = new PluginManager({ dir, isolation });
      await manager.reload();
      install(dir, 'r-asked.mjs', 'b.mjs', { V: 'b2', DEPS: '[]', ANSWER: 'true' });
      expect(await manager.reload()).toEqual({ unchanged: ['c'], notReloadable: [], loaded: ['a', 'b'], removed: [] });
    });
  },
);

describe('PluginManager events', () => {
  it("a throwing 'reload' listener does not reject a reload that switched; its error surfaces as uncaught", async () => {
    const dir = tempDir();
    install(dir, 'm-basic.mjs', 'p.mjs', { V: 'p1' });
    const { stdout } = await promisify(execFile)(process.execPath, [fixture('r-throwing-listener.mjs'), dir, 'p']);
    expect(JSON.parse(stdout)).toEqual({ reload: { loaded: ['p'] }, served: 'p1', uncaught: ['listener bug'] });
  });
});
