import { describe, expect, it } from 'vitest';
import { HotSwap, loadPlugin, Plugin } from '../src/index.js';
import { fixture } from './helpers.js';

type Constructor = new (...args: unknown[]) => unknown;

describe('public classes are made by their factories', () => {
  it('new Plugin() throws a TypeError: loadPlugin() is the way', () => {
    expect(() => new (Plugin as unknown as Constructor)()).toThrow(TypeError);
  });

  it('new HotSwap() throws a TypeError, and leaves the version it was given untouched', async () => {
    await using plugin = await loadPlugin(fixture('echo.mjs'));
    expect(() => new (HotSwap as unknown as Constructor)(plugin, fixture('echo.mjs'), {})).toThrow(TypeError);
    expect(plugin.state).toBe('ready');
    expect(plugin.listenerCount('crash')).toBe(0);
  });
});
