/**
 * The runtime inside a plugin version's worker. It takes its private port out of `workerData` before
 * the plugin is imported (plugin code can't reach it) and waits for the `Load` message, which names
 * the module (a worker can boot before its version is known: a hot swap's standby). Then it imports
 * the module, awaits `onLoad(data)`, announces the callable methods, and serves calls. Everything it needs from the environment is
 * captured before plugin code runs, so a plugin that overwrites globals (`process`, `MessagePort`
 * methods, `Promise`) cannot change how replies travel.
 */
import { AsyncResource } from 'node:async_hooks';
import { workerData, MessagePort } from 'node:worker_threads';
import { wrap, type Endpoint } from 'comlink';
import { getHeapStatistics } from 'node:v8';
import { pack, uncarry } from '../src/shared/envelope.js';
import { exceedsBytes } from '../src/shared/size.js';
import type { InitDescriptor } from '../src/shared/peer-wire.js';
import { buildContext, servePeer } from '../src/shared/plugin-context.js';
import { compileModule, enableCompileCache, harvest, prepareAhead, type Compiled, type Prepared } from './compile.js';
import { hideHandleLists } from './handles.js';
import { checkTransfer, readMark } from '../src/shared/transfer-check.js';
import { importNamespace, readHook, readSurface, type Fn, type Namespace } from '../src/shared/module-surface.js';
import {
  HOOK_SERVE,
  Tag,
  ackOf,
  forEachCall,
  forEachReply,
  pushReply,
  replyCount,
  replyMessage,
  type HookFlag,
  type ReplyTag,
  type BootData,
  type CodeCacheStatus,
  type Calls,
  type ErrReply,
  type HostMessage,
  type LoadMessage,
  type Replies,
  type WorkerMessage,
} from '../src/shared/protocol.js';
import { EndTag } from '../src/shared/ending-wire.js';
import { installEnding } from './ending.js';

const boot = workerData as BootData;
const port = boot.port!;
boot.port = undefined;
// Best effort, against accidents rather than intent (plugins are trusted code, see the README's threat
// model): the private port is not in workerData, not among the handles a plugin can list, and calls run
// in an async scope of their own, so `executionAsyncResource()` inside a plugin is not the port.
const openSockets = hideHandleLists(); // the servers and sockets still open after onFree (handles.ts)
const callScope = new AsyncResource('isoplug.call');
// Captured unbound on purpose and called with Reflect.apply: plugin code may replace the prototypes' methods later.
// eslint-disable-next-line @typescript-eslint/unbound-method -- called with Reflect.apply and the port as `this`
const postMessage = MessagePort.prototype.postMessage;
const apply = Reflect.apply;
// eslint-disable-next-line @typescript-eslint/unbound-method -- called with Reflect.apply and the promise as `this`
const promiseThen = Promise.prototype.then;
const isArray = Array.isArray;
// eslint-disable-next-line @typescript-eslint/unbound-method -- called with Reflect.apply and the map as `this`
const mapGet = Map.prototype.get;
// eslint-disable-next-line @typescript-eslint/unbound-method -- called with Reflect.apply and the resource as `this`
const runInScope = AsyncResource.prototype.runInAsyncScope;
/**
 * Runs `fn` on a later microtask (once per outbox, not per call). An `await`, not queueMicrotask (whose
 * AsyncResource goes through a prototype method plugin code can replace) nor `.then()` (looked up on
 * the prototype, and its species too): `await` on a plain value uses the engine's own Promise.
 */
function enqueue(fn: () => void): void {
  void later(fn);
}
async function later(fn: () => void): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/await-thenable -- the engine's own microtask, see above
  await undefined;
  fn();
}

/** Messages posted to the host on the private port; the n-th is message n (see protocol.ts: lost messages). */
let sent = 0;
/** Messages received from the host on the private port, read or lost (`messageerror`). */
let received = 0;
/**
 * The replies each message we sent carried, by sequence number, until the host confirms it received
 * that message (`k` on its messages): if the host could not read one, it says so (`Lost`) and the
 * replies are sent again. So the last unacknowledged replies (and the results they hold) stay here
 * until the host's next message.
 */
const kept = new Map<number, Replies>();

/** Every message to the host on the private port goes through here. Throws what postMessage throws (then nothing was sent or counted). */
function post(message: WorkerMessage, transferList?: readonly unknown[]): number {
  apply(postMessage, port, transferList === undefined ? [message] : [message, transferList]);
  return ++sent;
}

