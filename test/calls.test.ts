import { describe, expect, it } from 'vitest';
import { loadPlugin, proxy, type LoadOptions, type Plugin } from '../src/index.js';
import { caught, fixture } from './helpers.js';

type AnyMethod = (...args: unknown[]) => Promise<unknown>;

// What each fixture exports, as the tests use it.
interface Basic {
  echo(value: unknown): unknown;
  add(a: number, b: number): Promise<number>;
  size(buffer: ArrayBuffer): number;
  fail(): never;
  forever(): Promise<never>;
  notAFunction: number;
}
interface Reserved {
  real(): number;
  count(): { hits: number; loads: number };
}
interface Then {
  count(): number;
}
interface Errors {
  throwType(): never;
  ok(): string;
}
interface Clone {
  count(...args: unknown[]): number;
  deep(depth: number): object;
  ok(): string;
}
interface Callback {
  callBack(fn: (value: unknown) => unknown, value: unknown): Promise<unknown>;
  attack(cb: (value: unknown) => unknown): Promise<{ failed: Record<string, boolean>; after: unknown }>;
}

/**
 * `call` by any name, whatever the plugin's type says: the names these tests use are deliberately not
 * callable methods, or come from a table.
 */
function byName(target: { readonly call: unknown }): (name: string, ...args: unknown[]) => Promise<unknown> {
  const call = target.call as (name: string, ...args: unknown[]) => Promise<unknown>;
  return (name, ...args) =>
    Reflect.apply<unknown, [string, ...unknown[]], Promise<unknown>>(call, target, [name, ...args]);
}

