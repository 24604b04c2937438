/**
 * Errors keep their data across the thread boundary: a plugin's thrown error arrives with its class
 * (built-ins), its own enumerable data (nested objects and arrays), an AggregateError's errors, its cause
 * chain, and `droppedProperties` naming what could not cross.
 */
import { describe, expect, it } from 'vitest';
import { loadPlugin, PluginNonErrorThrownError, proxy, type Plugin } from '../src/index.js';
import { LIMITS } from '../src/shared/clone-data.js';
import { pack, unpack } from '../src/shared/envelope.js';
import { caught, fixture } from './helpers.js';

type Data = Record<
  'zodLike' | 'prettierLike' | 'aggregate' | 'causeChain' | 'uncrossable' | 'huge' | 'plainObject',
  () => Promise<never>
> & { callbackError(cb: () => never): Promise<unknown> };

async function withData(body: (plugin: Plugin<Data>) => Promise<void>): Promise<void> {
  const plugin = await loadPlugin<Data>(fixture('e-data.mjs'));
  try {
    await body(plugin);
  } finally {
    await plugin.close();
  }
}

type Rebuilt = Error & Record<string, unknown> & { droppedProperties?: { path: string; reason: string }[] };

describe('errors keep their data across the boundary', () => {
  it('a zod-like error keeps its `issues` array of objects, nested paths included', async () => {
    await withData(async (plugin) => {
      const error = (await caught(plugin.api.zodLike())) as Rebuilt;
      expect(error.name).toBe('ZodError');
      expect(error.issues).toEqual([
        {
          code: 'invalid_type',
          expected: 'string',
          received: 'number',
          path: ['user', 'name'],
          message: 'Expected string',
        },
        { code: 'too_small', minimum: 1, type: 'array', inclusive: true, path: ['tags'], message: 'Too few' },
      ]);
      expect(error.droppedProperties).toBeUndefined();
    });
  });

  it('a prettier-like SyntaxError stays a SyntaxError with its `loc` and code frame', async () => {
    await withData(async (plugin) => {
      const error = (await caught(plugin.api.prettierLike())) as Rebuilt;
      expect(error).toBeInstanceOf(SyntaxError);
      expect(error.loc).toEqual({ start: { line: 1, column: 7 }, end: { line: 1, column: 8 } });
      expect(error.codeFrame).toContain('^');
    });
  });

  it('an AggregateError of mixed errors arrives as an AggregateError with each error rebuilt', async () => {
    await withData(async (plugin) => {
      const error = (await caught(plugin.api.aggregate())) as AggregateError;
      expect(error).toBeInstanceOf(AggregateError);
      expect(error.message).toBe('several failed');
      expect((error.cause as Error).message).toBe('root');
      const [type, coded, text, nested] = error.errors as [TypeError, Rebuilt, string, AggregateError];
      expect(type).toBeInstanceOf(TypeError);
      expect(type.message).toBe('bad type');
      expect(coded).toMatchObject({ name: 'HttpError', code: 'E_UPSTREAM', status: 503 });
      expect(text).toBe('a string');
      expect(nested).toBeInstanceOf(AggregateError);
      expect(nested.errors[0]).toBeInstanceOf(RangeError);
    });
  });

  it('a cause chain keeps every level, its class and its data', async () => {
    await withData(async (plugin) => {
      const error = (await caught(plugin.api.causeChain())) as Rebuilt;
      expect(error).toBeInstanceOf(TypeError);
      const middle = error.cause as Rebuilt;
      expect(middle.query).toEqual({ text: 'select 1', values: [1] });
      const root = middle.cause as Rebuilt;
      expect(root).toMatchObject({ code: 'ECONNREFUSED', address: { port: 5432 } });
    });
  });

  it('what cannot cross is named in `droppedProperties`, and everything else arrives', async () => {
    await withData(async (plugin) => {
      const error = (await caught(plugin.api.uncrossable())) as Rebuilt;
      expect(error.meta).toEqual({ id: 7 });
      expect(error.list).toEqual([1, undefined, 3]);
      expect(error.when).toEqual(new Date(0));
      expect(error.original).toBeInstanceOf(RangeError);
      expect((error.original as Error).message).toBe('kept as an error');
      expect(error).not.toHaveProperty('retry');
      expect(error).not.toHaveProperty('cache');
      expect(new Set(error.droppedProperties)).toEqual(
        new Set([
          { path: 'meta.format', reason: 'function' },
          { path: 'meta.tag', reason: 'symbol' },
          { path: 'meta[Symbol(k)]', reason: 'symbol-key' },
          { path: 'meta.self', reason: 'circular' },
          { path: 'retry', reason: 'function' },
          { path: 'cache', reason: 'uncloneable' },
          { path: 'list[1]', reason: 'function' },
        ]),
      );
    });
  });

  it('data past the envelope bounds is cut, and the cut is named', async () => {
    await withData(async (plugin) => {
      const error = (await caught(plugin.api.huge())) as Rebuilt;
      expect(error.small).toBe('kept');
      const rows = error.rows as unknown[];
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.length).toBeLessThan(10_000);
      expect(error.droppedProperties).toContainEqual({ path: `rows[${rows.length}..9999]`, reason: 'too-large' });
      expect(error.droppedProperties!.length).toBeLessThanOrEqual(LIMITS.dropped);
    });
  });

  it('a thrown plain object keeps its data as `value`, its method named as dropped', async () => {
    await withData(async (plugin) => {
      const error = await caught(plugin.api.plainObject());
      expect(error).toBeInstanceOf(PluginNonErrorThrownError);
      expect(error).toMatchObject({
        code: 'ERR_PLUGIN_NON_ERROR_THROWN',
        value: { status: 400, detail: { field: 'email' } },
        droppedProperties: [{ path: 'toJSON', reason: 'function' }],
      });
    });
  });
});

