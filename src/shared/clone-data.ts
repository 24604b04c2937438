/**
 * Copies the data an error carries (its own enumerable properties, a thrown non-Error object) into a value
 * that structured clone is sure to accept, and names every part it had to leave out. Structured clone
 * itself throws on the first function or symbol anywhere in the value, and would lose the whole error
 * for one bad property; here only that property is lost, and its path says so.
 *
 * The copy is bounded (nodes, depth, characters): an error's data is for reading, not a transport.
 * Used on both sides of the boundary; no Node-only imports.
 */

/** A part of an error's data that could not cross the thread boundary, and why. */
export interface DroppedProperty {
  /** Where it was, from the error: `format`, `loc.source`, `issues[3].fn`, `meta[Symbol(id)]`. */
  readonly path: string;
  /**
   * `function` and `symbol` (values structured clone refuses), `symbol-key` (a property named by a symbol),
   * `uncloneable` (a WeakMap, a Promise, a proxy…), `circular` (a reference back to a containing object),
   * `unreadable` (a getter that threw), `too-deep` or `too-large` (past the envelope's bounds).
   */
  readonly reason:
    'function' | 'symbol' | 'symbol-key' | 'uncloneable' | 'circular' | 'unreadable' | 'too-deep' | 'too-large';
}

/** The bounds of one envelope: every error in it (causes, aggregated errors) shares them. */
export const LIMITS = {
  /** Objects, arrays and values copied. */
  nodes: 4096,
  /** Characters of strings copied (keys included). */
  chars: 256 * 1024,
  /** Nesting below a property of the error. */
  depth: 16,
  /** Dropped entries named; the rest are counted in one last entry. */
  dropped: 64,
} as const;

/** The running budget of one envelope, and what it dropped. */
export interface Budget {
  nodes: number;
  chars: number;
  readonly dropped: DroppedProperty[];
  /** Set by the envelope: how an Error found inside the data is packed. */
  readonly packError: (error: Error, budget: Budget) => unknown;
}

export function newBudget(packError: Budget['packError']): Budget {
  return { nodes: LIMITS.nodes, chars: LIMITS.chars, dropped: [], packError };
}

/** Marks a packed Error inside copied data (a key no library uses), so the other side rebuilds it. */
export const ERROR_MARK = '\u0000isoplug.error';

/** Nothing: what a dropped property becomes (the key is left out). */
const DROP = Symbol('drop');

function drop(budget: Budget, path: string, reason: DroppedProperty['reason']): typeof DROP {
  if (budget.dropped.length < LIMITS.dropped) budget.dropped.push({ path, reason });
  return DROP;
}

function keyPath(base: string, key: string): string {
  if (/^[A-Za-z_$][\w$]*$/.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}

function isError(value: object): value is Error {
  try {
    return value instanceof Error || Object.prototype.toString.call(value) === '[object Error]';
  } catch {
    return false;
  }
}

/** Objects structured clone copies as they are (no own properties of interest to walk). */
function isCloneableAsIs(value: object): boolean {
  return (
    value instanceof Date ||
    value instanceof RegExp ||
    value instanceof ArrayBuffer ||
    ArrayBuffer.isView(value) ||
    value instanceof Boolean ||
    value instanceof Number ||
    value instanceof String
  );
}

/** Objects structured clone refuses, or that would not mean anything on the other side. */
function isUncloneable(value: object): boolean {
  return (
    value instanceof WeakMap ||
    value instanceof WeakSet ||
    value instanceof Promise ||
    (typeof WeakRef === 'function' && value instanceof WeakRef) ||
    (typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer)
  );
}

/**
 * A copy of `value` that structured clone accepts, or `DROP` when nothing of it can cross (recorded in
 * `budget.dropped` under `path`). `ancestors` holds the objects being copied above it (cycles).
 */
export function copyData(value: unknown, path: string, budget: Budget, depth = 0, ancestors: object[] = []): unknown {
  if (--budget.nodes < 0) return drop(budget, path, 'too-large');
  switch (typeof value) {
    case 'function':
      return drop(budget, path, 'function');
    case 'symbol':
      return drop(budget, path, 'symbol');
    case 'string':
      budget.chars -= value.length;
      return budget.chars < 0 ? drop(budget, path, 'too-large') : value;
    case 'object':
      break;
    default:
      return value;
  }
  if (value === null) return null;
  if (ancestors.includes(value)) return drop(budget, path, 'circular');
  if (depth >= LIMITS.depth) return drop(budget, path, 'too-deep');
  try {
    if (isError(value)) return { [ERROR_MARK]: budget.packError(value, budget) };
    if (isCloneableAsIs(value)) return value;
    if (isUncloneable(value)) return drop(budget, path, 'uncloneable');
    ancestors.push(value);
    try {
      if (Array.isArray(value)) return copyArray(value, path, budget, depth, ancestors);
      if (value instanceof Map) return copyMap(value, path, budget, depth, ancestors);
      if (value instanceof Set) return copySet(value, path, budget, depth, ancestors);
      return copyObject(value, path, budget, depth, ancestors);
    } finally {
      ancestors.pop();
    }
  } catch {
    // A proxy or a throwing getter on the way: what is behind it cannot be read, so it cannot cross.
    return drop(budget, path, 'unreadable');
  }
}

function copyArray(value: unknown[], path: string, budget: Budget, depth: number, ancestors: object[]): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < value.length; i++) {
    if (budget.nodes <= 0) {
      drop(budget, `${path}[${i}..${value.length - 1}]`, 'too-large');
      break;
    }
    const item = copyData(value[i], `${path}[${i}]`, budget, depth + 1, ancestors);
    // A dropped element leaves a hole's value, so the indexes of the others stay true.
    out.push(item === DROP ? undefined : item);
  }
  return out;
}