/** A control message: the replies settled before it go first. */
function send(message: WorkerMessage): void {
  flush();
  post(message);
}

// Output, child processes and the last words of a crash: installed before any plugin code runs.
const ending = installEnding(post, send);

/** Replies settled in the same tick travel in one message (protocol.ts: `Replies`), up to REPLIES_PER_MESSAGE. */
let outbox: Replies = [];
/**
 * Past this many replies in the outbox, they leave at once: the host settles them (and its callers make
 * their next calls) while we serve the rest. Without it, 64 calls kept in flight cross as one batch each
 * way in lockstep, each thread idle while the other works (half the throughput of raw postMessage on
 * two idle cores).
 */
const REPLIES_PER_MESSAGE = 16;

/** From the `Load` message: `maxPayloadBytes` and `maxArrayBufferMb` (in bytes), undefined when unset. */
let maxPayloadBytes: number | undefined;
let maxArrayBufferBytes: number | undefined;

function ok(id: number, result: unknown): void {
  // transfer(value, list): reading the mark, and checking its list, runs plugin code (a getter, a Proxy).
  let mark: ReturnType<typeof readMark>;
  let problem: TypeError | undefined;
  try {
    mark = readMark(result);
    if (mark !== undefined) problem = checkTransfer(mark.value, mark.list);
  } catch (error) {
    return fail(id, error);
  }
  if (problem !== undefined) return reply(Tag.Err, id, { e: pack(problem), clone: true } satisfies ErrReply);
  const value = mark === undefined ? result : mark.value;
  if (maxPayloadBytes !== undefined) {
    const refused = sized(value, maxPayloadBytes);
    if (refused !== undefined) return reply(Tag.Err, id, refused);
  }
  if (mark === undefined) reply(Tag.Ok, id, value);
  else moved(id, value, mark.list);
}

/**
 * A result with a transfer list travels alone, after the replies settled before it. Only its id is
 * kept for the loss protocol: its buffers are detached here once posted, and a lost single reply is
 * never sent again (it fails its call), so there is nothing to resend.
 */
function moved(id: number, value: unknown, list: readonly unknown[]): void {
  flush();
  let seq: number;
  try {
    seq = post(replyMessage(Tag.Ok, id, value), list);
  } catch (error) {
    // What the check cannot see (a pooled Buffer's memory on Node 22+): postMessage detaches nothing when it throws.
    post(cloneError(id, error));
    return;
  }
  kept.set(seq, replyMessage(Tag.Ok, id, undefined));
}

function fail(id: number, error: unknown): void {
  reply(Tag.Err, id, { e: pack(error), clone: false } satisfies ErrReply);
}

function reply(tag: ReplyTag, id: number, value: unknown): void {
  const replies = pushReply(outbox, tag, id, value);
  if (replies === 1) enqueue(flush);
  else if (replies === REPLIES_PER_MESSAGE) flush();
}

/** The size guard (F11) on results: an oversized result fails its call instead of being posted. */
function sized(value: unknown, limit: number): ErrReply | undefined {
  try {
    if (!exceedsBytes(value, limit)) return undefined;
  } catch (error) {
    return { e: pack(error), clone: true };
  }
  return {
    e: pack(new RangeError(`the result is larger than maxPayloadBytes (${limit})`)),
    clone: false,
    tooLarge: true,
  };
}

/**
 * The ArrayBuffer guard (F7): `resourceLimits` does not count ArrayBuffers, but the isolate's external
 * memory does. Checked after each batch of replies and on an unref'd interval; over the limit, the host
 * is told once and ends the version.
 */
let overLimit = false;
function checkArrayBuffers(): void {
  if (maxArrayBufferBytes === undefined || overLimit) return;
  const bytes = getHeapStatistics().external_memory;
  if (bytes <= maxArrayBufferBytes) return;
  overLimit = true;
  send({ t: Tag.OverLimit, bytes, limit: maxArrayBufferBytes });
}

function flush(): void {
  const batch = outbox;
  const replies = replyCount(batch);
  if (replies === 0) return;
  outbox = [];
  if (maxArrayBufferBytes !== undefined) enqueue(checkArrayBuffers);
  if (replies > 1) {
    try {
      kept.set(post(batch), batch);
      return;
    } catch {
      // A result cannot be cloned: send them one by one so only that call fails.
    }
  }
  forEachReply(batch, sendReply);
}