/** What `run` threw (the test fails if it returned). */
function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** `{ a: { a: … {} } }`, `depth` levels deep. */
function deep(depth: number): object {
  let value: object = {};
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

/** Loads a fixture, runs `body`, and closes the version whatever happens. */
async function withPlugin<T>(
  name: string,
  body: (plugin: Plugin<T>) => Promise<void>,
  options?: LoadOptions,
): Promise<void> {
  const plugin = await loadPlugin<T>(fixture(name), options);
  try {
    await body(plugin);
  } finally {
    await plugin.close();
  }
}

describe('calls', () => {
  it('plugin.api.x() and plugin.call("x") call the method, sync or async', async () => {
    await withPlugin<Basic>('c-basic.mjs', async (plugin) => {
      expect(await plugin.api.echo({ deep: [1, 'two', null] })).toEqual({ deep: [1, 'two', null] });
      expect(await plugin.call('echo', 'by name')).toBe('by name');
      expect(await plugin.api.add(2, 3)).toBe(5);
      expect(await plugin.call('add', 20, 22)).toBe(42);
      // The same function each time a method is read.
      expect(plugin.api.echo).toBe(plugin.api.echo);
    });
  });

  it('Object.keys(plugin.api) lists the exported functions only', async () => {
    await withPlugin<Basic>('c-basic.mjs', async (plugin) => {
      const expected = ['add', 'echo', 'fail', 'forever', 'size'];
      expect(Object.keys(plugin.api).sort()).toEqual(expected);
      expect([...plugin.methods].sort()).toEqual(expected);
      expect('echo' in plugin.api).toBe(true);
      expect('notAFunction' in plugin.api).toBe(false);
    });
  });

  it('plugin.api is not thenable: awaiting it resolves to the api itself', async () => {
    await withPlugin<Basic>('c-basic.mjs', async (plugin) => {
      expect('then' in plugin.api).toBe(false);
      expect((plugin.api as Record<string, unknown>)['then']).toBeUndefined();
      // eslint-disable-next-line @typescript-eslint/await-thenable -- what is tested: the api is not thenable
      const awaited: unknown = await plugin.api;
      expect(awaited).toBe(plugin.api);
      const fromAsync = await (async () => plugin.api)();
      expect(fromAsync).toBe(plugin.api);
    });
  });

  it('plugin.stats counts accepted calls and failures', async () => {
    await withPlugin<Basic>('c-basic.mjs', async (plugin) => {
      expect(plugin.stats).toEqual({ calls: 0, inFlight: 0, failures: 0, strayMessages: 0 });
      await plugin.api.echo(1);
      await plugin.call('add', 1, 2);
      await expect(plugin.api.fail()).rejects.toMatchObject({ code: 'E_C_FAIL' });
      // Refused before reaching the worker: not a call, not a failure.
      await expect(byName(plugin)('nope')).rejects.toMatchObject({ code: 'ERR_PLUGIN_NO_METHOD' });
      expect(plugin.stats).toEqual({ calls: 3, inFlight: 0, failures: 1, strayMessages: 0 });
    });
  });
});

describe('X1: reserved and hostile names reject ERR_PLUGIN_NO_METHOD without reaching the worker', () => {
  const names = [
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'valueOf',
    'then',
    '',
    'a.b',
    'a',
    'default',
    'onLoad',
    'onFree',
    'onInit',
    'notAFunction',
    'noSuchMethod',
  ];

  it.each(names)('X1: %j', async (name) => {
    await withPlugin<Reserved>('c-reserved.mjs', async (plugin) => {
      await expect(byName(plugin)(name)).rejects.toMatchObject({ code: 'ERR_PLUGIN_NO_METHOD', method: name });
      if (name !== 'then') {
        const viaApi = (plugin.api as unknown as Record<string, AnyMethod>)[name];
        expect(typeof viaApi).toBe('function');
        await expect(viaApi!()).rejects.toMatchObject({ code: 'ERR_PLUGIN_NO_METHOD', method: name });
      }
      await expect(byName(plugin.with({}))(name)).rejects.toMatchObject({ code: 'ERR_PLUGIN_NO_METHOD' });
      expect(plugin.stats.calls).toBe(0);
      expect(plugin.inFlight).toBe(0);
      // The fixture's counter shows nothing ran (and onLoad ran once, at load).
      expect(await plugin.api.count()).toEqual({ hits: 0, loads: 1 });
      expect(await plugin.api.real()).toBe(1);
    });
  });

  it('X1: a Symbol given to call() is refused', async () => {
    await withPlugin<Reserved>('c-reserved.mjs', async (plugin) => {
      await expect(byName(plugin)(Symbol('real') as unknown as string)).rejects.toMatchObject({
        code: 'ERR_PLUGIN_NO_METHOD',
      });
      await expect(byName(plugin)(Symbol.toPrimitive as unknown as string)).rejects.toMatchObject({
        code: 'ERR_PLUGIN_NO_METHOD',
      });
      expect(plugin.stats.calls).toBe(0);
      expect(await plugin.api.count()).toEqual({ hits: 0, loads: 1 });
    });
  });

  it('X1: only the real methods are listed', async () => {
    await withPlugin<Reserved>('c-reserved.mjs', async (plugin) => {
      expect(Object.keys(plugin.api).sort()).toEqual(['count', 'real']);
      for (const name of ['__proto__', 'constructor', 'toString', 'then', 'onLoad', 'a', ''])
        expect(name in plugin.api).toBe(false);
    });
  });

  it('X1: a plugin exporting `then` loads, and nothing calls its `then` (not the host, not the loader)', async () => {
    await withPlugin<Then>(
      'c-then.mjs',
      async (plugin) => {
        expect(plugin.methods).toEqual(['count']);
        await expect(byName(plugin)('then')).rejects.toMatchObject({ code: 'ERR_PLUGIN_NO_METHOD' });
        expect(await plugin.api.count()).toBe(0);
      },
      { readyTimeoutMs: 5_000 },
    );
  });
});

describe('errors cross the boundary (F1)', () => {
  it('F1: an Error subclass keeps name, message, code, cause (with its code) and a stack naming the plugin file', async () => {
    await withPlugin<Errors>('c-errors.mjs', async (plugin) => {
      for (const method of ['throwCoded', 'rejectCoded']) {
        const error = (await caught(byName(plugin)(method))) as Error & { code?: unknown; cause?: unknown };
        expect(error).toBeInstanceOf(Error);
        expect(error).toMatchObject({ name: 'PluginFail', message: 'c-errors failed', code: 'E_PLUGIN_FAIL' });
        expect(error.cause).toBeInstanceOf(Error);
        expect(error.cause).toMatchObject({ message: 'c-errors inner', code: 'E_INNER' });
        expect(error.stack).toContain('c-errors.mjs');
        expect(error).toMatchObject({ plugin: { name: plugin.name, version: plugin.version, method } });
      }
      expect(await plugin.api.ok()).toBe('ok');
    });
  });

  it('F1: a TypeError arrives as an instanceof TypeError', async () => {
    await withPlugin<Errors>('c-errors.mjs', async (plugin) => {
      const error = await caught(plugin.api.throwType());
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).stack).toContain('c-errors.mjs');
    });
  });

  it.each([
    ['throwString', 'c-errors string'],
    ['rejectString', 'c-errors string'],
    ['throwNull', null],
  ])(
    'F1: %s: a thrown non-Error rejects ERR_PLUGIN_NON_ERROR_THROWN with the value; the next call succeeds',
    async (method, value) => {
      await withPlugin<Errors>('c-errors.mjs', async (plugin) => {
        await expect(byName(plugin)(method)).rejects.toMatchObject({
          code: 'ERR_PLUGIN_NON_ERROR_THROWN',
          method,
          value,
        });
        expect(plugin.state).toBe('ready');
        expect(await plugin.api.ok()).toBe('ok');
      });
    },
  );

  it.each(['throwGetters', 'throwTagGetter', 'rejectHostileProxy'])(
    'F1: %s: a hostile thrown object rejects ERR_PLUGIN_NON_ERROR_THROWN, no crash; the next call succeeds',
    async (method) => {
      await withPlugin<Errors>('c-errors.mjs', async (plugin) => {
        await expect(byName(plugin)(method)).rejects.toMatchObject({ code: 'ERR_PLUGIN_NON_ERROR_THROWN', method });
        expect(plugin.state).toBe('ready');
        expect(await plugin.api.ok()).toBe('ok');
      });
    },
  );
});