function copyMap(
  value: Map<unknown, unknown>,
  path: string,
  budget: Budget,
  depth: number,
  ancestors: object[],
): Map<unknown, unknown> {
  const out = new Map<unknown, unknown>();
  let i = 0;
  for (const [key, item] of value) {
    const at = `${path}.get(${typeof key === 'string' ? JSON.stringify(key) : `#${i}`})`;
    i++;
    const k = copyData(key, at, budget, depth + 1, ancestors);
    const v = k === DROP ? DROP : copyData(item, at, budget, depth + 1, ancestors);
    if (k !== DROP && v !== DROP) out.set(k, v);
  }
  return out;
}

function copySet(value: Set<unknown>, path: string, budget: Budget, depth: number, ancestors: object[]): Set<unknown> {
  const out = new Set<unknown>();
  let i = 0;
  for (const item of value) {
    const v = copyData(item, `${path}.values()[${i++}]`, budget, depth + 1, ancestors);
    if (v !== DROP) out.add(v);
  }
  return out;
}

function copyObject(value: object, path: string, budget: Budget, depth: number, ancestors: object[]): object {
  // A plain object on the other side, as structured clone would make it of a class instance.
  const out: Record<string, unknown> = {};
  copyOwn(value, out, path, budget, depth, ancestors, undefined);
  return out;
}

/**
 * Copies `from`'s own enumerable properties into `into` (except `skip`), naming what it drops. The
 * error's own properties go through here at depth 0, nested objects below.
 */
export function copyOwn(
  from: object,
  into: Record<string, unknown>,
  path: string,
  budget: Budget,
  depth: number,
  ancestors: object[],
  skip: ReadonlySet<string> | undefined,
): number {
  let copied = 0;
  for (const key of Reflect.ownKeys(from)) {
    if (typeof key === 'symbol') {
      if (Object.prototype.propertyIsEnumerable.call(from, key))
        drop(budget, `${path}[${key.toString()}]`, 'symbol-key');
      continue;
    }
    if (skip?.has(key) || !Object.prototype.propertyIsEnumerable.call(from, key)) continue;
    if (key === '__proto__') continue;
    const at = keyPath(path, key);
    budget.chars -= key.length;
    let item: unknown;
    try {
      item = (from as Record<string, unknown>)[key];
    } catch {
      drop(budget, at, 'unreadable');
      continue;
    }
    const copy = copyData(item, at, budget, depth + 1, ancestors);
    if (copy === DROP) continue;
    into[key] = copy;
    copied++;
  }
  return copied;
}

/** The copied data back, with the Errors inside it rebuilt by `unpackError`. */
export function restoreData(value: unknown, unpackError: (packed: unknown) => Error, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || depth > LIMITS.depth + 1) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = restoreData(value[i], unpackError, depth + 1);
    return value;
  }
  if (value instanceof Map) {
    for (const [k, v] of value) value.set(k, restoreData(v, unpackError, depth + 1));
    return value;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  if (Object.hasOwn(value, ERROR_MARK)) return unpackError((value as Record<string, unknown>)[ERROR_MARK]);
  for (const key of Object.keys(value)) {
    (value as Record<string, unknown>)[key] = restoreData(
      (value as Record<string, unknown>)[key],
      unpackError,
      depth + 1,
    );
  }
  return value;
}
