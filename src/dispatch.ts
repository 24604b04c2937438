/**
 * The call path of one version, from an accepted call to its settlement: the size guard, host
 * callbacks, the least-busy thread, the batch the call travels in, the registry of calls in flight
 * (inflight.ts) with their timeouts and signals, and the replies. It trusts its caller (the Plugin) to
 * have checked the version's state and the method's name; what it reports back are counts.
 */
import type { MessagePort } from 'node:worker_threads';
import { exposeCallback, isCallback } from './callbacks.js';
import { InFlight, type PendingCall } from './inflight.js';
import type { CallOptions } from './options.js';
import { exceedsBytes } from './shared/size.js';
import { Tag, callMessage, forEachCall, type Calls, type ReplyVisitor } from './shared/protocol.js';
import { timerDelay } from './time.js';
import type { Thread } from './thread.js';
import type { VersionErrors } from './version-errors.js';

export interface DispatchOptions {
  /** The default call timeout (already through `timerDelay`), or undefined for none. */
  readonly callTimer: number | undefined;
  /** `maxPayloadBytes`, checked before a call is sent (undefined: no check). */
  readonly maxPayloadBytes: number | undefined;
  /** 0 → 1 calls in flight, and 1 → 0. */
  readonly busy: (busy: boolean) => void;
}

export class Dispatch {
  /** Calls accepted (sent to a worker). */
  calls = 0;
  /** Accepted calls that rejected, for any reason. */
  failures = 0;
  /** Replies that answered no known call. */
  stray = 0;
  readonly #threads: readonly Thread[];
  readonly #errors: VersionErrors;
  readonly #callTimer: number | undefined;
  readonly #maxPayloadBytes: number | undefined;
  readonly #inflight: InFlight;
  /** The host ends of the callbacks' ports, closed when the version ends. */
  readonly #callbackPorts = new Set<MessagePort>();
  /**
   * Calls given up on (timeout, abort), by id, with their lane: their late replies are expected, not
   * stray, and until one arrives its thread is still busy with it (least-busy dispatch counts it).
   */
  readonly #abandoned = new Map<number, number>();
  #nextId = 0;

  constructor(threads: readonly Thread[], errors: VersionErrors, options: DispatchOptions) {
    this.#threads = threads;
    this.#errors = errors;
    this.#callTimer = options.callTimer;
    this.#maxPayloadBytes = options.maxPayloadBytes;
    this.#inflight = new InFlight({
      busy: () => options.busy(true),
      idle: () => options.busy(false),
      abort: (call) => {
        this.#abandon(call);
        call.reject(errors.aborted(call.method, call.signal?.reason));
      },
      expire: (call) => {
        this.#abandon(call);
        call.reject(errors.timeout(call.method, this.#callTimer!));
      },
    });
  }

  /** Calls in flight now, on every thread (the wait-group `close()` drains). */
  get inFlight(): number {
    return this.#inflight.size;
  }

  /** Calls given up on that a worker may still be running. */
  get abandoned(): number {
    return this.#abandoned.size;
  }