describe('values that cannot be cloned (F10, F12)', () => {
  const badArguments: Array<[label: string, make: () => unknown]> = [
    ['a function not wrapped in proxy()', () => () => 1],
    ['a symbol', () => Symbol('s')],
    ['a WeakMap', () => new WeakMap()],
    ['a Promise', () => Promise.resolve(1)],
  ];

  it.each(badArguments)(
    'F10: argument: %s rejects ERR_PLUGIN_CLONE (argument); nothing stays in flight; the next call works',
    async (_label, make) => {
      await withPlugin<Clone>('c-clone.mjs', async (plugin) => {
        await expect(plugin.api.count(1, make())).rejects.toMatchObject({
          code: 'ERR_PLUGIN_CLONE',
          direction: 'argument',
          method: 'count',
        });
        expect(plugin.inFlight).toBe(0);
        expect(await plugin.api.count(1, 2)).toBe(2);
      });
    },
  );

  it.each(['returnFunction', 'returnWeakMap'])(
    'F10: result: %s rejects ERR_PLUGIN_CLONE (result); nothing stays in flight; the next call works',
    async (method) => {
      await withPlugin<Clone>('c-clone.mjs', async (plugin) => {
        await expect(byName(plugin)(method)).rejects.toMatchObject({
          code: 'ERR_PLUGIN_CLONE',
          direction: 'result',
          method,
        });
        expect(plugin.inFlight).toBe(0);
        expect(await plugin.api.ok()).toBe('ok');
      });
    },
  );

  it('F12: a 200,000-level nested argument rejects ERR_PLUGIN_CLONE; the host and the version survive', async () => {
    await withPlugin<Clone>('c-clone.mjs', async (plugin) => {
      await expect(plugin.api.count(deep(200_000))).rejects.toMatchObject({
        code: 'ERR_PLUGIN_CLONE',
        direction: 'argument',
      });
      expect(plugin.inFlight).toBe(0);
      expect(await plugin.api.ok()).toBe('ok');
    });
  });

  it('F12: a 200,000-level nested result rejects ERR_PLUGIN_CLONE; the host and the version survive', async () => {
    await withPlugin<Clone>('c-clone.mjs', async (plugin) => {
      await expect(plugin.api.deep(200_000)).rejects.toMatchObject({
        code: 'ERR_PLUGIN_CLONE',
        direction: 'result',
        method: 'deep',
      });
      expect(plugin.inFlight).toBe(0);
      expect(await plugin.api.ok()).toBe('ok');
    });
  });

  // A worker has a larger stack than the main thread: it can serialize a result nested deeper than the
  // host can deserialize (about 12k vs 2k levels on Node 20 defaults). The reply is then lost in a
  // `messageerror`; the call must still reject with a code. The per-call timeout is only a safety net
  // so that a lost reply fails this test instead of hanging it. The cause's code says the reply was lost,
  // not refused by the worker's own serializer (which would reject the same way without it).
  it('F12: a result the worker can send but the host cannot read rejects ERR_PLUGIN_CLONE (result), not a hang', async () => {
    await withPlugin<Clone>('c-clone.mjs', async (plugin) => {
      await expect(plugin.with({ timeoutMs: 5_000 }).api.deep(6_000)).rejects.toMatchObject({
        code: 'ERR_PLUGIN_CLONE',
        direction: 'result',
        method: 'deep',
        cause: { code: 'ERR_PLUGIN_MESSAGE_LOST' },
      });
      expect(plugin.inFlight).toBe(0);
      expect(await plugin.api.ok()).toBe('ok');
    });
  });

  it('F12: a result the host cannot read does not take down the other calls made in the same tick', async () => {
    await withPlugin<Clone>('c-clone.mjs', async (plugin) => {
      const view = plugin.with({ timeoutMs: 5_000 });
      const before = view.api.ok();
      const lost = view.api.deep(6_000);
      const after = view.api.ok();
      const [a, b, c] = await Promise.allSettled([before, lost, after]);
      expect(a).toEqual({ status: 'fulfilled', value: 'ok' });
      expect(c).toEqual({ status: 'fulfilled', value: 'ok' });
      expect(b).toMatchObject({
        status: 'rejected',
        reason: { code: 'ERR_PLUGIN_CLONE', direction: 'result', cause: { code: 'ERR_PLUGIN_MESSAGE_LOST' } },
      });
      expect(plugin.inFlight).toBe(0);
    });
  });

  // The other way round: a worker with a small stack cannot read an argument the host could send (the
  // cause's code says so: an argument the host itself cannot serialize is refused without it).
  it('F12: an argument the host can send but the worker cannot read rejects ERR_PLUGIN_CLONE (argument), not a hang', async () => {
    await withPlugin<Clone>(
      'c-clone.mjs',
      async (plugin) => {
        await expect(plugin.with({ timeoutMs: 5_000 }).api.count(deep(1_500))).rejects.toMatchObject({
          code: 'ERR_PLUGIN_CLONE',
          direction: 'argument',
          method: 'count',
          cause: { code: 'ERR_PLUGIN_MESSAGE_LOST' },
        });
        expect(plugin.inFlight).toBe(0);
        expect(await plugin.api.ok()).toBe('ok');
      },
      { resourceLimits: { stackSizeMb: 0.5 } },
    );
  });

  // The host does not keep the calls it sent, so the calls that travelled in the same message as the
  // unreadable argument cannot be sent again: they may fail with it, but with a code, never a hang.
  it('F12: an argument the worker cannot read among calls of the same tick: each call settles, none hangs; the next calls work', async () => {
    await withPlugin<Clone>(
      'c-clone.mjs',
      async (plugin) => {
        const view = plugin.with({ timeoutMs: 5_000 });
        const [a, lost, c] = await Promise.allSettled([
          view.api.count(1),
          view.api.count(deep(1_500)),
          view.api.count(2, 3),
        ]);
        const lostArgument = {
          status: 'rejected',
          reason: {
            code: 'ERR_PLUGIN_CLONE',
            direction: 'argument',
            method: 'count',
            cause: { code: 'ERR_PLUGIN_MESSAGE_LOST' },
          },
        };
        expect(lost).toMatchObject(lostArgument);
        for (const [other, value] of [
          [a, 1],
          [c, 2],
        ] as const) {
          if (other.status === 'fulfilled') expect(other.value).toBe(value);
          else expect(other).toMatchObject(lostArgument);
        }
        expect(plugin.inFlight).toBe(0);
        expect(await Promise.all([plugin.api.count(1), plugin.api.ok()])).toEqual([1, 'ok']);
      },
      { resourceLimits: { stackSizeMb: 0.5 } },
    );
  });
});

