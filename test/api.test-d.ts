import { describe, expectTypeOf, it } from 'vitest';
import { loadPlugin, type MethodName, type Plugin, type PluginApi } from '../src/index.js';

// Type-level only: vitest checks this file with tsc and never runs it.
type Typed = typeof import('./fixtures/typed.mjs');
type TypedPlugin = Awaited<ReturnType<typeof loadPlugin<Typed>>>;
declare const plugin: TypedPlugin;
declare const untyped: Plugin;

describe('loadPlugin<typeof import(...)> types', () => {
  it('infers a Plugin of the module', () => {
    expectTypeOf<TypedPlugin>().toEqualTypeOf<Plugin<Typed>>();
    expectTypeOf(plugin.api).toEqualTypeOf<PluginApi<Typed>>();
  });

  it('sync functions become async: (a: number, b: number) => Promise<number>', () => {
    expectTypeOf(plugin.api.add).toEqualTypeOf<(a: number, b: number) => Promise<number>>();
    expectTypeOf(plugin.api.greet).toEqualTypeOf<(name: string, options?: { greeting?: string }) => Promise<string>>();
    expectTypeOf(plugin.api.nothing).toEqualTypeOf<() => Promise<void>>();
  });

  it('async functions are not double-wrapped', () => {
    expectTypeOf(plugin.api.addAsync).toEqualTypeOf<(a: number, b: number) => Promise<number>>();
    expectTypeOf(plugin.api.addAsync(1, 2)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(plugin.api.addAsync(1, 2)).not.toEqualTypeOf<Promise<Promise<number>>>();
  });

  it('non-function exports and reserved names are not api keys', () => {
    expectTypeOf<keyof TypedPlugin['api']>().toEqualTypeOf<'add' | 'addAsync' | 'greet' | 'nothing'>();
    expectTypeOf<MethodName<Typed>>().toEqualTypeOf<'add' | 'addAsync' | 'greet' | 'nothing'>();
    expectTypeOf(plugin.api).not.toHaveProperty('notAFunction');
    expectTypeOf(plugin.api).not.toHaveProperty('label');
    expectTypeOf(plugin.api).not.toHaveProperty('onLoad');
    expectTypeOf(plugin.api).not.toHaveProperty('onFree');
    expectTypeOf(plugin.api).not.toHaveProperty('then');
    expectTypeOf(plugin.api).not.toHaveProperty('default');
  });

  it('wrong argument types and unknown methods are errors on api', () => {
    // @ts-expect-error a string is not a number
    void plugin.api.add('1', 2);
    // @ts-expect-error too few arguments
    void plugin.api.add(1);
    // @ts-expect-error not a function export
    void plugin.api.notAFunction;
    // @ts-expect-error a lifecycle hook is not callable
    void plugin.api.onLoad;
    // @ts-expect-error the api is not thenable
    void plugin.api.then;
  });

  it('plugin.call(name, ...args) is typed by name', () => {
    expectTypeOf(plugin.call('add', 1, 2)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(plugin.call('addAsync', 1, 2)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(plugin.call('greet', 'Ada')).toEqualTypeOf<Promise<string>>();
    expectTypeOf(plugin.with({ timeoutMs: 1 }).call('add', 1, 2)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(plugin.with({ timeoutMs: 1 }).api.addAsync).toEqualTypeOf<(a: number, b: number) => Promise<number>>();
  });

  it('plugin.call with wrong argument types or a non-method name is an error', () => {
    // @ts-expect-error a string is not a number
    void plugin.call('add', '1', 2);
    // @ts-expect-error too few arguments
    void plugin.call('add', 1);
    // @ts-expect-error not a function export
    void plugin.call('notAFunction');
    // @ts-expect-error a lifecycle hook is not callable
    void plugin.call('onLoad', { seed: 1 });
    // @ts-expect-error not an export at all
    void plugin.call('missing');
    // @ts-expect-error a string is not a number (through with())
    void plugin.with({}).call('add', '1', 2);
  });

  it('without a type argument, call() accepts any name and any arguments', () => {
    expectTypeOf(untyped.call).toBeCallableWith('anything', 1, 'two');
    expectTypeOf(untyped.call('anything')).toExtend<Promise<unknown>>();
  });
});

describe('a TypeScript plugin and a JavaScript plugin typed by JSDoc', () => {
  type Ts = typeof import('./fixtures/types/ts-plugin.ts');
  type Js = typeof import('./fixtures/types/jsdoc-plugin.mjs');
  type Add = (a: number, b: number) => Promise<number>;
  type Lookup = (id: string) => Promise<{ id: string; found: boolean }>;

  it('a .ts plugin types its api with no setup: typeof import() of the .ts file', () => {
    const ts = {} as Plugin<Ts>;
    expectTypeOf(ts.api.add).toEqualTypeOf<Add>();
    expectTypeOf(ts.api.lookup).toEqualTypeOf<Lookup>();
    expectTypeOf<MethodName<Ts>>().toEqualTypeOf<'add' | 'lookup'>();
    expectTypeOf(loadPlugin<Ts>('./ts-plugin.ts')).resolves.toEqualTypeOf<Plugin<Ts>>();
  });

  it('a .mjs plugin typed by JSDoc (allowJs) gives the same api', () => {
    const js = {} as Plugin<Js>;
    expectTypeOf(js.api.add).toEqualTypeOf<Add>();
    expectTypeOf(js.api.lookup).toEqualTypeOf<Lookup>();
    expectTypeOf<MethodName<Js>>().toEqualTypeOf<'add' | 'lookup'>();
  });
});
