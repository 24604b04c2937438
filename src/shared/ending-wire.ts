/**
 * The part of the private wire (protocol.ts) that ends what a version started besides its heap: its
 * output, which travels on the private port instead of Node's worker stdio channel, and its child
 * processes. Kept apart from protocol.ts's call path; its messages join the unions there.
 *
 * Output (workers/stdio.ts, src/output.ts): the runtime posts `Out` with at most OUT_CHUNK units
 * (bytes, or UTF-16 code units of a string) and keeps at most OUT_WINDOW per stream unacknowledged;
 * the host answers `OutAck` once its sink took them. Ending (workers/children.ts, src/children.ts):
 * the host sends `End` after `onFree`; the runtime waits until no output is unacknowledged, ends its
 * children, and answers `Ended`. `Child` reports each child's start and exit, `Tid` the worker's OS
 * thread id (for /proc), `Fatal` an uncaught error before the runtime exits.
 */
import type { Pack } from './envelope.js';

export const EndTag = {
  /** host → worker: flush the output, end the children (SIGTERM, SIGKILL after `grace` ms), answer `Ended`. */
  End: 7,
  /** host → worker: `n` units of stream `s` were taken by the host's sink. */
  OutAck: 8,
  /** worker → host: output of stdout (1) or stderr (2). */
  Out: 21,
  /** worker → host: a child process started (`alive`) or exited. */
  Child: 22,
  /** worker → host: the output is flushed and the children are ended. */
  Ended: 23,
  /** worker → host: an uncaught error; the runtime ends the children, then exits with code 1. */
  Fatal: 24,
  /** worker → host: the worker's OS thread id (0 where /proc is missing). */
  Tid: 25,
} as const;

/** At most this many units per `Out` message. */
export const OUT_CHUNK = 64 * 1024;
/** At most this many units of one stream posted and not yet acknowledged. */
export const OUT_WINDOW = 256 * 1024;

/** 1: stdout, 2: stderr. */
export type StreamId = 1 | 2;

export interface EndMessage {
  readonly t: typeof EndTag.End;
  readonly grace: number;
  k: number;
}

export interface OutAckMessage {
  readonly t: typeof EndTag.OutAck;
  readonly s: StreamId;
  readonly n: number;
  k: number;
}

export interface OutMessage {
  readonly t: typeof EndTag.Out;
  readonly s: StreamId;
  readonly c: Array<string | Uint8Array>;
  /** The units the chunks hold (what the host acknowledges). */
  readonly n: number;
}

export interface ChildMessage {
  readonly t: typeof EndTag.Child;
  readonly pid: number;
  /** Started with `detached: true`: the leader of a process group of its own. */
  readonly detached: boolean;
  readonly alive: boolean;
}

export interface EndedMessage {
  readonly t: typeof EndTag.Ended;
  /** How many children the runtime ended. */
  readonly children: number;
}

export interface FatalMessage {
  readonly t: typeof EndTag.Fatal;
  readonly error: Pack;
}

export interface TidMessage {
  readonly t: typeof EndTag.Tid;
  readonly tid: number;
}

export type EndingHostMessage = EndMessage | OutAckMessage;
export type EndingWorkerMessage = OutMessage | ChildMessage | EndedMessage | FatalMessage | TidMessage;