describe('errors thrown by a host callback', () => {
  it('reach the plugin with their class, code, data and cause, and what could not cross named', async () => {
    await withData(async (plugin) => {
      const hostError = Object.assign(new RangeError('out of range', { cause: new Error('why') }), {
        code: 'E_HOST',
        loc: { line: 3 },
        format: () => '',
      });
      const seen = await plugin.api.callbackError(
        proxy(() => {
          throw hostError;
        }),
      );
      expect(seen).toEqual({
        isRangeError: true,
        name: 'RangeError',
        code: 'E_HOST',
        loc: { line: 3 },
        cause: 'why',
        dropped: [{ path: 'format', reason: 'function' }],
      });
    });
  });
});

describe('the envelope itself', () => {
  const roundTrip = (thrown: unknown) => unpack(structuredClone(pack(thrown)), () => new Error('value'));

  it('a hostile error (throwing getters on its data, a proxy as a property) packs without throwing', () => {
    const error = new Error('hostile') as Error & Record<string, unknown>;
    Object.defineProperty(error, 'bad', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
    const trap = () => {
      throw new Error('trap');
    };
    error.proxy = new Proxy({}, { ownKeys: trap, getPrototypeOf: trap, get: trap });
    error.fine = { a: [1, 2] };
    const rebuilt = roundTrip(error) as Rebuilt;
    expect(rebuilt.fine).toEqual({ a: [1, 2] });
    expect(rebuilt.droppedProperties).toEqual([
      { path: 'bad', reason: 'unreadable' },
      { path: 'proxy', reason: 'unreadable' },
    ]);
  });

  it('a Map and a Set of data survive; keys that are not identifiers get bracketed paths', () => {
    const error = Object.assign(new Error('m'), {
      byId: new Map([['a', { n: 1 }]]),
      seen: new Set([1, 2]),
      'odd key': { f() {} },
    });
    const rebuilt = roundTrip(error) as Rebuilt;
    expect(rebuilt.byId).toEqual(new Map([['a', { n: 1 }]]));
    expect(rebuilt.seen).toEqual(new Set([1, 2]));
    expect(rebuilt.droppedProperties).toEqual([{ path: '["odd key"].f', reason: 'function' }]);
  });

  it('an AggregateError with more errors than the envelope carries names the rest', () => {
    const many = new AggregateError(
      Array.from({ length: 150 }, (_, i) => new Error(String(i))),
      'many',
    );
    const rebuilt = roundTrip(many) as AggregateError & Rebuilt;
    expect(rebuilt.errors).toHaveLength(100);
    expect(rebuilt.droppedProperties).toEqual([{ path: 'errors[100..149]', reason: 'too-large' }]);
  });
});
