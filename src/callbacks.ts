/**
 * Host callbacks: a function passed as an argument wrapped in `proxy(fn)` reaches the plugin as a
 * Comlink proxy on its own MessagePort. Comlink alone would let the plugin walk the function
 * (`cb.constructor.constructor('…')` runs code in the host, `cb.__proto__.x = 1` pollutes it), so the
 * port is filtered: only a plain call of the function itself with cloneable arguments, and release,
 * get through. Anything else is answered with an error. Ports are unref'd (an idle plugin holding a
 * callback does not keep the host alive) and tracked so the version closes them when it ends.
 *
 * Why Comlink here, and not the calls' own wire. Measured (`npm run bench -- callbacks`, 2 cores, a
 * busy machine, medians of 11 interleaved rounds, two runs): one invocation plugin → host → plugin
 * costs 168–195 µs through this port, 106–119 µs with bare Comlink, 56–69 µs as a tagged request/reply
 * on a worker's one port; a call passing a callback that the plugin invokes once costs 772–955 µs
 * against 121–145 µs for the same call without one (the channel, its transfer, the call travelling
 * alone). So the wire would be 2.5–3.5× cheaper per invocation. We keep Comlink because what it does
 * besides the transport is the hard part:
 * each callback is a proxy with a lifetime of its own (released by the plugin, or by Comlink's
 * FinalizationRegistry when the worker drops it, and closed with the version), and its traffic stays
 * off the private wire, whose lost-message accounting and acknowledgements (protocol.ts) cover calls
 * and replies only. A calls-wire callback would need a handle table, release on the worker's GC,
 * hardening against replaced prototypes, and a place in the loss protocol. Callbacks are off the hot
 * path: a call without one pays only the `isCallback` check per argument. When a workload needs chatty
 * callbacks (progress, streaming chunks), that is the change to make, with these figures to beat.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { expose, proxyMarker, transfer as comlinkTransfer, type Endpoint } from 'comlink';
import { checkTransfer, readMark } from './shared/transfer-check.js';
import { carry } from './shared/envelope.js';

/** True for a function marked with `proxy(fn)`. */
export function isCallback(value: unknown): value is (...args: unknown[]) => unknown {
  return typeof value === 'function' && (value as unknown as Record<symbol, unknown>)[proxyMarker] === true;
}

interface ComlinkMessage {
  id?: unknown;
  type?: unknown;
  path?: unknown;
  argumentList?: unknown;
}

function allowed(data: ComlinkMessage): boolean {
  if (data.type === 'RELEASE') return true;
  if (data.type !== 'APPLY' || !Array.isArray(data.path) || data.path.length !== 0) return false;
  const args = data.argumentList;
  return (
    Array.isArray(args) &&
    args.every((a) => a !== null && typeof a === 'object' && (a as { type?: unknown }).type === 'RAW')
  );
}

const DENIED = 'only calling the callback with cloneable arguments is allowed';

/**
 * A callback's result marked with `transfer()` moves to the plugin (Comlink's transfer) after the same
 * check as a plugin's result; a bad list rejects the plugin's call of the callback with that TypeError.
 */
function settleCallback(result: unknown): unknown {
  const mark = readMark(result);
  if (mark === undefined) return result;
  const problem = checkTransfer(mark.value, mark.list);
  if (problem !== undefined) throw problem;
  return comlinkTransfer(mark.value, mark.list as Parameters<typeof comlinkTransfer>[1]);
}

/** Exposes `fn` on a fresh channel; returns the port to send to the worker. */
export function exposeCallback(fn: (...args: unknown[]) => unknown, ports: Set<MessagePort>): MessagePort {
  const { port1, port2 } = new MessageChannel();
  const target = {
    // An Error it throws travels packed (carry), so that its class, code, cause and data arrive.
    call: async (...args: unknown[]) => {
      try {
        return settleCallback(await Reflect.apply(fn, undefined, args));
      } catch (error) {
        throw carry(error);
      }
    },
    denied: () => {
      throw new TypeError(DENIED);
    },
  };
  const listeners = new Map<unknown, (data: ComlinkMessage) => void>();
  const endpoint: Endpoint = {
    postMessage: (message: unknown, transfer?: unknown[]) => port1.postMessage(message, transfer as MessagePort[]),
    addEventListener: (_type: string, listener: unknown) => {
      const onMessage = (data: ComlinkMessage) => {
        const safe: ComlinkMessage =
          data !== null && typeof data === 'object' && allowed(data)
            ? { ...data, path: data.type === 'APPLY' ? ['call'] : [] }
            : { id: (data as ComlinkMessage | null)?.id, type: 'APPLY', path: ['denied'], argumentList: [] };
        (listener as (ev: { data: ComlinkMessage }) => void)({ data: safe });
        // Comlink answers a release from a microtask; close the port once that reply is out.
        if (safe.type === 'RELEASE') setImmediate(() => port1.close());
      };
      listeners.set(listener, onMessage);
      port1.on('message', onMessage);
      port1.unref();
    },
    removeEventListener: (_type: string, listener: unknown) => {
      const onMessage = listeners.get(listener);
      if (onMessage) port1.off('message', onMessage);
    },
  };
  expose(target, endpoint);
  ports.add(port1);
  port1.once('close', () => ports.delete(port1));
  return port2;
}
