/**
 * `instanceof` that holds across copies of a module: an application can load both the ESM and the CJS
 * build of a package (one dependency imports it, another requires it), and each copy has its own
 * classes. A branded class marks its prototype with a registered symbol (`Symbol.for`, one per class, the
 * same in every copy) and checks that mark in `Symbol.hasInstance`, as undici does for its errors.
 */

const kBrand = Symbol('isoplug.brand');

/** Marks `ctor`'s instances (its subclasses' too) with the registered symbol for `name`. */
export function brand(ctor: abstract new (...args: never[]) => object, name: string): void {
  const symbol = Symbol.for(`isoplug.error.${name}`);
  Object.defineProperty(ctor, kBrand, { value: symbol });
  Object.defineProperty(ctor.prototype, symbol, { value: true });
}

/** `value instanceof ctor`, by brand when `ctor` is one of ours. */
export function isInstance(ctor: object, value: unknown): boolean {
  if (!Object.hasOwn(ctor, kBrand)) return Function.prototype[Symbol.hasInstance].call(ctor, value);
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return false;
  return (value as Record<symbol, unknown>)[(ctor as Record<symbol, symbol>)[kBrand]!] === true;
}
