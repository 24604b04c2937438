/**
 * Errors cross the thread boundary in an explicit envelope: structured clone keeps only an Error's
 * message and stack (and not even its subclass, `code` or `cause` on every Node line), and it refuses an
 * error whole for one function among its properties. So the sending side packs what matters: the class
 * when it is a built-in one, `code`, the `cause` chain, an AggregateError's `errors`, and every own
 * enumerable property that can be cloned (nested objects and arrays included, see clone-data.ts); the
 * receiving side rebuilds it, with what could not cross named in `droppedProperties`. Used on both
 * sides; no Node-only imports.
 */
import { copyData, copyOwn, newBudget, restoreData, type Budget, type DroppedProperty } from './clone-data.js';

export type { DroppedProperty } from './clone-data.js';

/** A thrown Error, packed. */
export interface ErrorPack {
  readonly kind: 'error';
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  readonly code: string | number | undefined;
  readonly cause: Pack | undefined;
  /** Its other own enumerable properties, copied so that they clone (errno, path, loc, issues…). */
  readonly props: Record<string, unknown> | undefined;
  /** An AggregateError's `errors`. */
  readonly errors: Pack[] | undefined;
  /** What of its own properties could not cross. */
  readonly dropped: DroppedProperty[] | undefined;
}

/** A thrown non-Error value, packed. */
export interface ValuePack {
  readonly kind: 'value';
  /** `typeof` of the value, or `null`. */
  readonly type: string;
  /** The value itself when it is a primitive; a copy of its data when it is an object (undefined if unreadable). */
  readonly value: unknown;
  readonly text: string;
  /** What of the object's data could not cross. */
  readonly dropped: DroppedProperty[] | undefined;
}

export type Pack = ErrorPack | ValuePack;

const MAX_CAUSE_DEPTH = 8;
/** An AggregateError's errors packed; the rest are named as dropped. */
const MAX_AGGREGATED = 100;
const SKIPPED_PROPS: ReadonlySet<string> = new Set(['name', 'message', 'stack', 'code', 'cause']);

function safe<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

function isErrorLike(value: unknown): value is Error {
  return safe(() => value instanceof Error || Object.prototype.toString.call(value) === '[object Error]', false);
}

function describe(value: unknown): string {
  return safe(
    () => {
      if (typeof value === 'string') return value;
      if (typeof value === 'symbol') return value.toString();
      if (typeof value === 'object' && value !== null) {
        const json = JSON.stringify(value);
        return json === undefined ? Object.prototype.toString.call(value) : json.slice(0, 1000);
      }
      return String(value);
    },
    safe(() => Object.prototype.toString.call(value), '[object Object]'),
  );
}

function isPrimitive(value: unknown): boolean {
  return value === null || (typeof value !== 'object' && typeof value !== 'function' && typeof value !== 'symbol');
}

/** Runs `fill` with a fresh list of dropped properties (each error names its own), and returns it. */
function droppedBy(budget: Budget, fill: () => void): DroppedProperty[] | undefined {
  const outer = budget.dropped.splice(0);
  fill();
  const mine = budget.dropped.splice(0, budget.dropped.length, ...outer);
  return mine.length > 0 ? mine : undefined;
}

/**
 * Packs anything that was thrown. Never throws itself: hostile values (throwing getters, proxies,
 * cycles) degrade to a description, and the parts that cannot be read are named as dropped.
 */
export function pack(thrown: unknown): Pack {
  return packWith(
    thrown,
    newBudget((error, budget) => packWith(error, budget, 1)),
    0,
  );
}

