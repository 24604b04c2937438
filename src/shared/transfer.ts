/**
 * `isoplug/plugin`: what plugin code imports. `transfer(value, list)` marks a method's result so that
 * the ArrayBuffers and MessagePorts in `list` move to the host instead of being copied.
 *
 * The mark is a plain object branded with a registered symbol, not an instance of a class: a plugin
 * bundled by `isoplug build` carries its own copy of this module, and the runtime recognizes the mark
 * whichever copy made it. This file imports nothing, so bundling it costs a plugin a few lines.
 */
import type { MessagePort } from 'node:worker_threads';

/** The brand of a transfer mark: `Symbol.for('isoplug.transfer')`, the same in every copy of isoplug. */
export const TRANSFER_MARK: unique symbol = Symbol.for('isoplug.transfer') as never;

/** What can be moved with a result. */
export type Transferable = ArrayBuffer | MessagePort;

/** What `transfer()` returns; the runtime unwraps it. */
export interface TransferMark<T> {
  readonly [TRANSFER_MARK]: true;
  readonly value: T;
  readonly list: readonly Transferable[];
}

/**
 * Marks `value` so that the listed ArrayBuffers and MessagePorts (each one somewhere inside `value`:
 * at the top, in an object, an array, a Map or a Set, or as a typed array's buffer) move with it
 * instead of being copied. Return the mark itself from a plugin method (`return transfer(out,
 * [out.buffer])`) or from a host callback; a mark nested inside another value is not looked for.
 *
 * After the move the listed buffers are detached on the sending side: do not use them again. In inline
 * mode (no thread to cross) the result is checked the same way and moved within the thread, so a bad
 * list fails there too. A bad list (an item that is not an ArrayBuffer or a MessagePort, listed twice,
 * already detached, or not inside `value`) fails that one call with `ERR_PLUGIN_CLONE` (direction
 * `'result'`); the cause is a TypeError whose `code` is `ERR_TRANSFER_LIST` and whose `reason` says
 * which (`'kind'`, `'duplicate'`, `'detached'`, `'missing'`). The version keeps serving.
 *
 * Typed as `value`'s own type, so a method returning `transfer(x, …)` is typed as returning `x`.
 */
export function transfer<T>(value: T, list: readonly Transferable[]): T {
  if (!Array.isArray(list)) throw new TypeError(`transfer(value, list): list must be an array, got ${typeof list}`);
  const mark: TransferMark<T> = { [TRANSFER_MARK]: true, value, list: [...(list as readonly Transferable[])] };
  return mark as unknown as T;
}