describe('results whose then runs plugin code', () => {
  it('F1: a result whose then getter throws fails that call only; a call in the same tick and the version are fine', async () => {
    const plugin = await loadPlugin<typeof import('./fixtures/c-bad-then.mjs')>(fixture('c-bad-then.mjs'));
    const [bad, good] = await Promise.allSettled([plugin.api.badThen(), plugin.api.echo('fine')]);
    expect(bad).toMatchObject({ status: 'rejected', reason: { code: 'E_THEN', message: 'then getter' } });
    expect(good).toEqual({ status: 'fulfilled', value: 'fine' });
    expect(plugin.state).toBe('ready');
    await plugin.close();
  });
});

describe('host callbacks', () => {
  it('a function wrapped in proxy() can be called by the plugin', async () => {
    await withPlugin<Callback>('c-callback.mjs', async (plugin) => {
      const seen: unknown[] = [];
      const result = await plugin.call(
        'callBack',
        proxy((value: unknown) => {
          seen.push(value);
          return { doubled: (value as number) * 2 };
        }),
        21,
      );
      expect(result).toEqual({ doubled: 42 });
      expect(seen).toEqual([21]);
      expect(
        await plugin.api.callBack(
          proxy(async (value: unknown) => `async ${String(value)}`),
          'x',
        ),
      ).toBe('async x');
    });
  });

  it('X2: the plugin cannot walk, construct, stringify or write through a callback; the host is untouched', async () => {
    const host = globalThis as { __pwned?: unknown };
    await withPlugin<Callback>('c-callback.mjs', async (plugin) => {
      const calls: unknown[] = [];
      const cb = proxy((value: unknown) => {
        calls.push(value);
        return value;
      });
      // The per-call timeout is a safety net: a write that is not refused would leave the fixture waiting.
      const report = await plugin.with({ timeoutMs: 10_000 }).call('attack', cb);
      expect(report).toEqual({
        failed: {
          'cb.constructor.constructor(code)': true,
          'new cb.constructor.constructor(code)()': true,
          'new cb.constructor(code)()': true,
          'cb.toString()': true,
          'await cb.__proto__': true,
          'cb.__proto__.polluted = 1': true,
        },
        after: 'after',
      });
      expect(calls).toEqual(['after']);
      expect(host.__pwned).toBeUndefined();
      expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
      expect((Function.prototype as { polluted?: unknown }).polluted).toBeUndefined();
      expect(plugin.state).toBe('ready');
    });
  });
});