function packWith(thrown: unknown, budget: Budget, depth: number): Pack {
  if (!isErrorLike(thrown)) {
    const type = thrown === null ? 'null' : typeof thrown;
    let value: unknown = isPrimitive(thrown) ? thrown : undefined;
    const dropped =
      typeof thrown === 'object' && thrown !== null
        ? droppedBy(budget, () => {
            const copy = copyData(thrown, '', budget);
            if (typeof copy === 'object') value = copy;
          })
        : undefined;
    return { kind: 'value', type, value, text: describe(thrown), dropped };
  }
  const code = safe(() => (thrown as { code?: unknown }).code, undefined);
  const cause = safe(() => (thrown as { cause?: unknown }).cause, undefined);
  const hasCause = safe(() => 'cause' in thrown, false);
  let props: Record<string, unknown> | undefined;
  let errors: Pack[] | undefined;
  const dropped = droppedBy(budget, () => {
    const own: Record<string, unknown> = {};
    if (safe(() => copyOwn(thrown, own, '', budget, 0, [thrown], SKIPPED_PROPS), 0) > 0) props = own;
    const list = safe(() => (thrown instanceof AggregateError ? (thrown.errors as unknown) : undefined), undefined);
    if (Array.isArray(list)) {
      errors = list.slice(0, MAX_AGGREGATED).map((item) => packWith(item, budget, depth + 1));
      if (list.length > MAX_AGGREGATED) {
        budget.dropped.push({ path: `errors[${MAX_AGGREGATED}..${list.length - 1}]`, reason: 'too-large' });
      }
    }
  });
  return {
    kind: 'error',
    name: safe(() => String(thrown.name), 'Error'),
    message: safe(() => String(thrown.message), ''),
    stack: safe(() => (typeof thrown.stack === 'string' ? thrown.stack : undefined), undefined),
    code: typeof code === 'string' || typeof code === 'number' ? code : undefined,
    cause: hasCause && depth < MAX_CAUSE_DEPTH ? packWith(cause, budget, depth + 1) : undefined,
    props,
    errors,
    dropped,
  };
}

const BUILTIN_ERRORS: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

function define(target: object, key: string, value: unknown, enumerable: boolean): void {
  Object.defineProperty(target, key, { value, enumerable, writable: true, configurable: true });
}

/**
 * Rebuilds a packed Error: the built-in class when its name is one (so `instanceof TypeError` holds),
 * AggregateError when it carried `errors`, `Error` otherwise, with `name`, `message`, `stack`, `code`,
 * `cause`, its data and `droppedProperties` (when something could not cross) restored.
 * A packed non-Error comes back through `onValue`, so the caller decides how to wrap it.
 */
export function unpack(p: Pack, onValue: (v: ValuePack) => Error): Error {
  if (p.kind === 'value') {
    const wrapped = onValue(p);
    if (p.dropped !== undefined) define(wrapped, 'droppedProperties', p.dropped, true);
    return wrapped;
  }
  const options = p.cause === undefined ? undefined : { cause: unpackValue(p.cause) };
  let error: Error;
  if (p.errors !== undefined) {
    error = new AggregateError(p.errors.map(unpackValue), p.message, options);
  } else {
    const Ctor = Object.hasOwn(BUILTIN_ERRORS, p.name) ? BUILTIN_ERRORS[p.name]! : Error;
    error = new Ctor(p.message, options);
  }
  if (p.props) {
    for (const key of Object.keys(p.props)) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
      define(error, key, restoreData(p.props[key], unpackNested), true);
    }
  }
  if (error.name !== p.name)
    Object.defineProperty(error, 'name', { value: p.name, writable: true, configurable: true });
  if (p.code !== undefined) define(error, 'code', p.code, true);
  if (p.stack !== undefined) define(error, 'stack', p.stack, false);
  if (p.dropped !== undefined) define(error, 'droppedProperties', p.dropped, true);
  return error;
}

function unpackNested(packed: unknown): Error {
  return unpack(packed as Pack, (v) => Object.assign(new Error(v.text), { value: v.value }));
}

/**
 * A cause or an aggregated item: an Error rebuilt, a non-Error the value it was (a primitive, a copy of
 * its data), or its description when it could not be read.
 */
function unpackValue(p: Pack): unknown {
  if (p.kind === 'error') return unpack(p, () => new Error());
  if (p.value !== undefined || p.type === 'undefined') return restoreData(p.value, unpackNested);
  return p.text;
}

/** The key of an Error carried as a plain value through a channel that would keep only its message. */
const CARRIED = '\u0000isoplug.carried';

/**
 * An Error thrown by a host callback, packed inside a plain object: Comlink keeps only an Error's name,
 * message and stack, but passes a thrown non-Error through structured clone as it is. Non-Errors stay
 * as they are.
 */
export function carry(thrown: unknown): unknown {
  return isErrorLike(thrown) ? { [CARRIED]: pack(thrown) } : thrown;
}

/** What `carry` packed, rebuilt; anything else as it is. */
export function uncarry(thrown: unknown): unknown {
  const packed = safe(
    () => (typeof thrown === 'object' && thrown !== null ? (thrown as Record<string, unknown>)[CARRIED] : undefined),
    undefined,
  );
  return packed === undefined ? thrown : unpack(packed as Pack, () => new Error('a non-Error was carried'));
}
