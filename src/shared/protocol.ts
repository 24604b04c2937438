/**
 * The wire between the host and one plugin worker. Every message is one of the types below, joined in
 * a union per direction: calls and replies are arrays (`Array.isArray`), the rest objects tagged `t`.
 * They travel on a private MessageChannel that plugin code cannot reach (the worker runtime takes its
 * port out of `workerData` before the plugin is imported), so anything arriving on the worker's public
 * `parentPort` is stray and is only counted.
 *
 * Tags are small integers: they are compared on every reply and control message.
 *
 * Lost messages. A value can serialize on one side and still fail to deserialize on the other (a
 * worker's stack is larger than the main thread's, or smaller under `resourceLimits`): the receiving
 * port then emits `messageerror` and the message, with every call or reply batched in it, is gone.
 * So both sides count the messages they post and receive on the private port. Delivery is ordered,
 * so the receiver's count (including `messageerror` events) is the lost message's sequence number,
 * and it answers `{ t: Tag.Lost, s }`:
 * - host → worker lost: the host rejects the calls that message carried, `ERR_PLUGIN_CLONE`
 *   ('argument').
 * - worker → host lost: the worker keeps the replies of each message it sent until the host confirms
 *   receipt (`k` on every host message), so it can answer: a lost batch is resent one reply at a
 *   time; a lost single reply becomes an `Err` with `clone: true` ('result'). That error is never
 *   kept, so it is never resent: a loss cannot loop.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Pack } from './envelope.js';
import type { EndingHostMessage, EndingWorkerMessage } from './ending-wire.js';

export const Tag = {
  /** host → worker: run `onFree` (after the drain). */
  Free: 2,
  /** either way: the message with this sequence number arrived but could not be read. */
  Lost: 3,
  /** host → worker: import this module (the first message; until then the runtime only waits). */
  Load: 4,
  /**
   * host → worker (a standby, before its `Load`): compile this module now (and with `run`, run its top level
   * too); a `Load` naming the same bytes uses it.
   */
  Prepare: 5,
  /**
   * host → worker: only `k`. Sent when the host received replies and has nothing else to send, so the
   * worker drops the replies (and the results they hold) it kept for a possible loss.
   */
  Ack: 6,
  /** worker → host: the module is imported and `onLoad` resolved. */
  Ready: 10,
  /** worker → host: import or `onLoad` failed. */
  LoadFailed: 11,
  /** in a reply (`Replies`): a call resolved. */
  Ok: 12,
  /** in a reply (`Replies`): a call threw or rejected, or its result could not be cloned. */
  Err: 13,
  /** worker → host: `onFree` finished (or threw). */
  Freed: 14,
  /** worker → host: the isolate's ArrayBuffers passed `maxArrayBufferMb`; the host ends the version. */
  OverLimit: 15,
  /** worker → host: V8's cached data of the module, made after the load (`CodeLoad.harvest`). */
  CodeCache: 16,
  /** worker → host: the module is imported (`onLoad` runs next): the version's boot slot can go to the next load. */
  Imported: 17,
  /** worker → host: the module of a `Prepare` is compiled (and run, or it threw: its `Load` fails with that). */
  Prepared: 18,
} as const;

/**
 * Calls and replies travel flattened, several per message: V8 clones an array of plain values several
 * times faster than one small object per call (a batch of 64 calls: about 20 µs instead of 100 µs to
 * post and read), and they are most of the traffic. Control messages are objects tagged `t`.
 *
 * host → worker, `Calls`: `[k, ...calls]`, 5 entries per call: id (unique per version), method
 * name (the host checked it against the `Ready` list), arguments (a slot listed in the callback slots
 * holds a MessagePort for a host callback), callback slots (`number[]` or undefined), hook flag (1 for
 * a lifecycle hook call: the PluginManager's `reloadable`, `onInit`, and the runtime's own `HOOK_SERVE`;
 * the worker looks the name up among the hooks listed in `Ready.hooks`, never among methods; else
 * undefined). The calls made in one tick for one thread travel in one message, in order; a call with a
 * transfer list travels alone, and a batch that cannot be cloned is sent again one call per message.
 */
export type Calls = [k: number, ...calls: unknown[]];
const CALL_SLOTS = 5;

/** The hook flag of a call: 1 for a lifecycle hook call, else undefined. */
export type HookFlag = 1 | undefined;

/**
 * worker → host, `Replies`: 3 entries per reply: `Tag.Ok`, id, value; or `Tag.Err`, id,
 * `ErrReply`. The replies settled in one tick travel together, up to 16 per message (the worker runtime's
 * REPLIES_PER_MESSAGE: a stream of calls keeps both threads working instead of trading one big batch).
 */
export type Replies = unknown[];
const REPLY_SLOTS = 3;

