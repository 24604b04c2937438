/**
 * The option validation primitives every entry point uses (`loadPlugin`, `plugin.with`, `close`,
 * `createHotSwap`, `swap`, `new PluginManager`, `schedule`). Each takes the option's path as the user
 * wrote it (`options.load.threads`; a positional argument by its parameter name, `specifier`, `when`)
 * and throws a `PluginOptionTypeError` for a value of the wrong kind or a `PluginOptionRangeError` for
 * one out of range, naming the path and the value: `expected …, got …`.
 */
import { PluginOptionRangeError, PluginOptionTypeError } from './shared/errors.js';

/** How a bad value is named in an error message. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return `symbol ${value.description ?? ''}`;
  if (typeof value === 'object') return 'an object';
  const primitive = value as string | number | boolean | bigint | undefined;
  return `${typeof value} ${String(primitive)}`;
}

/** Throws the type error for `option`: expected `what`, got `value`. */
export function wrongType(option: string, what: string, value: unknown): never {
  throw new PluginOptionTypeError(option, `expected ${what}, got ${typeName(value)}`);
}

/** A duration in ms: a non-negative number, `Infinity` allowed where `infinite` is true. */
export function duration(option: string, value: unknown, fallback: number, infinite = true): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) wrongType(option, 'a number of milliseconds', value);
  if (value < 0 || (!infinite && !Number.isFinite(value))) {
    throw new PluginOptionRangeError(
      option,
      `expected ${infinite ? 'a non-negative number or Infinity' : 'a finite non-negative number'}, got ${value}`,
    );
  }
  return value;
}

/** An integer of at least `min` (and at most `max`). */
export function count(option: string, value: unknown, fallback: number, min: number, max = Infinity): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) wrongType(option, 'an integer', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Infinity ? `≥ ${min}` : `from ${min} to ${max}`;
    throw new PluginOptionRangeError(option, `expected an integer ${range}, got ${value}`);
  }
  return value;
}

/** A positive size, or undefined for no limit (`Infinity` too). */
export function limit(option: string, value: unknown): number | undefined {
  if (value === undefined || value === Infinity) return undefined;
  if (typeof value !== 'number' || Number.isNaN(value)) wrongType(option, 'a number', value);
  if (!(value > 0)) throw new PluginOptionRangeError(option, `expected a positive number, got ${value}`);
  return value;
}

/** A boolean. */
export function flag(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') wrongType(option, 'a boolean', value);
  return value;
}

/** A function, or undefined. */
export function optionalFunction<F>(option: string, value: unknown): F | undefined {
  if (value !== undefined && typeof value !== 'function') wrongType(option, 'a function', value);
  return value as F | undefined;
}

/** A non-empty string, or undefined. */
export function optionalString(option: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) wrongType(option, 'a non-empty string', value);
  return value;
}

/** True for an object that is not null, an array or a function. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** An object (not null, not an array), or undefined. */
export function plainObject(option: string, value: unknown): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) wrongType(option, 'an object', value);
  return value;
}

/** Throws for the first own key of `object` that is not in `known`: `option.key: unknown option`. */
export function knownKeys(option: string, object: object, known: ReadonlySet<string>, what = 'option'): void {
  for (const key of Object.keys(object)) {
    if (!known.has(key)) throw new PluginOptionTypeError(`${option}.${key}`, `unknown ${what}`);
  }
}
