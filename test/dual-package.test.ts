import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import * as source from '../src/index.js';
import { fixture } from './helpers.js';

// An application can end up with both builds of the package in one process (one dependency imports it,
// another requires it). Errors from either copy must pass `instanceof` against the other's classes.
const built = {
  esm: '../dist/index.js',
  cjs: '../dist/index.cjs',
  fleetEsm: '../dist/fleet.js',
  fleetCjs: '../dist/fleet.cjs',
};
const esm = (await import(built.esm)) as typeof source;
const cjs = createRequire(import.meta.url)(built.cjs) as typeof source;
const copies = { esm, cjs, source };

describe('error classes across copies of the package (ESM and CJS builds)', () => {
  it.each([
    ['cjs', 'esm'],
    ['esm', 'cjs'],
    ['source', 'cjs'],
  ] as const)('an error made by the %s copy is an instance of the %s copy’s class and of its bases', (from, to) => {
    const made = copies[from];
    const checked = copies[to];
    expect(made.PluginClosedError).not.toBe(checked.PluginClosedError);
    const closed = new made.PluginClosedError('closed', { pluginName: 'p' });
    expect(closed).toBeInstanceOf(checked.PluginClosedError);
    expect(closed).toBeInstanceOf(checked.PluginError);
    expect(closed).toBeInstanceOf(Error);
    expect(closed).not.toBeInstanceOf(checked.PluginTimeoutError);
    const oom = new made.PluginOutOfMemoryError('oom', {});
    expect(oom).toBeInstanceOf(checked.PluginOutOfMemoryError);
    expect(oom).toBeInstanceOf(checked.PluginCrashedError);
    expect(new made.PluginCrashedError('crash', {})).not.toBeInstanceOf(checked.PluginOutOfMemoryError);
    const option = new made.PluginOptionTypeError('options.x', 'bad');
    expect(option).toBeInstanceOf(checked.PluginOptionTypeError);
    expect(option).toBeInstanceOf(TypeError);
    expect(option).not.toBeInstanceOf(checked.PluginOptionRangeError);
    expect(new made.PluginOptionRangeError('options.x', 'bad')).toBeInstanceOf(checked.PluginOptionRangeError);
  });

  it('values that are not errors of the package are not instances', () => {
    for (const { PluginError, PluginClosedError, PluginOptionTypeError } of [esm, cjs]) {
      for (const value of [new Error('x'), new TypeError('x'), { code: 'ERR_PLUGIN_CLOSED' }, null, undefined, 1]) {
        expect(value instanceof PluginError).toBe(false);
        expect(value instanceof PluginClosedError).toBe(false);
        expect(value instanceof PluginOptionTypeError).toBe(false);
      }
    }
  });

  it('a subclass defined by an application keeps ordinary instanceof', () => {
    class AppError extends esm.PluginClosedError {}
    expect(new AppError('x')).toBeInstanceOf(AppError);
    expect(new AppError('x')).toBeInstanceOf(cjs.PluginClosedError);
    expect(new esm.PluginClosedError('x')).not.toBeInstanceOf(AppError);
  });

  it('a call refused by a version loaded through the CJS build rejects with an instance of the ESM class', async () => {
    await using plugin = await cjs.loadPlugin(fixture('echo.mjs'));
    const error = await plugin.call('missing' as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(esm.PluginNoMethodError);
    expect(error).toBeInstanceOf(esm.PluginError);
    expect(error).toMatchObject({ code: 'ERR_PLUGIN_NO_METHOD' });
  });

  it('fleet errors made by one build of isoplug/fleet are instances of the other build’s classes', async () => {
    type Fleet = Pick<
      typeof import('../src/fleet/index.js'),
      'FleetError' | 'FleetConflictError' | 'FleetUnavailableError'
    >;
    const fleetEsm = (await import(built.fleetEsm)) as Fleet;
    const fleetCjs = createRequire(import.meta.url)(built.fleetCjs) as Fleet;
    for (const [made, checked] of [
      [fleetEsm, fleetCjs],
      [fleetCjs, fleetEsm],
    ] as const) {
      expect(made.FleetConflictError).not.toBe(checked.FleetConflictError);
      const conflict = new made.FleetConflictError('conflict', { pluginName: 'p', revision: 3 });
      expect(conflict).toBeInstanceOf(checked.FleetConflictError);
      expect(conflict).toBeInstanceOf(checked.FleetError);
      expect(conflict).not.toBeInstanceOf(checked.FleetUnavailableError);
      expect({ code: 'ERR_FLEET_CONFLICT' }).not.toBeInstanceOf(checked.FleetError);
    }
  });
});
