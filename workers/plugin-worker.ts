/**
 * The runtime inside a plugin version's worker. It takes its private port out of `workerData` before
 * the plugin is imported (plugin code can't reach it), imports the module, awaits `onLoad(data)`,
 * announces the callable methods, then serves calls. Everything it needs from the environment is
 * captured before plugin code runs, so a plugin that overwrites globals (`process`, `MessagePort`
 * methods, `Promise`) cannot change how replies travel.
 */
import { workerData, MessagePort } from 'node:worker_threads';
import { wrap, type Endpoint } from 'comlink';
import { pack } from '../src/envelope.js';
import {
  RESERVED_EXPORTS,
  Tag,
  type BootData,
  type HostMessage,
  type WorkerMessage,
} from '../src/protocol.js';

const boot = workerData as BootData;
const port = boot.port!;
boot.port = undefined;

const postMessage = MessagePort.prototype.postMessage;
const apply = Reflect.apply;
const ownKeys = Reflect.ownKeys;
const resolved = Promise.resolve.bind(Promise);

function send(message: WorkerMessage): void {
  apply(postMessage, port, [message]);
}

type Fn = (...args: unknown[]) => unknown;
const methods = new Map<string, Fn>();

/** The module's own exported functions, minus reserved names; a CommonJS `module.exports` object counts too. */
function collect(ns: Record<string, unknown>): void {
  const add = (source: Record<string, unknown>) => {
    for (const key of ownKeys(source)) {
      if (typeof key !== 'string' || RESERVED_EXPORTS.has(key) || methods.has(key)) continue;
      const value = source[key];
      if (typeof value === 'function') methods.set(key, value as Fn);
    }
  };
  add(ns);
  const def = ns['default'];
  if (def !== null && typeof def === 'object') add(def as Record<string, unknown>);
}

function hook(ns: Record<string, unknown>, name: 'onLoad' | 'onFree'): Fn | undefined {
  const own = ns[name];
  if (typeof own === 'function') return own as Fn;
  const def = ns['default'];
  if (def !== null && typeof def === 'object') {
    const fromDefault = (def as Record<string, unknown>)[name];
    if (typeof fromDefault === 'function') return fromDefault as Fn;
  }
  return undefined;
}

let onFree: Fn | undefined;

async function load(): Promise<void> {
  let ns: Record<string, unknown>;
  try {
    ns = (await import(boot.url)) as Record<string, unknown>;
  } catch (error) {
    send({ t: Tag.LoadFailed, stage: 'import', error: pack(error) });
    return;
  }
  try {
    const onLoad = hook(ns, 'onLoad');
    if (onLoad) await onLoad(boot.data);
  } catch (error) {
    send({ t: Tag.LoadFailed, stage: 'onLoad', error: pack(error) });
    return;
  }
  onFree = hook(ns, 'onFree');
  collect(ns);
  send({ t: Tag.Ready, methods: [...methods.keys()], free: onFree !== undefined });
}

/** Replaces each callback slot's MessagePort with a Comlink proxy to the host function. */
function withCallbacks(args: unknown[], slots: number[]): unknown[] {
  for (const slot of slots) {
    // Node's MessagePort is an EventTarget with start(): Comlink speaks to it directly.
    args[slot] = wrap(args[slot] as Endpoint);
  }
  return args;
}

function settle(id: number, method: string, run: () => unknown): void {
  let result: unknown;
  try {
    result = run();
  } catch (error) {
    send({ t: Tag.Err, id, e: pack(error), clone: false });
    return;
  }
  if (result !== null && (typeof result === 'object' || typeof result === 'function') && typeof (result as PromiseLike<unknown>).then === 'function') {
    resolved(result).then(
      (value) => reply(id, method, value),
      (error: unknown) => send({ t: Tag.Err, id, e: pack(error), clone: false }),
    );
  } else {
    reply(id, method, result);
  }
}

function reply(id: number, method: string, value: unknown): void {
  try {
    send({ t: Tag.Ok, id, v: value });
  } catch (error) {
    send({ t: Tag.Err, id, e: pack(error), clone: true });
  }
}

function onMessage(message: HostMessage): void {
  switch (message.t) {
    case Tag.Call: {
      const fn = methods.get(message.m);
      if (fn === undefined) {
        // The host checks names before posting; reaching here means the lists disagree.
        send({ t: Tag.Err, id: message.id, e: pack(new TypeError(`no method ${message.m}`)), clone: false });
        return;
      }
      const args = message.p === undefined ? message.a : withCallbacks(message.a, message.p);
      settle(message.id, message.m, () => apply(fn, undefined, args));
      return;
    }
    case Tag.Free: {
      const free = onFree;
      if (free === undefined) {
        send({ t: Tag.Freed, error: undefined });
        return;
      }
      resolved()
        .then(() => free())
        .then(
          () => send({ t: Tag.Freed, error: undefined }),
          (error: unknown) => send({ t: Tag.Freed, error: pack(error) }),
        );
      return;
    }
  }
}

port.on('message', onMessage);
void load();
