/**
 * The typed face of a plugin version: `plugin.api.method(...args)` returns a Promise of the result,
 * in the style of Comlink's `Remote<T>`. `loadPlugin<typeof import('./p.js')>()` infers it.
 */

import type { ReservedName } from './shared/module-surface.js';

export type { ReservedName };

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- matches any function, whatever its parameters
type AnyFunction = (...args: any[]) => any;

/** The names of `T`'s callable methods: its own function-valued string keys, minus reserved names. */
export type MethodName<T> = {
  [K in keyof T]-?: K extends string ? (K extends ReservedName ? never : T[K] extends AnyFunction ? K : never) : never;
}[keyof T];

/** A remote method: same parameters, the result always a Promise. */
export type RemoteMethod<F> = F extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;

/** `plugin.api`: one async function per exported function of the module. */
export type PluginApi<T> = { readonly [K in MethodName<T>]: RemoteMethod<T[K]> };

/** Call by name, typed when `T` is known. */
export interface CallByName<T> {
  <K extends MethodName<T>>(
    name: K,
    ...args: Parameters<Extract<T[K], AnyFunction>>
  ): Promise<Awaited<ReturnType<Extract<T[K], AnyFunction>>>>;
}

/**
 * Builds the `api` object: a Proxy whose every string property is a function calling that method
 * (unknown names reject `ERR_PLUGIN_NO_METHOD` when called), except `then`, which is undefined so that
 * awaiting `api` itself does not hang.
 */
export function createApi<T>(
  methods: ReadonlySet<string>,
  invoke: (method: string, args: unknown[]) => Promise<unknown>,
): PluginApi<T> {
  const cache = new Map<string, (...args: unknown[]) => Promise<unknown>>();
  const method = (name: string) => {
    let fn = cache.get(name);
    if (fn === undefined) {
      fn = (...args: unknown[]) => invoke(name, args);
      if (methods.has(name)) cache.set(name, fn);
    }
    return fn;
  };
  const target = Object.create(null) as object;
  return new Proxy(target, {
    get: (_t, prop) => (typeof prop === 'string' && prop !== 'then' ? method(prop) : undefined),
    has: (_t, prop) => typeof prop === 'string' && methods.has(prop),
    ownKeys: () => [...methods],
    getOwnPropertyDescriptor: (_t, prop) =>
      typeof prop === 'string' && methods.has(prop)
        ? { value: method(prop), enumerable: true, configurable: true, writable: false }
        : undefined,
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
    setPrototypeOf: () => false,
  }) as PluginApi<T>;
}