describe('load on one version', () => {
  it('F14: 10,000 concurrent calls all settle with their own results', async () => {
    await withPlugin<Basic>('c-basic.mjs', async (plugin) => {
      const n = 10_000;
      const results = await Promise.allSettled(
        Array.from({ length: n }, (_, i) => (i % 2 === 0 ? plugin.api.echo(i) : plugin.api.add(i, 0))),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(n);
      expect(results.map((r) => (r.status === 'fulfilled' ? r.value : r.reason))).toEqual(
        Array.from({ length: n }, (_, i) => i),
      );
      expect(plugin.inFlight).toBe(0);
      expect(plugin.stats).toMatchObject({ calls: n, failures: 0 });
    });
  });
});

describe('per-call options: plugin.with()', () => {
  it('transfer moves an ArrayBuffer to the plugin: the host copy is detached', async () => {
    await withPlugin<Basic>('c-basic.mjs', async (plugin) => {
      const copied = new ArrayBuffer(16);
      expect(await plugin.api.size(copied)).toBe(16);
      expect(copied.byteLength).toBe(16);

      const moved = new ArrayBuffer(32);
      const viaApi = plugin.with({ transfer: [moved] }).api.size(moved);
      expect(moved.byteLength).toBe(0);
      expect(await viaApi).toBe(32);

      const movedByName = new ArrayBuffer(8);
      expect(await plugin.with({ transfer: [movedByName] }).call('size', movedByName)).toBe(8);
      expect(movedByName.byteLength).toBe(0);
    });
  });

  it('timeoutMs rejects ERR_PLUGIN_TIMEOUT for that call only', async () => {
    await withPlugin<Basic>('c-basic.mjs', async (plugin) => {
      await expect(plugin.with({ timeoutMs: 20 }).api.forever()).rejects.toMatchObject({
        code: 'ERR_PLUGIN_TIMEOUT',
        method: 'forever',
        timeoutMs: 20,
      });
      expect(plugin.inFlight).toBe(0);
      expect(await plugin.with({ timeoutMs: 20_000 }).api.echo('fine')).toBe('fine');
    });
  });

  it('signal aborts the call with the reason as cause; an already aborted signal never sends it', async () => {
    await withPlugin<Basic>('c-basic.mjs', async (plugin) => {
      const controller = new AbortController();
      const reason = new Error('stop');
      const call = expect(plugin.with({ signal: controller.signal }).api.forever()).rejects.toMatchObject({
        code: 'ERR_PLUGIN_ABORTED',
        method: 'forever',
        cause: reason,
      });
      expect(plugin.inFlight).toBe(1);
      controller.abort(reason);
      await call;
      expect(plugin.inFlight).toBe(0);
      const callsBefore = plugin.stats.calls;
      await expect(plugin.with({ signal: controller.signal }).api.echo(1)).rejects.toMatchObject({
        code: 'ERR_PLUGIN_ABORTED',
      });
      expect(plugin.stats.calls).toBe(callsBefore);
    });
  });

  const badCallOptions: Array<[label: string, options: unknown, option: string, kind: ErrorConstructor]> = [
    ['signal: a string', { signal: 'abort' }, 'callOptions.signal', TypeError],
    ['transfer: not an array', { transfer: new ArrayBuffer(1) }, 'callOptions.transfer', TypeError],
    ["timeoutMs: 'x'", { timeoutMs: 'x' }, 'callOptions.timeoutMs', TypeError],
    ['an unknown key', { retries: 3 }, 'callOptions.retries', TypeError],
    ['options: null', null, 'callOptions', TypeError],
    ['timeoutMs: -1', { timeoutMs: -1 }, 'callOptions.timeoutMs', RangeError],
  ];

  it.each(badCallOptions)(
    '%s throws synchronously, code ERR_PLUGIN_INVALID_OPTION naming the option',
    async (_label, options, option, kind) => {
      await withPlugin<Basic>('c-basic.mjs', async (plugin) => {
        const error = thrown(() => plugin.with(options as never));
        expect(error).toBeInstanceOf(kind);
        expect(error).toMatchObject({ code: 'ERR_PLUGIN_INVALID_OPTION', option });
        expect(plugin.stats.calls).toBe(0);
      });
    },
  );
});
