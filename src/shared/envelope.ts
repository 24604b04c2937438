/**
 * Errors cross the thread boundary in an explicit envelope: structured clone keeps only an Error's
 * message and stack (and not even its subclass, `code` or `cause` on every Node line), so the worker
 * packs what matters and the host rebuilds it. Used on both sides; no Node-only imports.
 */

/** A thrown Error, packed. */
export interface ErrorPack {
  readonly kind: 'error';
  readonly name: string;
  readonly message: string;
  readonly stack: string | undefined;
  readonly code: string | number | undefined;
  readonly cause: Pack | undefined;
  /** Other own enumerable data properties that could be cloned (errno, path, details…). */
  readonly props: Record<string, unknown> | undefined;
}

/** A thrown non-Error value, packed. */
export interface ValuePack {
  readonly kind: 'value';
  /** `typeof` of the value, or `null`. */
  readonly type: string;
  /** The value itself when it is a primitive; a short description otherwise. */
  readonly value: unknown;
  readonly text: string;
}

export type Pack = ErrorPack | ValuePack;

const MAX_CAUSE_DEPTH = 8;
const MAX_PROPS = 32;
const SKIPPED_PROPS = new Set(['name', 'message', 'stack', 'code', 'cause']);

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

function plainProps(error: object): Record<string, unknown> | undefined {
  const keys = safe(() => Object.keys(error), []);
  let props: Record<string, unknown> | undefined;
  let count = 0;
  for (const key of keys) {
    if (SKIPPED_PROPS.has(key) || count >= MAX_PROPS) continue;
    const value = safe(() => (error as Record<string, unknown>)[key], undefined);
    if (!isPrimitive(value)) continue;
    props ??= Object.create(null) as Record<string, unknown>;
    props[key] = value;
    count++;
  }
  return props;
}

/**
 * Packs anything that was thrown. Never throws itself: hostile values (throwing getters, proxies,
 * cycles) degrade to a description.
 */
export function pack(thrown: unknown, depth = 0): Pack {
  if (!isErrorLike(thrown)) {
    const type = thrown === null ? 'null' : typeof thrown;
    return { kind: 'value', type, value: isPrimitive(thrown) ? thrown : undefined, text: describe(thrown) };
  }
  const code = safe(() => (thrown as { code?: unknown }).code, undefined);
  const cause = safe(() => (thrown as { cause?: unknown }).cause, undefined);
  const hasCause = safe(() => 'cause' in thrown, false);
  return {
    kind: 'error',
    name: safe(() => String(thrown.name), 'Error'),
    message: safe(() => String(thrown.message), ''),
    stack: safe(() => (typeof thrown.stack === 'string' ? thrown.stack : undefined), undefined),
    code: typeof code === 'string' || typeof code === 'number' ? code : undefined,
    cause: hasCause && depth < MAX_CAUSE_DEPTH ? pack(cause, depth + 1) : undefined,
    props: plainProps(thrown),
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

/**
 * Rebuilds a packed Error: the built-in class when its name is one (so `instanceof TypeError` holds),
 * `Error` otherwise, with `name`, `message`, `stack`, `code`, `cause` and plain props restored.
 * A packed non-Error comes back through `onValue`, so the caller decides how to wrap it.
 */
export function unpack(p: Pack, onValue: (v: ValuePack) => Error): Error {
  if (p.kind === 'value') return onValue(p);
  const Ctor = Object.hasOwn(BUILTIN_ERRORS, p.name) ? BUILTIN_ERRORS[p.name]! : Error;
  const options = p.cause === undefined ? undefined : { cause: unpackCause(p.cause) };
  const error = new Ctor(p.message, options);
  if (p.props) {
    for (const key of Object.keys(p.props)) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
      Object.defineProperty(error, key, { value: p.props[key], enumerable: true, writable: true, configurable: true });
    }
  }
  if (error.name !== p.name) {
    Object.defineProperty(error, 'name', { value: p.name, writable: true, configurable: true });
  }
  if (p.code !== undefined) {
    Object.defineProperty(error, 'code', { value: p.code, enumerable: true, writable: true, configurable: true });
  }
  if (p.stack !== undefined) {
    Object.defineProperty(error, 'stack', { value: p.stack, writable: true, configurable: true });
  }
  return error;
}

function unpackCause(p: Pack): unknown {
  // A non-Error cause stays the plain value it was (a primitive), or its description.
  return p.kind === 'value'
    ? p.value !== undefined || p.type === 'undefined'
      ? p.value
      : p.text
    : unpack(p, () => new Error());
}
