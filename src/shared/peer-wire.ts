/**
 * The PluginManager's small wires, beside the version's private channel (protocol.ts):
 * - the **vault** channel, one per plugin version: the plugin asks the host to run a service or to
 *   read/write the data bag;
 * - the **peer** channels, one per (dependent, dependency) pair: a dependent calls its dependency's
 *   methods directly, worker to worker, never through the host thread.
 * Both are plain request/reply: `{ id, op, name, a }` answered by `{ id, ok, v | e }`. The receiving
 * side checks `op` and `name` against its own lists; anything else is refused with a coded error.
 */
import type { MessagePort } from 'node:worker_threads';
import { pack, type Pack } from '../shared/envelope.js';

export interface WireRequest {
  readonly id: number;
  /** `call` a service (vault) or a method (peer); `get`/`set` a data bag key (vault only). */
  readonly op: 'call' | 'get' | 'set';
  /** The service, method or key. */
  readonly name: string;
  readonly a: unknown[];
}

export type WireReply =
  | { readonly id: number; readonly ok: true; readonly v: unknown }
  | { readonly id: number; readonly ok: false; readonly e: Pack };

/** One dependency as its dependent sees it in `onInit(ctx)`: `ctx.plugins[name]`. */
export interface PeerDescriptor {
  readonly name: string;
  readonly port: MessagePort;
  /** The dependency's callable methods: the proxy has exactly these. */
  readonly methods: string[];
}

/** The argument the host gives the `onInit` hook; the runtime turns it into the plugin's `ctx`. */
export interface InitDescriptor {
  readonly vault: MessagePort;
  /** The services' names: the facade has exactly these own members. */
  readonly services: string[];
  /** This reload's `extension()` result. */
  readonly extension: unknown;
  readonly peers: PeerDescriptor[];
}

// Captured when the module loads: in a worker that is before any plugin code runs.
const resolved = Promise.resolve.bind(Promise);

/**
 * The serving half of a wire, for both the vault (host) and peers (worker): each request is run by `run`
 * (which throws a coded error to refuse it), and answered with its result or its packed error; a result
 * that cannot be cloned is answered with the clone error. The port is unref'd: serving never holds a thread.
 */
export function serveWire(port: MessagePort, run: (request: WireRequest) => unknown): void {
  const reply = (message: WireReply) => {
    try {
      port.postMessage(message);
    } catch (error) {
      port.postMessage({ id: message.id, ok: false, e: pack(error) } satisfies WireReply);
    }
  };
  port.on('message', (request: WireRequest) => {
    const id = request?.id;
    resolved()
      .then(() => run(request))
      .then(
        (v) => reply({ id, ok: true, v }),
        (error: unknown) => reply({ id, ok: false, e: pack(error) }),
      );
  });
  port.unref();
}
