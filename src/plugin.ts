/**
 * One plugin version: its workers (one per thread, see thread.ts for the wire to each), the calls in
 * flight on all of them, and one state machine.
 *
 *   loading ─▶ ready ─▶ closing ─▶ closed
 *      │         │         │
 *      │         ├─────────┴──▶ crashed    (the worker died on its own)
 *      │         └─────────┴──▶ destroyed  (destroy())
 *      └──▶ (load fails: loadPlugin rejects, no handle is returned)
 *
 * Every call checks the state first (the trampoline); a call accepted while `ready` is counted in
 * flight until it settles, whichever way it settles. A worker's `exit` releases the calls it ran; any
 * worker exiting on its own crashes the version, and the version is gone when all its workers are.
 */
import { EventEmitter } from 'node:events';
import type { MessagePort } from 'node:worker_threads';
import { createApi, type CallByName, type PluginApi } from './api.js';
import { exposeCallback, isCallback } from './callbacks.js';
import { unpack, type Pack } from './shared/envelope.js';
import {
  PluginAbortedError,
  PluginCloneError,
  PluginClosedError,
  PluginCrashedError,
  PluginDestroyedError,
  PluginLoadError,
  PluginNoMethodError,
  PluginNonErrorThrownError,
  PluginOutOfMemoryError,
  PluginPayloadTooLargeError,
  PluginTerminatedError,
  PluginTimeoutError,
  type PluginErrorContext,
} from './shared/errors.js';
import { emitSafely } from './events.js';
import { exceedsBytes } from './shared/size.js';
import { InFlight, type PendingCall } from './inflight.js';
import {
  resolveCallOptions,
  resolveCloseOptions,
  DEFAULTS,
  type CallOptions,
  type CloseOptions,
  type ResolvedLoadOptions,
} from './options.js';
import {
  Tag,
  callMessage,
  forEachCall,
  forEachReply,
  type ReplyVisitor,
  type LoadFailedMessage,
  type LoadMessage,
  type ReadyMessage,
  type WorkerMessage,
} from './shared/protocol.js';
import type { ResolvedModule } from './resolve.js';
import { deadline, sleep, timerDelay, type Deadline } from './time.js';
import type { Thread, ThreadOwner } from './thread.js';

export type PluginState = 'loading' | 'ready' | 'closing' | 'closed' | 'crashed' | 'destroyed';

/** What `close()` resolves with. */
export interface CloseReport {
  readonly name: string;
  readonly version: string;
  /** How the version ended: closed by this close, or it crashed or was destroyed while closing (or before). */
  readonly outcome: 'closed' | 'crashed' | 'destroyed';
  /** True when every call in flight at close settled on its own before the deadline. */
  readonly drained: boolean;
  /** Calls in flight when close() was called. */
  readonly inFlightAtClose: number;
  /** Calls rejected `ERR_PLUGIN_TERMINATED` at the deadline. */
  readonly terminatedCalls: number;
  /** Calls that timed out or were aborted earlier and may still be running in the worker. */
  readonly abandonedCalls: number;
  /** What became of `onFree`. */
  readonly onFree: 'absent' | 'ok' | 'threw' | 'timeout' | 'skipped';
  /** The error `onFree` threw, when it threw. */
  readonly onFreeError: Error | undefined;
  /** True when every worker had exited when close() resolved; false when a terminate() was still pending (a worker blocked in a system call). */
  readonly terminated: boolean;
  readonly durationMs: number;
}

/** Per-version counters. */
export interface PluginStats {
  /** Calls accepted (sent to the worker). */
  readonly calls: number;
  /** Calls in flight now. */
  readonly inFlight: number;
  /** Accepted calls that rejected, for any reason. */
  readonly failures: number;
  /** Messages on the worker's channels that were not ours or answered no known call. */
  readonly strayMessages: number;
}

/** The per-call view returned by `plugin.with(options)`. */
export interface PluginCallView<T> {
  readonly api: PluginApi<T>;
  readonly call: CallByName<T>;
}

/** Events of a Plugin. */
export interface PluginEvents {
  state: [state: PluginState, previous: PluginState];
  crash: [error: PluginCrashedError];
  close: [report: CloseReport];
  exit: [exitCode: number];
}

