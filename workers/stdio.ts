/**
 * The version's stdout/stderr travel on the runtime's private port, not on Node's worker stdio channel.
 * Node's channel posts one message, then holds everything written until the host asks for more, and
 * `terminate()` drops what it holds (1,000 lines written in `onFree`: one arrived); it also posts all it
 * holds as one message (20 MB logged in a loop arrive as one 20 MB message). Here, per stream:
 * - each message carries at most OUT_CHUNK units;
 * - at most OUT_WINDOW units are posted before the host acknowledges them (once its sink took them):
 *   what a plugin wrote just before it hangs or dies is already posted, the host holds at most the
 *   window per stream, and past it writes wait in the plugin's own stream (backpressure);
 * - `flushOutput()` resolves once the host has acknowledged everything written so far.
 * Only `_writev` of the worker's own streams is replaced (Node writes single chunks through it too):
 * replacing `process.stdout` itself breaks Node's stdio handling in a worker.
 */
import { OUT_CHUNK, OUT_WINDOW, type StreamId } from '../src/shared/ending-wire.js';

type Chunk = { chunk: string | Uint8Array; encoding: BufferEncoding };
type Callback = (error?: Error | null) => void;
type Writev = (chunks: Chunk[], cb: Callback) => void;
/** Posts one `Out` message. */
export type OutPost = (stream: StreamId, chunks: Array<string | Uint8Array>, units: number) => void;

interface Flow {
  /** Units posted and not yet acknowledged. */
  outstanding: number;
  /** Writes waiting for the window, in order. */
  readonly blocked: Array<() => void>;
  /** Waiting for `outstanding` to reach 0. */
  readonly idle: Array<() => void>;
}

// Captured before plugin code runs: it may replace globals.
const BufferFrom = Buffer.from.bind(Buffer);
// eslint-disable-next-line @typescript-eslint/unbound-method -- called with Reflect.apply
const copyBytes = Uint8Array.prototype.slice;
const apply = Reflect.apply;
const streams = [process.stdout, process.stderr] as const;
const flows: Flow[] = [];
const proc = process as unknown as { _exiting?: boolean };
const exiting = (): boolean => proc._exiting === true;

/**
 * Splits what one `_writev` got into pieces of at most OUT_CHUNK units that clone cheaply: a view of a
 * larger ArrayBuffer would clone the whole buffer, so views are copied.
 */
function pieces(chunks: readonly Chunk[]): Array<string | Uint8Array> {
  const out: Array<string | Uint8Array> = [];
  for (const { chunk, encoding } of chunks) {
    const utf8 = typeof chunk === 'string' && (encoding === 'utf8' || encoding === 'utf-8' || encoding === undefined);
    if (utf8 && chunk.length <= OUT_CHUNK) {
      out.push(chunk);
      continue;
    }
    const bytes = typeof chunk === 'string' ? BufferFrom(chunk, encoding) : chunk;
    for (let at = 0; at < bytes.length; at += OUT_CHUNK) {
      out.push(apply(copyBytes, bytes, [at, Math.min(at + OUT_CHUNK, bytes.length)]));
    }
  }
  return out;
}

/** Installs the transport on stdout and stderr; call before any plugin code runs. */
export function routeOutput(post: OutPost): void {
  streams.forEach((stream, index) => {
    const flow: Flow = { outstanding: 0, blocked: [], idle: [] };
    flows.push(flow);
    const id = (index + 1) as StreamId;
    const send = (parts: Array<string | Uint8Array>, from: number, cb: Callback): void => {
      let i = from;
      while (i < parts.length) {
        const message: Array<string | Uint8Array> = [];
        let units = 0;
        while (i < parts.length && (message.length === 0 || units + parts[i]!.length <= OUT_CHUNK)) {
          const part = parts[i++]!;
          message.push(part);
          units += part.length;
        }
        flow.outstanding += units;
        post(id, message, units);
        // On exit nothing will acknowledge: post the rest at once (the host reads the port after the exit).
        if (flow.outstanding > OUT_WINDOW && !exiting()) {
          const rest = i;
          flow.blocked.push(() => send(parts, rest, cb));
          return;
        }
      }
      cb();
    };
    const writev: Writev = (chunks, cb) => send(pieces(chunks), 0, cb);
    (stream as unknown as { _writev: Writev })._writev = writev;
  });
}

/** The host's sink took `units` of `stream`. */
export function acknowledgeOutput(stream: StreamId, units: number): void {
  const flow = flows[stream - 1];
  if (flow === undefined) return;
  flow.outstanding -= units;
  while (flow.blocked.length > 0 && flow.outstanding <= OUT_WINDOW) flow.blocked.shift()!();
  if (flow.outstanding === 0) for (const done of flow.idle.splice(0)) done();
}

/** Posts everything waiting for the window at once: the worker is exiting, the host reads what was posted. */
export function releaseOutput(): void {
  for (const flow of flows) while (flow.blocked.length > 0) flow.blocked.shift()!();
}

/** Resolves once the host has acknowledged everything written to stdout and stderr so far. */
export function flushOutput(): Promise<void> {
  return Promise.all(
    streams.map(
      (stream, i) =>
        new Promise<void>((resolve) => {
          const flow = flows[i]!;
          const whenIdle = (): void => {
            if (flow.outstanding === 0) resolve();
            else flow.idle.push(resolve);
          };
          if (stream.destroyed || stream.writableEnded) return whenIdle();
          // What the stream itself still buffers goes first: write callbacks run in order.
          stream.write('', whenIdle);
        }),
    ),
  ).then(() => undefined);
}