  /** Sends a call to the least busy thread; settles with its reply, or rejects coded. */
  invoke(method: string, args: unknown[], options: CallOptions | undefined, hook: boolean): Promise<unknown> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(this.#errors.abortedBeforeStart(method, signal.reason));
    if (this.#maxPayloadBytes !== undefined) {
      const refused = this.#checkPayload(method, args, this.#maxPayloadBytes);
      if (refused) return Promise.reject(refused);
    }
    const id = ++this.#nextId;
    let slots: number[] | undefined;
    let transfer: unknown[] | undefined = options?.transfer ? [...options.transfer] : undefined;
    for (let i = 0; i < args.length; i++) {
      const arg = args[i];
      if (isCallback(arg)) {
        const port = exposeCallback(arg, this.#callbackPorts);
        args[i] = port;
        (slots ??= []).push(i);
        (transfer ??= []).push(port);
      }
    }
    this.calls++;
    // The least busy thread (ties: the first). One thread: no choice to make.
    const threads = this.#threads;
    const thread = threads.length === 1 ? threads[0]! : threads[this.#inflight.leastBusy(threads.length)]!;
    // A call with a transfer list travels alone, after the calls queued before it.
    if (transfer !== undefined) thread.flush();
    // Nothing is posted while calls are queued without flushing them first (Thread.send), so this
    // call travels in the next message: the queued batch, or its own.
    const seq = thread.nextSeq;
    const timeoutMs = options?.timeoutMs;
    const promise = new Promise((resolve, reject) => {
      const call: PendingCall = {
        id,
        method,
        lane: thread.lane,
        seq,
        resolve,
        reject: (error) => {
          this.failures++;
          reject(error);
        },
        expiresAt:
          timeoutMs === undefined && this.#callTimer !== undefined ? performance.now() + this.#callTimer : undefined,
        timer: undefined,
        signal,
      };
      this.#inflight.add(call);
      const delay = timeoutMs === undefined ? undefined : timerDelay(timeoutMs);
      if (delay !== undefined) {
        call.timer = setTimeout(() => this.#giveUp(id, this.#errors.timeout(method, delay)), delay);
        call.timer.unref();
      }
    });
    const h = hook ? 1 : undefined;
    // Calls made in the same tick travel in one message.
    if (transfer === undefined) thread.enqueue(id, method, args, slots, h);
    else thread.sendCall(callMessage(id, method, args, slots, h), transfer);
    return promise;
  }

  /** One reply: the call's result, or why it failed. */
  readonly settle: ReplyVisitor = (tag, id, value) => {
    const call = this.#inflight.take(id);
    if (call === undefined) return this.#lateReply(id);
    if (tag === Tag.Ok) return call.resolve(value);
    const method = call.method;
    if (value.tooLarge) return call.reject(this.#errors.resultTooLarge(method, this.#maxPayloadBytes));
    call.reject(value.clone ? this.#errors.resultUnsendable(method, value.e) : this.#errors.remote(value.e, method));
  };

  /** The worker could not read message `s` of `thread`: the calls it carried never reached the plugin. */
  lost(thread: Thread, s: number): void {
    this.#inflight.rejectAll(
      (call) => this.#errors.argumentLost(call.method),
      (call) => call.lane === thread.lane && call.seq === s,
    );
  }

  /** A call sent alone could not be cloned: it fails, and its callbacks' ports close. */
  unsendable(message: Calls, error: unknown): void {
    forEachCall(message, (id, method, args, slots) => {
      if (slots) for (const slot of slots) (args[slot] as MessagePort).close();
      this.#inflight.take(id)?.reject(this.#errors.argumentUnsendable(method, error));
    });
  }

  /** Call `id` was sent again alone, in message `seq`. */
  resent(id: number, seq: number): void {
    const call = this.#inflight.get(id);
    if (call !== undefined) call.seq = seq;
  }

  /** Rejects every call in flight (or those `which` picks) with the error made for it; returns how many. */
  rejectAll(errorFor: (call: PendingCall) => Error, which?: (call: PendingCall) => boolean): number {
    return this.#inflight.rejectAll(errorFor, which);
  }

  /** Resolves when no call is in flight. */
  whenIdle(): Promise<void> {
    return this.#inflight.whenIdle();
  }

  /** `thread` exited: the calls it ran end, and so does what it was still running for calls given up on. */
  threadExited(thread: Thread): void {
    this.#inflight.rejectAll(
      (call) => this.#errors.terminated(call.method),
      (call) => call.lane === thread.lane,
    );
    for (const [id, lane] of this.#abandoned) {
      if (lane !== thread.lane) continue;
      this.#abandoned.delete(id);
      this.#inflight.occupy(lane, -1);
    }
  }

  /** Every worker is gone: stops the shared timer and closes the callbacks' ports. */
  end(): void {
    this.#inflight.stop();
    this.releaseCallbacks();
  }

  /**
   * Closes the host ends of the callbacks handed to this version. Node closes them when a worker exits;
   * a version that ended with a worker still blocked in a system call closes them itself.
   */
  releaseCallbacks(): void {
    for (const port of this.#callbackPorts) port.close();
    this.#callbackPorts.clear();
  }

  /** The size guard (F11): an error when the arguments would serialize to more than `limit` bytes. */
  #checkPayload(method: string, args: unknown[], limit: number): Error | undefined {
    try {
      return exceedsBytes(args, limit) ? this.#errors.argumentTooLarge(method, limit) : undefined;
    } catch (error) {
      return this.#errors.argumentUnsendable(method, error);
    }
  }

  #giveUp(id: number, error: Error): void {
    const call = this.#inflight.take(id);
    if (call === undefined) return;
    this.#abandon(call);
    call.reject(error);
  }

  /** The caller stopped waiting, but the worker may still be running the call. */
  #abandon(call: PendingCall): void {
    this.#abandoned.set(call.id, call.lane);
    this.#inflight.occupy(call.lane, 1);
  }

  /** A reply for no call in flight: a call given up on (its thread is free of it now), or stray. */
  #lateReply(id: number): void {
    const lane = this.#abandoned.get(id);
    if (lane === undefined) return void this.stray++;
    this.#abandoned.delete(id);
    this.#inflight.occupy(lane, -1);
  }
}
