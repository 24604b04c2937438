/**
 * Results that move: recognizing `transfer()`'s mark (transfer.ts) and checking its list before it is
 * posted. postMessage alone is not enough: on every Node line a listed buffer that is not in the value
 * is detached and lost without an error (a port is moved and lost), Node 20 posts a detached listed
 * buffer without complaint, and the rest is refused with a TypeError or a DataCloneError that differs
 * by line. Checking first gives one coded failure everywhere. Used in the worker (evaluated before
 * plugin code, so the built-ins it relies on are captured then), in inline mode and for host callbacks.
 */
import { types } from 'node:util';
import { MessagePort } from 'node:worker_threads';
import { TRANSFER_MARK } from './transfer.js';

const apply = Reflect.apply;
const isArray = Array.isArray;
const { isArrayBuffer, isArrayBufferView: isView, isDataView, isMap, isSet } = types;
const ownKeys = Object.keys;
const U8 = Uint8Array;
const SetCtor = Set;
const setProto = Set.prototype;
/* eslint-disable @typescript-eslint/unbound-method -- each is called with Reflect.apply and its receiver */
const setAdd = setProto.add;
const setHas = setProto.has;
const setDelete = setProto.delete;
const setForEach = setProto.forEach;
const mapForEach = Map.prototype.forEach;
const ordinaryHasInstance = Function.prototype[Symbol.hasInstance];
const byteLength = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength')!.get!;
const typedBuffer = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype) as object,
  'buffer',
)!.get!;
const viewBuffer = Object.getOwnPropertyDescriptor(DataView.prototype, 'buffer')!.get!;
/* eslint-enable @typescript-eslint/unbound-method */

/** Why a transfer list was refused: the `reason` of the TypeError (code `ERR_TRANSFER_LIST`). */
export type TransferListReason = 'kind' | 'duplicate' | 'detached' | 'missing';

/** `{ value, list }` when `result` is a transfer mark. Throws what reading `result` throws (a getter, a Proxy). */
export function readMark(result: unknown): { value: unknown; list: readonly unknown[] } | undefined {
  if (result === null || typeof result !== 'object') return undefined;
  const mark = result as { [TRANSFER_MARK]?: unknown; value?: unknown; list?: unknown };
  if (mark[TRANSFER_MARK] !== true) return undefined;
  const list = mark.list;
  return { value: mark.value, list: isArray(list) ? list : [] };
}

function listError(reason: TransferListReason, message: string): TypeError {
  const error = new TypeError(message);
  return Object.assign(error, { code: 'ERR_TRANSFER_LIST', reason });
}

function isPort(value: unknown): value is MessagePort {
  return apply<typeof MessagePort, [unknown], boolean>(ordinaryHasInstance, MessagePort, [value]);
}

function isDetached(buffer: ArrayBuffer): boolean {
  if (apply(byteLength, buffer, []) !== 0) return false;
  try {
    // Node 20 has no ArrayBuffer.prototype.detached; a view of a detached buffer cannot be made.
    new U8(buffer);
    return false;
  } catch {
    return true;
  }
}

/**
 * Why `list` cannot move with `value`, or undefined when it can. Each item must be an ArrayBuffer (not
 * shared) or a MessagePort, listed once, not detached, and reachable from `value`; the walk stops as
 * soon as every item is found. Throws what reading `value` throws.
 */
export function checkTransfer(value: unknown, list: readonly unknown[]): TypeError | undefined {
  const wanted = new SetCtor<unknown>();
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    const buffer = isArrayBuffer(item);
    if (!buffer && !isPort(item))
      return listError(
        'kind',
        `transfer list item ${i} is not an ArrayBuffer or a MessagePort (a view? list its .buffer)`,
      );
    if (apply(setHas, wanted, [item])) return listError('duplicate', `transfer list item ${i} is listed twice`);
    if (buffer && isDetached(item)) return listError('detached', `transfer list item ${i} is a detached ArrayBuffer`);
    apply(setAdd, wanted, [item]);
  }
  // No Array or Set methods that plugin code could have replaced: an index-based stack, a counter.
  let remaining = list.length;
  const found = (item: unknown) => {
    if (apply(setDelete, wanted, [item])) remaining--;
  };
  const stack: unknown[] = [value];
  let top = 1;
  const push = (x: unknown) => void (stack[top++] = x);
  const seen = new SetCtor<object>();
  while (top > 0 && remaining > 0) {
    const v = stack[--top];
    stack[top] = undefined;
    if (v === null || typeof v !== 'object' || apply(setHas, seen, [v])) continue;
    apply(setAdd, seen, [v]);
    if (isArrayBuffer(v) || isPort(v)) found(v);
    else if (isView(v)) found(apply(isDataView(v) ? viewBuffer : typedBuffer, v, []));
    else if (isMap(v)) apply(mapForEach, v, [(x: unknown, k: unknown) => (push(k), push(x))]);
    else if (isSet(v)) apply(setForEach, v, [push]);
    else if (isArray(v)) for (let i = 0; i < v.length; i++) push(v[i]);
    else for (const key of ownKeys(v)) push((v as Record<string, unknown>)[key]);
  }
  if (remaining === 0) return undefined;
  return listError('missing', `${remaining} transfer list item(s) are not in the result (they would be lost)`);
}
