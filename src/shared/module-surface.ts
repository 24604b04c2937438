/**
 * What a plugin module offers, read one way wherever it is imported (in its worker, or in the host in
 * inline mode): its callable methods, its lifecycle hooks and its `dependencies`. A CommonJS module's
 * `module.exports` object (the namespace's `default`) counts as its exports too.
 *
 * In a worker this module is evaluated before any plugin code runs: the built-ins it uses are captured
 * then, so a plugin that replaces them at import cannot change what is read.
 */

/**
 * Export names that are never callable: lifecycle hooks, and anything that would make the API look
 * like something else (a thenable, an object with a prototype).
 */
export const RESERVED_NAMES = [
  'onLoad',
  'onFree',
  'onInit',
  'reloadable',
  'dependencies',
  'then',
  'default',
  'prototype',
  'constructor',
  'toString',
  'toLocaleString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  '__proto__',
  '__defineGetter__',
  '__defineSetter__',
  '__lookupGetter__',
  '__lookupSetter__',
] as const;

/** Export names that are never callable (lifecycle hooks and names that would make `api` look like something else). */
export type ReservedName = (typeof RESERVED_NAMES)[number];

/** The reserved names, and whatever else this runtime's `Object.prototype` has. */
export const RESERVED_EXPORTS: ReadonlySet<string> = new Set<string>([
  ...RESERVED_NAMES,
  ...Object.getOwnPropertyNames(Object.prototype),
]);

export type Fn = (...args: unknown[]) => unknown;

/** The exports the runtime and the PluginManager call on their own. */
export type HookName = 'onLoad' | 'onFree' | 'onInit' | 'reloadable';

/** A module's namespace object, as `import()` gives it. */
export type Namespace = Record<string, unknown>;

export interface ModuleSurface {
  /** The callable methods: own exported functions (then the CommonJS object's), minus reserved names. */
  readonly methods: Map<string, Fn>;
  readonly onLoad: Fn | undefined;
  readonly onFree: Fn | undefined;
  /** The PluginManager's hooks. */
  readonly onInit: Fn | undefined;
  readonly reloadable: Fn | undefined;
  /** The `dependencies` export when it is an array of strings (a copy), else empty. */
  readonly dependencies: string[];
}

const ownKeys = Reflect.ownKeys;
const isArray = Array.isArray;

/**
 * Imports `url`; resolves with its namespace inside a box. Through a wrapper module whose only export is
 * the namespace, and never resolving with the namespace itself: a plugin exporting `then` makes its own
 * namespace thenable, and `import()` or an async function's return would call it.
 */
export function importNamespace(url: string): Promise<{ readonly ns: Namespace }> {
  const wrapper = `export * as ns from ${JSON.stringify(url)};`;
  return import(`data:text/javascript,${encodeURIComponent(wrapper)}`) as Promise<{ readonly ns: Namespace }>;
}

/** The CommonJS `module.exports` object, when the module is one. */
function commonJs(ns: Namespace): Record<string, unknown> | undefined {
  const def = ns['default'];
  return def !== null && typeof def === 'object' ? (def as Record<string, unknown>) : undefined;
}

/** The export `name`: the module's own, else the CommonJS object's. */
function exported(ns: Namespace, name: string): unknown {
  const own = ns[name];
  return own !== undefined ? own : commonJs(ns)?.[name];
}

/** The hook `name` when it is a function: the module's own, else the CommonJS object's. */
export function readHook(ns: Namespace, name: HookName): Fn | undefined {
  const own = ns[name];
  if (typeof own === 'function') return own as Fn;
  const fromObject = commonJs(ns)?.[name];
  return typeof fromObject === 'function' ? (fromObject as Fn) : undefined;
}

/**
 * Reads what the module offers; nothing of it is called. Read after `onLoad` resolved: an ESM `export let`
 * or a CommonJS `module.exports` that `onLoad` assigns counts as it is then.
 */
export function readSurface(ns: Namespace): ModuleSurface {
  const methods = new Map<string, Fn>();
  const add = (source: Record<string, unknown>) => {
    for (const key of ownKeys(source)) {
      if (typeof key !== 'string' || RESERVED_EXPORTS.has(key) || methods.has(key)) continue;
      const value = source[key];
      if (typeof value === 'function') methods.set(key, value as Fn);
    }
  };
  add(ns);
  const object = commonJs(ns);
  if (object) add(object);
  const dependencies = exported(ns, 'dependencies');
  return {
    methods,
    onLoad: readHook(ns, 'onLoad'),
    onFree: readHook(ns, 'onFree'),
    onInit: readHook(ns, 'onInit'),
    reloadable: readHook(ns, 'reloadable'),
    dependencies: isArray(dependencies) && dependencies.every((d) => typeof d === 'string') ? [...dependencies] : [],
  };
}
