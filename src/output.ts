/**
 * Where a version's output goes on the host (`LoadOptions.output`): the host's own stdout/stderr as
 * written (`inherit`), each line prefixed `[name@version] ` (`label`), or two Readables for the caller
 * (`pipe`). The worker posts its output on the private port (workers/stdio.ts) and waits for an
 * acknowledgement past a window: here each chunk is acknowledged once the sink took it, after its
 * `'drain'` when `write()` returned false, so a slow sink (a full pipe, a caller who does not read)
 * holds the plugin back instead of growing the host's memory.
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { StreamId } from './shared/ending-wire.js';

/** With `label`: past this many characters without a newline, the partial line is written as a line of its own. */
const MAX_PARTIAL = 1024 * 1024;

export type OutputMode = 'inherit' | 'label' | 'pipe';

/** Acknowledgements waiting for a sink's `'drain'`: one listener per sink, however many versions write to it. */
const waiting = new Map<Writable, Array<() => void>>();

function afterDrain(sink: Writable, ack: () => void): void {
  const queue = waiting.get(sink);
  if (queue !== undefined) return void queue.push(ack);
  waiting.set(sink, [ack]);
  // A sink that closes (a reader gone) never drains: what waited is let go.
  const release = (): void => {
    sink.off('drain', release);
    sink.off('close', release);
    const acks = waiting.get(sink) ?? [];
    waiting.delete(sink);
    for (const done of acks) done();
  };
  sink.on('drain', release);
  sink.on('close', release);
}

/** Writes `chunks` to `sink`; `ack` runs once the sink took them. */
function deliver(sink: Writable, chunks: ReadonlyArray<string | Uint8Array>, ack: () => void): void {
  if (sink.destroyed || sink.writableEnded) return ack();
  let ok = true;
  for (const chunk of chunks) ok = sink.write(chunk);
  if (ok && !waiting.has(sink)) ack();
  else afterDrain(sink, ack);
}

/** The output of one version: all its threads write here. */
export class VersionOutput {
  /** With `pipe`: the version's stdout and stderr (every thread's, as they arrive). */
  readonly stdout: Readable | undefined;
  readonly stderr: Readable | undefined;
  readonly #sinks: readonly [Writable, Writable];
  readonly #prefix: string | undefined;
  /** With `label`: per thread and stream, the decoder and the partial last line. */
  readonly #lines = new Map<string, { decoder: StringDecoder; partial: string }>();
  #lanes = 0;

  constructor(mode: OutputMode, label: string) {
    if (mode === 'pipe') {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      this.stdout = stdout;
      this.stderr = stderr;
      this.#sinks = [stdout, stderr];
    } else {
      this.#sinks = [process.stdout, process.stderr];
    }
    this.#prefix = mode === 'label' ? `[${label}] ` : undefined;
  }

  /** A thread now writes here (until `laneEnded`). */
  laneStarted(): void {
    this.#lanes++;
  }

  /** Output of thread `lane`; `ack` runs once the sink took it. */
  write(lane: number, stream: StreamId, chunks: ReadonlyArray<string | Uint8Array>, ack: () => void): void {
    const sink = this.#sinks[stream - 1]!;
    if (this.#prefix === undefined) return deliver(sink, chunks, ack);
    const line = this.#line(lane, stream);
    let text = line.partial;
    for (const chunk of chunks) text += typeof chunk === 'string' ? chunk : line.decoder.write(chunk);
    let cut = text.lastIndexOf('\n');
    // A line that never ends is cut, so the host holds a bounded part of it.
    if (cut < 0 && text.length > MAX_PARTIAL) {
      text += '\n';
      cut = text.length - 1;
    }
    line.partial = text.slice(cut + 1);
    if (cut < 0) return ack();
    const prefix = this.#prefix;
    deliver(sink, [prefix + text.slice(0, cut).replaceAll('\n', `\n${prefix}`) + '\n'], ack);
  }

  /** Thread `lane` is gone: its partial lines are written; once every thread is gone, the pipes end. */
  laneEnded(lane: number): void {
    if (this.#prefix !== undefined) {
      for (const stream of [1, 2] as const) {
        const line = this.#lines.get(`${lane}:${stream}`);
        if (line === undefined) continue;
        const rest = line.partial + line.decoder.end();
        line.partial = '';
        if (rest !== '') deliver(this.#sinks[stream - 1]!, [`${this.#prefix}${rest}\n`], () => {});
      }
    }
    if (--this.#lanes > 0 || this.stdout === undefined) return;
    for (const sink of this.#sinks) sink.end();
  }

  #line(lane: number, stream: StreamId): { decoder: StringDecoder; partial: string } {
    const key = `${lane}:${stream}`;
    let line = this.#lines.get(key);
    if (line === undefined) {
      line = { decoder: new StringDecoder('utf8'), partial: '' };
      this.#lines.set(key, line);
    }
    return line;
  }
}

/** What a thread writes to before a version claims it (a standby boots with no module): the host's streams. */
export const hostOutput = new VersionOutput('inherit', '');