/**
 * What every host message carries: `k`, how many worker messages the host has received so far (read
 * or lost). The worker drops the replies it kept for its messages up to `k`. The host's send sets it
 * as the message leaves (messages are built with 0); in `Calls` it is the first entry.
 */
export interface Acknowledging {
  k: number;
}

/** The first message to a worker: the module it serves, and what the runtime needs to serve it. */
export interface LoadMessage extends Acknowledging {
  readonly t: typeof Tag.Load;
  /** The plugin module's file URL. */
  readonly url: string;
  /** Passed to `onLoad(data)`. */
  readonly data: unknown;
  /** `maxPayloadBytes`: results above it fail their call (undefined: no check). */
  readonly maxPayloadBytes: number | undefined;
  /** `maxArrayBufferMb` in bytes (undefined: not watched). */
  readonly maxArrayBufferBytes: number | undefined;
  /** Set when the module is compiled from these bytes (with the code cache) instead of imported from `url`. */
  readonly code?: CodeLoad | undefined;
  /**
   * Where Node's own compile cache keeps the code of an imported module and its imports (Node 22.1+,
   * `module.enableCompileCache`); undefined: not used.
   */
  readonly compileCacheDir?: string | undefined;
}

/** What the code cache says of a version's load (`'off'`: not used, the module was imported). */
export type CodeCacheStatus = 'hit' | 'miss' | 'rejected' | 'off';

/**
 * A CommonJS module compiled by the runtime with `vm.Script`: the bytes the host read and hashed (never a
 * second read of the file, which may have changed), and V8's cached data when the cache had an entry.
 */
export interface CodeLoad {
  /** The module's path: its `__filename`, and the name in stack traces. */
  readonly filename: string;
  /** The SHA-256 of the source bytes (hex): a prepared module is used only for the same bytes. */
  readonly digest: string;
  /** The source bytes, then the cached data: one buffer for every thread of the version. */
  readonly buffer: SharedArrayBuffer;
  readonly sourceBytes: number;
  /** 0: no cached data (a miss). */
  readonly cacheBytes: number;
  /**
   * Set for one thread only: after its `Ready` it posts a `CodeCacheMessage`, with the cached data it made
   * after a miss or a rejection (none after a hit).
   */
  readonly harvest: boolean;
}

export interface CodeCacheMessage {
  readonly t: typeof Tag.CodeCache;
  readonly data: Uint8Array | undefined;
}

export interface FreeMessage extends Acknowledging {
  readonly t: typeof Tag.Free;
}

/**
 * Either way: the receiver's port emitted `messageerror` for the `s`-th message on the private port
 * (counted from 1, in the order the sender posted them). Sent by the host it also carries `k`.
 */
export interface LostMessage {
  readonly t: typeof Tag.Lost;
  readonly s: number;
}

/** A hot swap's standby compiles the next version ahead of the swap (`HotSwap.prepare`); nothing of it runs yet. */
export interface PrepareMessage extends Acknowledging {
  readonly t: typeof Tag.Prepare;
  readonly code: CodeLoad;
  /** Run the module's top level too (not `onLoad`): the worker can then serve only these bytes. */
  readonly run: boolean;
}

export interface PreparedMessage {
  readonly t: typeof Tag.Prepared;
}

export interface AckMessage extends Acknowledging {
  readonly t: typeof Tag.Ack;
}

export type HostMessage =
  LoadMessage | PrepareMessage | Calls | FreeMessage | AckMessage | (LostMessage & Acknowledging) | EndingHostMessage;

export interface ImportedMessage {
  readonly t: typeof Tag.Imported;
}

export interface ReadyMessage {
  readonly t: typeof Tag.Ready;
  /** The callable methods: the module's own exported functions minus reserved names. */
  readonly methods: string[];
  /** Whether the module exports `onFree`. */
  readonly free: boolean;
  /** The hooks a call with the hook flag may name: `reloadable`/`onInit` when exported, and `HOOK_SERVE`. */
  readonly hooks: string[];
  /** The module's `dependencies` export when it is an array of strings (else empty). */
  readonly dependencies: string[];
  /** How the code cache served this worker's load. */
  readonly code: CodeCacheStatus;
}

export interface LoadFailedMessage {
  readonly t: typeof Tag.LoadFailed;
  readonly stage: 'import' | 'onLoad';
  readonly error: Pack;
}

/** The third entry of a `Tag.Err` reply. */
export interface ErrReply {
  readonly e: Pack;
  /** Set when the method returned, but its result could not be cloned (or the host could not read it). */
  readonly clone: boolean;
  /** Set when the result was larger than `maxPayloadBytes` (then `clone` is false and `e` says so). */
  readonly tooLarge?: true;
}