const internal = Symbol('isoplug.internal');
/** @internal Calls a method with per-call options (used by HotSwap's routing). */
export const kInvoke = Symbol('isoplug.invoke');
/** @internal Calls a lifecycle hook (protocol.ts: `h`), on the same call path as methods (used by PluginManager). */
export const kHook = Symbol('isoplug.hook');
/** @internal */
export const kHasHook = Symbol('isoplug.hasHook');
/**
 * @internal Set (true) on a load error when a worker exited before it said anything: it may have died
 * before the load began (a standby that was already gone), so a load on fresh workers may succeed.
 */
export const kSilentExit = Symbol('isoplug.silentExit');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export class Plugin<T = Record<string, any>> extends EventEmitter<PluginEvents> implements AsyncDisposable {
  /** The plugin's name (`LoadOptions.name`, or the module file's base name). */
  readonly name: string;
  /** The version label (`LoadOptions.version`, or a short content hash of the module file). */
  readonly version: string;
  /** The module's file URL. */
  readonly url: string;
  /** The typed API: one async function per exported function. Not thenable. */
  readonly api: PluginApi<T>;

  #state: PluginState = 'loading';
  readonly #threads: readonly Thread[];
  /** The default call timeout, or undefined for none. */
  readonly #callTimer: number | undefined;
  /** `maxPayloadBytes`, checked before a call is sent (undefined: no check). */
  readonly #maxPayloadBytes: number | undefined;
  readonly #inflight: InFlight;
  readonly #methods = new Set<string>();
  /** The hooks a hook call may name (`Ready.hooks`). */
  readonly #hooks = new Set<string>();
  #dependencies: readonly string[] = [];
  readonly #callbackPorts = new Set<MessagePort>();
  /**
   * Calls given up on (timeout, abort), by id, with their lane: their late replies are expected, not
   * stray, and until one arrives its thread is still busy with it (least-busy dispatch counts it).
   */
  readonly #abandoned = new Map<number, number>();
  #hasOnFree = false;
  #nextId = 0;
  #calls = 0;
  #failures = 0;
  #stray = 0;
  #crash: PluginCrashedError | undefined;
  #destroyReason: unknown;
  #closing: Promise<CloseReport> | undefined;
  #closeDeadline: Deadline | undefined;
  /** The exit code of the first worker that exited: set once any worker of the version is gone. */
  #exitCode: number | undefined;
  readonly #exited: Promise<number>;
  #onExit!: (code: number) => void;
  /** While booting: how many workers are ready, and where the outcome goes. */
  #boot: { ready: number; settle: (outcome: BootOutcome) => void } | undefined;
  /** While `onFree` runs: workers yet to answer, the first error, and where the outcome goes. */
  #freeing: { pending: Set<Thread>; error: Pack | undefined; done: (error: Pack | undefined) => void } | undefined;

  /** @internal Use `loadPlugin()`. `threads`: the spawned workers the version runs on (new, or a hot swap's standby). */
  constructor(
    token: typeof internal,
    module: ResolvedModule,
    options: ResolvedLoadOptions,
    threads: readonly Thread[],
  ) {
    super();
    if (token !== internal) throw new TypeError('use loadPlugin() to create a Plugin');
    this.name = options.name ?? module.name;
    this.version = options.version ?? module.hash;
    this.url = module.url;
    this.#exited = new Promise((resolve) => (this.#onExit = resolve));
    this.#callTimer = timerDelay(options.callTimeoutMs);
    this.#maxPayloadBytes = options.maxPayloadBytes;
    this.#inflight = new InFlight({
      busy: () => this.#ref(true),
      idle: () => this.#ref(this.#state === 'loading' || this.#state === 'closing'),
      abort: (call) => {
        this.#abandon(call);
        call.reject(
          new PluginAbortedError(`${call.method}() aborted`, this.#context(call.method, call.signal?.reason)),
        );
      },
      expire: (call) => {
        this.#abandon(call);
        call.reject(this.#timeoutError(call.method, this.#callTimer!));
      },
    });
    this.api = createApi<T>(this.#methods, (method, args) => this.#invoke(method, args, undefined));
    this.#threads = threads;
    this.#threads.forEach((thread, lane) => {
      thread.attach(this.#owner, lane);
      thread.ref(true);
    });
  }

  /** `loading`, `ready`, `closing`, `closed`, `crashed` or `destroyed`. */
  get state(): PluginState {
    return this.#state;
  }

  /** Calls in flight now, on every thread (the wait-group `close()` drains). */
  get inFlight(): number {
    return this.#inflight.size;
  }

  get stats(): PluginStats {
    let stray = this.#stray;
    for (const thread of this.#threads) stray += thread.stray;
    return { calls: this.#calls, inFlight: this.#inflight.size, failures: this.#failures, strayMessages: stray };
  }

  /** The names callable on this version. */
  get methods(): readonly string[] {
    return [...this.#methods];
  }

  /** The module's `dependencies` export (an array of plugin names; empty when absent). */
  get dependencies(): readonly string[] {
    return this.#dependencies;
  }

  /** How many workers run this version (`LoadOptions.threads`). */
  get threads(): number {
    return this.#threads.length;
  }

  /** The first worker's thread id, for diagnostics. */
  get threadId(): number {
    return this.#threads[0]!.threadId;
  }

  /** Every worker's thread id: index i is thread i (least-busy dispatch breaks ties toward the lowest index). */
  get threadIds(): readonly number[] {
    return this.#threads.map((thread) => thread.threadId);
  }

  /** Resolves once every worker has exited (after close, destroy or a crash), with the first exit code. */
  get exited(): Promise<number> {
    return this.#exited;
  }

  /** Calls a method by name. Unknown or reserved names reject `ERR_PLUGIN_NO_METHOD` without reaching the worker. */
  call: CallByName<T> = ((name: string, ...args: unknown[]) => this.#invoke(name, args, undefined)) as CallByName<T>;

  /**
   * Per-call options: `plugin.with({ timeoutMs, signal, transfer }).api.method(...)` or `.call(name, ...)`.
   * Throws a TypeError for bad options.
   */
  with(options: CallOptions): PluginCallView<T> {
    const resolved = resolveCallOptions(options);
    const invoke = (method: string, args: unknown[]) => this.#invoke(method, args, resolved);
    return {
      api: createApi<T>(this.#methods, invoke),
      call: ((name: string, ...args: unknown[]) => invoke(name, args)) as PluginCallView<T>['call'],
    };
  }

  /** @internal */
  [kInvoke](method: string, args: unknown[], options: CallOptions | undefined): Promise<unknown> {
    return this.#invoke(method, args, options);
  }

  /** @internal True when the module offers lifecycle hook `name`. */
  [kHasHook](name: string): boolean {
    return this.#hooks.has(name);
  }

  /** @internal */
  [kHook](name: string, args: unknown[], options: CallOptions | undefined): Promise<unknown> {
    return this.#invoke(name, args, options, true);
  }

  #context(method?: string, cause?: unknown): PluginErrorContext {
    return { pluginName: this.name, version: this.version, method, cause };
  }

  /** The error for a call refused in the current state. */
  #refusal(method: string): Error {
    switch (this.#state) {
      case 'crashed':
        return new PluginCrashedError(`plugin ${this.name}@${this.version} crashed; ${method}() refused`, {
          ...this.#context(method, this.#crash),
          exitCode: this.#exitCode,
          state: 'crashed',
        });
      case 'destroyed':
        return new PluginDestroyedError(
          `plugin ${this.name}@${this.version} was destroyed; ${method}() refused`,
          this.#context(method, this.#destroyReason),
        );
      default:
        return new PluginClosedError(
          `plugin ${this.name}@${this.version} is ${this.#state}; ${method}() refused`,
          this.#context(method),
        );
    }
  }

  #invoke(method: string, args: unknown[], options: CallOptions | undefined, hook = false): Promise<unknown> {
    if (this.#state !== 'ready') return Promise.reject(this.#refusal(String(method)));
    if (typeof method !== 'string' || !(hook ? this.#hooks : this.#methods).has(method)) {
      return Promise.reject(
        new PluginNoMethodError(
          `plugin ${this.name}@${this.version} has no method ${String(method)}`,
          this.#context(String(method)),
        ),
      );
    }
    const signal = options?.signal;
    if (signal?.aborted) {
      return Promise.reject(
        new PluginAbortedError(`${method}() aborted before it started`, this.#context(method, signal.reason)),
      );
    }
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
    this.#calls++;
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
          this.#failures++;
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
        call.timer = setTimeout(() => this.#giveUp(id, this.#timeoutError(method, delay)), delay);
        call.timer.unref();
      }
    });
    const h = hook ? 1 : undefined;
    // Calls made in the same tick travel in one message.
    if (transfer === undefined) thread.enqueue(id, method, args, slots, h);
    else thread.sendCall(callMessage(id, method, args, slots, h), transfer);
    return promise;
  }

  /** What the threads report (see ThreadOwner). */
  readonly #owner: ThreadOwner = {
    message: (thread, message) => this.#handleMessage(thread, message),
    lost: (thread, s) => this.#lostCalls(thread, s),
    unsendable: (_thread, message, error) =>
      forEachCall(message, (id, method, args, slots) => {
        if (slots) for (const slot of slots) (args[slot] as MessagePort).close();
        this.#inflight.take(id)?.reject(
          new PluginCloneError(`${method}(): an argument cannot be sent to the plugin`, {
            ...this.#context(method, error),
            direction: 'argument',
          }),
        );
      }),
    resent: (_thread, id, seq) => {
      const call = this.#inflight.get(id);
      if (call !== undefined) call.seq = seq;
    },
    exit: (thread, code, error) => this.#handleExit(thread, code, error),
  };

  /** The worker could not read message `s` of `thread`: the calls it carried never reached the plugin. */
  #lostCalls(thread: Thread, s: number): void {
    if (this.#boot) return this.#boot.settle({ t: 'lost' });
    this.#inflight.rejectAll(
      (call) =>
        new PluginCloneError(`${call.method}(): the plugin could not read an argument (the message was lost)`, {
          ...this.#context(call.method),
          direction: 'argument',
        }),
      (call) => call.lane === thread.lane && call.seq === s,
    );
  }

  #timeoutError(method: string, ms: number): PluginTimeoutError {
    return new PluginTimeoutError(`${method}() timed out after ${ms} ms`, { ...this.#context(method), timeoutMs: ms });
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

  #handleMessage(thread: Thread, message: WorkerMessage): void {
    if (Array.isArray(message)) return forEachReply(message, this.#settle);
    switch (message.t) {
      case Tag.Ready:
      case Tag.LoadFailed:
        if (this.#boot) this.#booted(message);
        else thread.stray++;
        return;
      case Tag.Freed:
        if (this.#freeing?.pending.delete(thread)) this.#freed(message.error);
        else thread.stray++;
        return;
      case Tag.OverLimit:
        return this.#overLimit(thread, message.bytes, message.limit);
      default:
        thread.stray++;
    }
  }

  /** One reply: the call's result, or why it failed. */
  readonly #settle: ReplyVisitor = (tag, id, value) => {
    const call = this.#inflight.take(id);
    if (call === undefined) return this.#unknownReply(id);
    if (tag === Tag.Ok) return call.resolve(value);
    const method = call.method;
    if (value.tooLarge) {
      return call.reject(
        new PluginPayloadTooLargeError(`${method}(): the result is larger than maxPayloadBytes`, {
          ...this.#context(method),
          direction: 'result',
          limitBytes: this.#maxPayloadBytes,
        }),
      );
    }
    call.reject(
      value.clone
        ? new PluginCloneError(`${method}(): the result cannot be sent to the host`, {
            ...this.#context(method, this.#remoteError(value.e, method)),
            direction: 'result',
          })
        : this.#remoteError(value.e, method),
    );
  };

  /** The size guard (F11): an error when the arguments would serialize to more than `limit` bytes. */
  #checkPayload(method: string, args: unknown[], limit: number): Error | undefined {
    try {
      if (!exceedsBytes(args, limit)) return undefined;
    } catch (error) {
      return new PluginCloneError(`${method}(): an argument cannot be sent to the plugin`, {
        ...this.#context(method, error),
        direction: 'argument',
      });
    }
    return new PluginPayloadTooLargeError(`${method}(): the arguments are larger than maxPayloadBytes (${limit})`, {
      ...this.#context(method),
      direction: 'argument',
      limitBytes: limit,
    });
  }

  /** The ArrayBuffer guard (F7): a worker reported its isolate over `maxArrayBufferMb`; end it as out of memory (a crash). */
  #overLimit(thread: Thread, bytes: number, limit: number): void {
    thread.fail(
      Object.assign(
        new RangeError(`the worker holds ${bytes} bytes of ArrayBuffers, over maxArrayBufferMb (${limit} bytes)`),
        {
          code: 'ERR_PLUGIN_ARRAYBUFFER_LIMIT',
          bytes,
          limit,
        },
      ),
    );
  }

  #unknownReply(id: number): void {
    const lane = this.#abandoned.get(id);
    if (lane === undefined) return void this.#stray++;
    this.#abandoned.delete(id);
    this.#inflight.occupy(lane, -1);
  }

  /** Rebuilds what plugin code threw, tagged with where it came from. */
  #remoteError(p: Pack, method: string | undefined): Error {
    const error = unpack(
      p,
      (value) =>
        new PluginNonErrorThrownError(`${method ?? 'plugin'} threw a non-Error value: ${value.text}`, {
          ...this.#context(method),
          value: value.value,
        }),
    );
    if (!(error instanceof PluginNonErrorThrownError)) {
      Object.defineProperty(error, 'plugin', {
        value: { name: this.name, version: this.version, method },
        configurable: true,
      });
    }
    return error;
  }

  #ref(on: boolean): void {
    for (const thread of this.#threads) thread.ref(on);
  }

  #setState(next: PluginState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    emitSafely(this, 'state', next, previous);
  }

  /**
   * A worker exited. Any worker exiting on its own while the version serves is a crash of the version:
   * every call fails and the other workers are ended. Whatever path ended it, no call outlives its worker.
   */
  #handleExit(thread: Thread, code: number, cause: unknown): void {
    this.#exitCode ??= code;
    const state = this.#state;
    if (state === 'loading') {
      this.#boot?.settle({ t: 'exit', cause, silent: !thread.heard });
    } else if ((state === 'ready' || state === 'closing') && !thread.terminating) {
      const causeCode = (cause as { code?: unknown } | undefined)?.code;
      const oom = causeCode === 'ERR_WORKER_OUT_OF_MEMORY' || causeCode === 'ERR_PLUGIN_ARRAYBUFFER_LIMIT';
      const make = (method: string | undefined) => {
        const message = `plugin ${this.name}@${this.version} ${oom ? 'ran out of memory' : `exited with code ${code}`} during ${state} state${method ? ` while running ${method}()` : ''}`;
        const context = { ...this.#context(method, cause), exitCode: code, state };
        return oom ? new PluginOutOfMemoryError(message, context) : new PluginCrashedError(message, context);
      };
      this.#crash = make(undefined);
      this.#setState('crashed');
      this.#inflight.rejectAll((call) => make(call.method));
      for (const other of this.#threads) if (other !== thread) void other.terminate(DEFAULTS.terminateTimeoutMs);
      emitSafely(this, 'crash', this.#crash);
    }
    this.#inflight.rejectAll(
      (call) =>
        new PluginTerminatedError(
          `${call.method}() was running when plugin ${this.name}@${this.version} ended`,
          this.#context(call.method),
        ),
      (call) => call.lane === thread.lane,
    );
    if (this.#freeing?.pending.delete(thread)) this.#freed(undefined);
    for (const [id, lane] of this.#abandoned) {
      if (lane !== thread.lane) continue;
      this.#abandoned.delete(id);
      this.#inflight.occupy(lane, -1);
    }
    if (!this.#threads.every((other) => other.gone)) return;
    this.#inflight.stop();
    for (const port of this.#callbackPorts) port.close();
    this.#callbackPorts.clear();
    this.#onExit(this.#exitCode);
    emitSafely(this, 'exit', this.#exitCode);
  }

  /** Terminates every worker and waits for their exits, at most `ms`. True when all exited. */
  async #terminate(ms: number): Promise<boolean> {
    const exits = await Promise.all(this.#threads.map((thread) => thread.terminate(ms)));
    return exits.every(Boolean);
  }

  /** @internal Boots the workers: resolves when all are ready, rejects `ERR_PLUGIN_LOAD` with every worker gone. */
  async [internal](readyTimeoutMs: number, module: Omit<LoadMessage, 't' | 'k'>): Promise<void> {
    const timer = sleep(readyTimeoutMs);
    const outcome = new Promise<BootOutcome>((resolve) => {
      this.#boot = { ready: 0, settle: resolve };
      void timer.promise.then(() => resolve({ t: 'timeout' }));
    });
    for (const thread of this.#threads) {
      try {
        thread.load(module);
      } catch (error) {
        this.#boot!.settle({ t: 'unsendable', cause: error });
        break;
      }
    }
    const result = await outcome;
    timer.cancel();
    this.#boot = undefined;
    if (result.t === Tag.Ready) {
      for (const method of result.methods) this.#methods.add(method);
      for (const name of result.hooks) this.#hooks.add(name);
      this.#dependencies = Object.freeze([...result.dependencies]);
      this.#hasOnFree = result.free;
      this.#setState('ready');
      this.#ref(false);
      return;
    }
    let cause: unknown;
    if (result.t === Tag.LoadFailed) cause = this.#remoteError(result.error, result.stage);
    else if (result.t === 'timeout')
      cause = new PluginTimeoutError(`not ready within ${readyTimeoutMs} ms`, {
        ...this.#context(),
        timeoutMs: readyTimeoutMs,
      });
    else if (result.t === 'unsendable' || result.t === 'lost') {
      cause = new PluginCloneError('options.data cannot be sent to the plugin', {
        ...this.#context(undefined, result.t === 'unsendable' ? result.cause : undefined),
        direction: 'argument',
      });
    } else
      cause =
        result.cause ??
        new PluginCrashedError(`the worker exited with code ${this.#exitCode} while loading`, {
          ...this.#context(),
          exitCode: this.#exitCode,
          state: 'loading',
        });
    this.#state = 'closed';
    await this.#terminate(DEFAULTS.terminateTimeoutMs);
    const stage = result.t === Tag.LoadFailed ? ` (${result.stage})` : '';
    const error = new PluginLoadError(
      `cannot load plugin ${this.name} from ${this.url}${stage}`,
      this.#context(undefined, cause),
    );
    if (result.t === 'exit' && result.silent) Object.defineProperty(error, kSilentExit, { value: true });
    throw error;
  }

  /** A worker answered the Load message: the version is ready once every worker is. */
  #booted(message: ReadyMessage | LoadFailedMessage): void {
    const boot = this.#boot!;
    if (message.t === Tag.LoadFailed || ++boot.ready === this.#threads.length) boot.settle(message);
  }

  /**
   * Closes the version: new calls reject `ERR_PLUGIN_CLOSED` at once; calls in flight finish; `onFree`
   * runs (in every thread); the workers are terminated. Past `timeoutMs` the workers are terminated
   * anyway and the calls still running reject `ERR_PLUGIN_TERMINATED`. A second or concurrent call
   * returns the same promise; when it gives a sooner deadline, the deadline is brought forward
   * (`close({ timeoutMs: 0 })` force-closes a version that is draining).
   */
  close(options?: CloseOptions): Promise<CloseReport> {
    let resolved: Required<CloseOptions>;
    try {
      resolved = resolveCloseOptions(options);
    } catch (error) {
      return this.#closing ?? Promise.reject(error);
    }
    if (this.#closing) {
      if (options?.timeoutMs !== undefined) this.#closeDeadline?.shorten(resolved.timeoutMs);
      return this.#closing;
    }
    // Assigned before #runClose emits anything: a 'state' listener that calls close() gets this promise.
    let run!: (report: Promise<CloseReport>) => void;
    this.#closing = new Promise<CloseReport>((resolve) => (run = resolve));
    run(this.#runClose(resolved));
    return this.#closing;
  }

  /**
   * Erlang's soft purge: closes the version only when nothing is in flight. Otherwise closes nothing,
   * changes nothing, and tells how many calls are in flight.
   */
  softClose(
    options?: CloseOptions,
  ): { closed: true; report: Promise<CloseReport> } | { closed: false; inFlight: number } {
    const inFlight = this.#inflight.size;
    if (inFlight > 0 && this.#state === 'ready') return { closed: false, inFlight };
    return { closed: true, report: this.close(options) };
  }

  async #runClose({ timeoutMs, terminateTimeoutMs }: Required<CloseOptions>): Promise<CloseReport> {
    const started = performance.now();
    const inFlightAtClose = this.#inflight.size;
    let drained = false;
    let terminatedCalls = 0;
    let onFree: CloseReport['onFree'] = 'skipped';
    let onFreeError: Error | undefined;
    const abandonedCalls = this.#abandoned.size;
    if (this.#state === 'ready') {
      this.#setState('closing');
      this.#ref(true);
      const limit = deadline(timeoutMs);
      this.#closeDeadline = limit;
      drained = await limit.race(
        this.#inflight.whenIdle().then(() => true),
        false,
      );
      // Calls rejected because a worker crashed or the version was destroyed did not settle on their own.
      if (this.state !== 'closing') drained = false;
      // The drain may have ended in a crash or a destroy: only a version still closing runs onFree.
      if (this.state === 'closing') {
        if (drained && this.#exitCode === undefined) {
          [onFree, onFreeError] = await this.#runOnFree(limit);
        }
        terminatedCalls = this.#inflight.rejectAll(
          (call) =>
            new PluginTerminatedError(
              `${call.method}() was still running at the close deadline (${timeoutMs} ms)`,
              this.#context(call.method),
            ),
        );
      }
      limit.cancel();
    }
    const outcome = this.#state === 'crashed' || this.#state === 'destroyed' ? this.#state : 'closed';
    const terminated = await this.#terminate(terminateTimeoutMs);
    if (outcome === 'closed') this.#setState('closed');
    const report: CloseReport = {
      name: this.name,
      version: this.version,
      outcome,
      drained: drained && terminatedCalls === 0,
      inFlightAtClose,
      terminatedCalls,
      abandonedCalls,
      onFree,
      onFreeError,
      terminated,
      durationMs: performance.now() - started,
    };
    emitSafely(this, 'close', report);
    return report;
  }

  /** Runs `onFree` in every worker, within the close deadline; the first error thrown is the one reported. */
  async #runOnFree(limit: Deadline): Promise<[CloseReport['onFree'], Error | undefined]> {
    if (!this.#hasOnFree) return ['absent', undefined];
    const freed = new Promise<Pack | undefined>(
      (done) => (this.#freeing = { pending: new Set(this.#threads), error: undefined, done }),
    );
    for (const thread of this.#threads) if (!thread.gone) thread.send({ t: Tag.Free, k: 0 });
    const result = await limit.race(
      freed.then((error) => ({ error })),
      undefined,
    );
    this.#freeing = undefined;
    if (result === undefined) return ['timeout', undefined];
    // A worker died or the version was destroyed while onFree ran: it did not finish.
    if (this.state === 'crashed') return ['threw', this.#crash];
    if (this.state === 'destroyed') return ['skipped', undefined];
    return result.error === undefined ? ['ok', undefined] : ['threw', this.#remoteError(result.error, 'onFree')];
  }

  /** A worker's `onFree` finished (or the worker is gone): done once every worker has answered. */
  #freed(error: Pack | undefined): void {
    const freeing = this.#freeing!;
    freeing.error ??= error;
    if (freeing.pending.size === 0) freeing.done(freeing.error);
  }

  /**
   * Ends the version now: every call in flight rejects `ERR_PLUGIN_DESTROYED` (cause: `reason`), the
   * workers are terminated. Resolves once they exited (or after the terminate timeout). Idempotent.
   */
  async destroy(reason?: unknown): Promise<void> {
    if (this.#state === 'ready' || this.#state === 'closing') {
      this.#destroyReason = reason;
      this.#setState('destroyed');
      this.#inflight.rejectAll(
        (call) =>
          new PluginDestroyedError(
            `${call.method}() ended: plugin ${this.name}@${this.version} was destroyed`,
            this.#context(call.method, reason),
          ),
      );
    }
    await this.#terminate(DEFAULTS.terminateTimeoutMs);
  }

  /** `await using plugin = await loadPlugin(...)` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** What ended a boot: every worker ready, one failed, exited, timed out, or the Load message could not travel. */
type BootOutcome =
  | ReadyMessage
  | LoadFailedMessage
  | { t: 'exit'; cause: unknown; silent: boolean }
  | { t: 'timeout' }
  | { t: 'unsendable'; cause: unknown }
  | { t: 'lost' };

export { internal as pluginToken };