/** Sends one reply alone, kept until the host confirms it; a result that cannot be cloned fails its call. */
function sendReply(tag: ReplyTag, id: number, value: unknown): void {
  const message = replyMessage(tag, id, value);
  try {
    kept.set(post(message), message);
  } catch (error) {
    post(cloneError(id, error));
  }
}

/**
 * The reply for a result that cannot reach the host. It holds only a packed error (strings), and it is
 * never kept, so never sent again: a loss cannot loop.
 */
function cloneError(id: number, error: unknown): Replies {
  return replyMessage(Tag.Err, id, { e: pack(error), clone: true } satisfies ErrReply);
}

/**
 * The host could not read our message `s`. A batch is sent again one reply at a time, so only the
 * unreadable one fails; a single reply lost fails its call.
 */
function onLost(s: number): void {
  const lost = kept.get(s);
  if (lost === undefined) return;
  kept.delete(s);
  if (replyCount(lost) > 1) forEachReply(lost, sendReply);
  else forEachReply(lost, failLost);
}

/** A single reply the host could not read: its call fails (and the failure is never kept). */
function failLost(_tag: ReplyTag, id: number, _value: unknown): void {
  post(
    cloneError(
      id,
      Object.assign(new RangeError('the host could not read the result (too deeply nested for its stack?)'), {
        code: 'ERR_PLUGIN_MESSAGE_LOST',
      }),
    ),
  );
}

/** Our messages up to this one have been acknowledged. */
let acknowledged = 0;

/** The host has received our messages up to `k`: their replies need no keeping. */
function acknowledge(k: number): void {
  while (acknowledged < k) kept.delete(++acknowledged);
}

let methods: ReadonlyMap<string, Fn> = new Map();
let onFree: Fn | undefined;
/** What a Call with `h` may name (protocol.ts): the PluginManager's lifecycle hooks and the runtime's own. */
const hooks = new Map<string, Fn>();

let loading = false;

/** The next version compiled (or run) ahead on this standby (`Tag.Prepare`); dropped once `Load` came. */
let prepared: Prepared | undefined;

async function load(message: LoadMessage): Promise<void> {
  maxPayloadBytes = message.maxPayloadBytes;
  maxArrayBufferBytes = message.maxArrayBufferBytes;
  if (maxArrayBufferBytes !== undefined) setInterval(checkArrayBuffers, 100).unref();
  ending.announce();
  let ns: Namespace;
  let compiled: Compiled | undefined;
  try {
    if (message.compileCacheDir !== undefined) enableCompileCache(message.compileCacheDir);
    if (message.code === undefined) ({ ns } = await importNamespace(message.url));
    else ({ ns } = compiled = compileModule(message.code, prepared));
  } catch (error) {
    prepared = undefined;
    send({ t: Tag.LoadFailed, stage: 'import', error: pack(error) });
    return;
  }
  prepared = undefined;
  send({ t: Tag.Imported });
  try {
    const onLoad = readHook(ns, 'onLoad');
    if (onLoad) await onLoad(message.data);
  } catch (error) {
    send({ t: Tag.LoadFailed, stage: 'onLoad', error: pack(error) });
    return;
  }
  const surface = readSurface(ns);
  methods = surface.methods;
  onFree = surface.onFree;
  const { reloadable, onInit } = surface;
  if (reloadable) hooks.set('reloadable', reloadable);
  if (onInit) hooks.set('onInit', (desc) => onInit(buildContext(desc as InitDescriptor)));
  hooks.set(HOOK_SERVE, (peerPort) => servePeer(peerPort as MessagePort, methods));
  send({
    t: Tag.Ready,
    methods: [...methods.keys()],
    free: onFree !== undefined,
    hooks: [...hooks.keys()],
    dependencies: surface.dependencies,
    code: compiled?.status ?? ('off' satisfies CodeCacheStatus),
  });
  if (compiled !== undefined && message.code?.harvest === true)
    harvest(compiled, (data) => send({ t: Tag.CodeCache, data }));
}

function rethrowCarried(error: unknown): never {
  throw uncarry(error);
}

