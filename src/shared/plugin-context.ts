/**
 * The plugin's side of the PluginManager: builds the `ctx` a plugin's `onInit(ctx)` receives (the vault
 * facade and the proxies of its dependencies) and serves the plugin's methods to its dependents.
 * Runs inside a plugin's worker, and in the host thread in inline (debug) mode: so it lives in the
 * shared layer, which imports neither side.
 *
 * The facades are built here from names only: null prototype, own function members, frozen. There is
 * no object of the host behind them to walk (`services.constructor`, `services.__proto__` are
 * undefined; `services.fn.constructor` is this isolate's own `Function`), and the host answers only
 * the names it listed (src/manager/vault.ts).
 */
import type { MessagePort } from 'node:worker_threads';
import { unpack } from './envelope.js';
import { ManagerPeerClosedError, PluginNoMethodError, PluginNonErrorThrownError } from './errors.js';
import type { Fn } from './module-surface.js';
import { serveWire, type InitDescriptor, type WireReply, type WireRequest } from './peer-wire.js';

const apply = Reflect.apply;

/** The sending half of a wire: `request()` posts and resolves with the reply; a closed port rejects everything pending. */
function client(
  port: MessagePort,
  peer: string,
): (op: WireRequest['op'], name: string, args: unknown[]) => Promise<unknown> {
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void; name: string }>();
  let closed = false;
  let nextId = 0;
  const closedError = (name: string) =>
    new ManagerPeerClosedError(`${peer} is gone; ${name}() refused`, { pluginName: peer, method: name });
  port.on('message', (reply: WireReply) => {
    const call = pending.get(reply.id);
    if (call === undefined) return;
    pending.delete(reply.id);
    if (pending.size === 0) port.unref();
    if (reply.ok) call.resolve(reply.v);
    else
      call.reject(
        unpack(
          reply.e,
          (v) =>
            new PluginNonErrorThrownError(`${call.name} threw a non-Error value: ${v.text}`, {
              pluginName: peer,
              method: call.name,
              value: v.value,
            }),
        ),
      );
  });
  port.on('close', () => {
    closed = true;
    for (const call of pending.values()) call.reject(closedError(call.name));
    pending.clear();
  });
  // Referenced only while a request is outstanding: an awaited request keeps the thread alive (in
  // inline mode, both ends are in the host), an idle channel never does.
  port.unref();
  return (op, name, args) => {
    if (closed) return Promise.reject(closedError(name));
    const id = ++nextId;
    return new Promise((resolve, reject) => {
      try {
        port.postMessage({ id, op, name, a: args } satisfies WireRequest);
      } catch (error) {
        return reject(error);
      }
      pending.set(id, { resolve, reject, name });
      if (pending.size === 1) port.ref();
    });
  };
}

/** A frozen null-prototype object with exactly `names` as own async function members. */
function facade(
  names: readonly string[],
  request: (name: string, args: unknown[]) => Promise<unknown>,
): Record<string, Fn> {
  const target = Object.create(null) as Record<string, Fn>;
  for (const name of names) {
    Object.defineProperty(target, name, { value: (...args: unknown[]) => request(name, args), enumerable: true });
  }
  return Object.freeze(target);
}

/** Opened ports, so inline mode can close what it opened. */
export type PortSink = (port: MessagePort) => void;

/** The plugin's `ctx` from the host's descriptor. */
export function buildContext(desc: InitDescriptor, track?: PortSink): unknown {
  track?.(desc.vault);
  const vault = client(desc.vault, 'the host vault');
  const plugins = Object.create(null) as Record<string, unknown>;
  for (const peer of desc.peers) {
    track?.(peer.port);
    const request = client(peer.port, `plugin ${peer.name}`);
    plugins[peer.name] = facade(peer.methods, (name, args) => request('call', name, args));
  }
  return Object.freeze({
    vault: Object.freeze({
      services: facade(desc.services, (name, args) => vault('call', name, args)),
      get: (key: string) => vault('get', String(key), []),
      set: (key: string, value: unknown) => vault('set', String(key), [value]),
      extension: desc.extension,
    }),
    plugins: Object.freeze(plugins),
  });
}

/** Serves `methods` to a dependent on `port`: only `call` of a listed method; replies carry the result or the packed error. */
export function servePeer(port: MessagePort, methods: ReadonlyMap<string, Fn>): void {
  serveWire(port, (request) => {
    const fn = request?.op === 'call' && typeof request.name === 'string' ? methods.get(request.name) : undefined;
    if (fn === undefined)
      throw new PluginNoMethodError(`no method ${String(request?.name)}`, { method: String(request?.name) });
    return apply(fn, undefined, Array.isArray(request.a) ? request.a : []);
  });
}