export interface OverLimitMessage {
  readonly t: typeof Tag.OverLimit;
  /** ArrayBuffer bytes held by the isolate when the limit was passed. */
  readonly bytes: number;
  readonly limit: number;
}

export interface FreedMessage {
  readonly t: typeof Tag.Freed;
  readonly error: Pack | undefined;
  /** Servers and sockets the plugin still had open after `onFree`: ending the worker cuts them. */
  readonly open: number;
}

export type WorkerMessage =
  | Replies
  | ReadyMessage
  | LoadFailedMessage
  | FreedMessage
  | OverLimitMessage
  | LostMessage
  | CodeCacheMessage
  | EndingWorkerMessage
  | ImportedMessage
  | PreparedMessage;

/**
 * What the host puts in `workerData`: only the private port, which the runtime deletes before it
 * imports the plugin. The module comes later, in the `Load` message, so a worker can boot before its
 * version is known (a hot swap's standby).
 */
export interface BootData {
  port: MessagePort | undefined;
}

/**
 * The runtime's own hook: `(port)` starts serving the module's methods to a peer plugin on `port`
 * (the PluginManager's direct channels between plugins). Not a valid export name, so never a plugin's.
 */
export const HOOK_SERVE = 'isoplug:serve';

/*
 * The codec: the one place that knows the flat layout of `Calls` and `Replies` (the rest of the house
 * speaks in ids, methods and values). The worker runtime uses it after plugin code has run, so it only
 * reads and writes indexes and calls the functions it is given: no Array.prototype method, nothing a
 * plugin can replace.
 */

const isArray = Array.isArray;

/** One call, as `forEachCall` hands it over. */
export type CallVisitor = (
  id: number,
  method: string,
  args: unknown[],
  slots: number[] | undefined,
  hook: HookFlag,
) => void;

/** One reply, as `forEachReply` hands it over: a result, or why the call failed. */
export type ReplyVisitor = (
  ...reply: [tag: typeof Tag.Ok, id: number, value: unknown] | [tag: typeof Tag.Err, id: number, value: ErrReply]
) => void;

/** Appends a call to a batch; returns how many calls the batch holds now. */
export function pushCall(
  batch: Calls,
  id: number,
  method: string,
  args: unknown[],
  slots: number[] | undefined,
  hook: HookFlag,
): number {
  const at = batch.length;
  batch[at] = id;
  batch[at + 1] = method;
  batch[at + 2] = args;
  batch[at + 3] = slots;
  batch[at + 4] = hook;
  return (at + CALL_SLOTS - 1) / CALL_SLOTS;
}

/** A message holding one call. */
export function callMessage(
  id: number,
  method: string,
  args: unknown[],
  slots: number[] | undefined,
  hook: HookFlag,
): Calls {
  return [0, id, method, args, slots, hook];
}

/** How many calls a batch holds. */
export function callCount(batch: Calls): number {
  return (batch.length - 1) / CALL_SLOTS;
}

/** Visits the calls of a message, in order. */
export function forEachCall(message: Calls, visit: CallVisitor): void {
  for (let i = 1; i < message.length; i += CALL_SLOTS) {
    visit(
      message[i] as number,
      message[i + 1] as string,
      message[i + 2] as unknown[],
      message[i + 3] as number[] | undefined,
      message[i + 4] as HookFlag,
    );
  }
}

/** `Tag.Ok` or `Tag.Err`: the first entry of a reply. */
export type ReplyTag = typeof Tag.Ok | typeof Tag.Err;

/** Appends a reply (`value`: the result for `Tag.Ok`, an `ErrReply` for `Tag.Err`); returns how many the batch holds now. */
export function pushReply(batch: Replies, tag: ReplyTag, id: number, value: unknown): number {
  const at = batch.length;
  batch[at] = tag;
  batch[at + 1] = id;
  batch[at + 2] = value;
  return at / REPLY_SLOTS + 1;
}

/** A message holding one reply. */
export function replyMessage(tag: ReplyTag, id: number, value: unknown): Replies {
  return [tag, id, value];
}

/** How many replies a message holds. */
export function replyCount(message: Replies): number {
  return message.length / REPLY_SLOTS;
}

/** Visits the replies of a message, in order. */
export function forEachReply(message: Replies, visit: ReplyVisitor): void {
  const untyped = visit as (tag: unknown, id: number, value: unknown) => void;
  for (let i = 0; i < message.length; i += REPLY_SLOTS) untyped(message[i], message[i + 1] as number, message[i + 2]);
}

/** Stamps a host message with `k` as it leaves (see `Acknowledging`). */
export function stampAck(message: HostMessage, k: number): void {
  if (isArray(message)) message[0] = k;
  else message.k = k;
}

/** The `k` a host message carries. */
export function ackOf(message: HostMessage): number {
  return isArray(message) ? message[0] : message.k;
}