/** Replaces each callback slot's MessagePort with a Comlink proxy to the host function. */
function withCallbacks(args: unknown[], slots: number[]): unknown[] {
  for (const slot of slots) {
    // Node's MessagePort is an EventTarget with start(): Comlink speaks to it directly.
    // Called through a Proxy that rebuilds what the host function threw (src/callbacks.ts packs it);
    // everything else (release, the refused walks) reaches Comlink's own proxy unchanged.
    const remote = wrap(args[slot] as Endpoint) as unknown as (...list: unknown[]) => Promise<unknown>;
    args[slot] = new Proxy(remote, {
      apply: (target, self, list) => apply(promiseThen, apply(target, self, list), [undefined, rethrowCarried]),
    });
  }
  return args;
}

function call(id: number, fn: Fn, args: unknown[]): void {
  let result: unknown;
  let then: unknown;
  try {
    result = apply(fn, undefined, args);
    // Reading `then` runs plugin code too (a getter, a Proxy trap): a throw fails this call only.
    then =
      result !== null && (typeof result === 'object' || typeof result === 'function')
        ? (result as { then?: unknown }).then
        : undefined;
  } catch (error) {
    return fail(id, error);
  }
  if (typeof then === 'function') void settle(id, result);
  else ok(id, result);
}

/**
 * Replies once an async result settles. `await`, not `.then()`: a plugin may have replaced
 * Promise.prototype.then, and `await` on a promise does not look it up.
 */
async function settle(id: number, result: unknown): Promise<void> {
  let value: unknown;
  try {
    value = await result;
  } catch (error) {
    return fail(id, error);
  }
  ok(id, value);
}

/** The calls of one message, in order (protocol.ts: `Calls`); run in `callScope`. */
function onCalls(message: Calls): void {
  forEachCall(message, onCall);
}

function onCall(id: number, name: string, args: unknown[], slots: number[] | undefined, hook: HookFlag): void {
  const fn = apply(mapGet, hook === 1 ? hooks : methods, [name]) as Fn | undefined;
  // The host checks names before posting; reaching here means the lists disagree.
  if (fn === undefined) fail(id, new TypeError(`no method ${name}`));
  else call(id, fn, slots === undefined ? args : withCallbacks(args, slots));
}

/** Runs `onFree` on a later microtask (as a call would), and says when it is done; `await` for the reason `settle` gives. */
async function runOnFree(free: Fn): Promise<void> {
  try {
    // eslint-disable-next-line @typescript-eslint/await-thenable -- the engine's own microtask, see `later`
    await undefined;
    await free();
  } catch (error) {
    return send({ t: Tag.Freed, error: pack(error), open: openSockets() });
  }
  send({ t: Tag.Freed, error: undefined, open: openSockets() });
}

function onMessage(message: HostMessage): void {
  if (isArray(message)) return void apply(runInScope, callScope, [onCalls, undefined, message]);
  switch (message.t) {
    case Tag.Free: {
      const free = onFree;
      if (free === undefined) {
        send({ t: Tag.Freed, error: undefined, open: openSockets() });
        return;
      }
      void runOnFree(free);
      return;
    }
    case Tag.Lost:
      return onLost(message.s);
    case EndTag.End:
      return ending.end(message.grace);
    case EndTag.OutAck:
      return ending.acknowledge(message.s, message.n);
    case Tag.Ack:
      // Only its `k`, read below.
      return;
    case Tag.Load:
      if (loading) return;
      loading = true;
      void load(message);
      return;
    case Tag.Prepare:
      if (loading) return;
      // Plugin code runs from here with `run`: its child processes are tracked from the start.
      if (message.run) ending.announce();
      prepared = prepareAhead(message.code, message.run);
      send({ t: Tag.Prepared });
      return;
  }
}

function handle(message: HostMessage): void {
  onMessage(message);
  // After onMessage: a `Lost` for message s arrives with k >= s, and needs what was kept for s.
  acknowledge(ackOf(message));
}

/**
 * Host messages are handled in the check phase (setImmediate), not in the port's poll-phase callback:
 * when a call then blocks the thread and the host terminates the worker, the loop's last poll still
 * reaps the children the host killed; stuck inside a poll-phase callback, it does not.
 */
const immediate = setImmediate;
let inbox: HostMessage[] = [];
function handleInbox(): void {
  const batch = inbox;
  inbox = [];
  for (let i = 0; i < batch.length; i++) handle(batch[i]!);
}
port.on('message', (message: HostMessage) => {
  received++;
  inbox[inbox.length] = message;
  if (inbox.length === 1) immediate(handleInbox);
});
port.on('messageerror', () => send({ t: Tag.Lost, s: ++received }));
