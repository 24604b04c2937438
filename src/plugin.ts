/**
 * One plugin version: a worker, its private port, the calls in flight, and one state machine.
 *
 *   loading ─▶ ready ─▶ closing ─▶ closed
 *      │         │         │
 *      │         ├─────────┴──▶ crashed    (the worker died on its own)
 *      │         └─────────┴──▶ destroyed  (destroy())
 *      └──▶ (load fails: loadPlugin rejects, no handle is returned)
 *
 * Every call checks the state first (the trampoline); a call accepted while `ready` is counted in
 * flight until it settles, whichever way it settles. The worker's `exit` releases everything.
 */
import { EventEmitter } from 'node:events';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { createApi, type CallByName, type PluginApi } from './api.js';
import { exposeCallback, isCallback } from './callbacks.js';
import { unpack, type Pack } from './envelope.js';
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
} from './errors.js';
import { emitSafely } from './events.js';
import { exceedsBytes } from './size.js';
import { InFlight, type PendingCall } from './inflight.js';
import { resolveCallOptions, resolveCloseOptions, timerDelay, DEFAULTS, type CallOptions, type CloseOptions, type ResolvedLoadOptions } from './options.js';
import { Tag, type BootData, type CallMessage, type ErrMessage, type HostMessage, type OkMessage, type WorkerMessage } from './protocol.js';
import type { ResolvedModule } from './resolve.js';
import { deadline, sleep, type Deadline } from './time.js';
import { workerUrl } from './worker-url.js';

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
  /** True when the worker had exited when close() resolved; false when terminate() was still pending (a worker blocked in a system call). */
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
  readonly #worker: Worker;
  readonly #port: MessagePort;
  /** The default call timeout, or undefined for none. */
  readonly #callTimer: number | undefined;
  #outbox: CallMessage[] = [];
  /** `maxPayloadBytes`, checked before a call is sent (undefined: no check). */
  readonly #maxPayloadBytes: number | undefined;
  /** Messages posted to the worker on the private port; the n-th is message n (see protocol.ts: lost messages). */
  #sent = 0;
  /** Messages received from the worker on the private port, read or lost (`messageerror`). */
  #received = 0;
  readonly #inflight: InFlight;
  readonly #methods = new Set<string>();
  /** The hooks a hook call may name (`Ready.hooks`). */
  readonly #hooks = new Set<string>();
  #dependencies: readonly string[] = [];
  readonly #callbackPorts = new Set<MessagePort>();
  /** Ids of calls given up on (timeout, abort): their late replies are expected, not stray. */
  readonly #abandoned = new Set<number>();
  #hasOnFree = false;
  /** Set when we terminate the worker ourselves: its exit is then not a crash. */
  #terminating = false;
  #nextId = 0;
  #calls = 0;
  #failures = 0;
  #stray = 0;
  #workerError: unknown;
  #crash: PluginCrashedError | undefined;
  #destroyReason: unknown;
  #closing: Promise<CloseReport> | undefined;
  #closeDeadline: Deadline | undefined;
  #exitCode: number | undefined;
  readonly #exited: Promise<number>;
  #onExit!: (code: number) => void;
  #onBoot: ((message: WorkerMessage | { t: 'exit' }) => void) | undefined;
  #onFreed: ((error: Pack | undefined) => void) | undefined;

  /** @internal Use `loadPlugin()`. */
  constructor(token: typeof internal, module: ResolvedModule, options: ResolvedLoadOptions) {
    super();
    if (token !== internal) throw new TypeError('use loadPlugin() to create a Plugin');
    this.name = options.name ?? module.name;
    this.version = options.version ?? module.hash;
    this.url = module.url;
    this.#exited = new Promise((resolve) => (this.#onExit = resolve));
    this.#callTimer = timerDelay(options.callTimeoutMs);
    this.#inflight = new InFlight({
      busy: () => this.#ref(true),
      idle: () => this.#ref(this.#state === 'loading' || this.#state === 'closing'),
      abort: (call) => {
        this.#abandoned.add(call.id);
        call.reject(new PluginAbortedError(`${call.method}() aborted`, this.#context(call.method, call.signal?.reason)));
      },
      expire: (call) => {
        this.#abandoned.add(call.id);
        call.reject(this.#timeoutError(call.method, this.#callTimer!));
      },
    });
    this.api = createApi<T>(this.#methods, (method, args) => this.#invoke(method, args, undefined));

    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#maxPayloadBytes = options.maxPayloadBytes;
    const boot: BootData = {
      port: port2,
      url: module.url,
      data: options.data,
      maxPayloadBytes: options.maxPayloadBytes,
      maxArrayBufferBytes: options.maxArrayBufferMb === undefined ? undefined : options.maxArrayBufferMb * 2 ** 20,
    };
    try {
      this.#worker = new Worker(workerUrl(), {
        workerData: boot,
        transferList: [port2],
        ...(options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}),
        ...(options.env ? { env: options.env } : {}),
        execArgv: options.execArgv,
      });
    } catch (error) {
      port1.close();
      port2.close();
      throw error;
    }
    this.#worker.on('error', (error) => (this.#workerError = error));
    this.#worker.on('exit', (code) => this.#handleExit(code));
    this.#worker.on('message', () => this.#stray++);
    this.#port.on('message', (message: WorkerMessage) => this.#handleMessage(message));
    this.#port.on('messageerror', () => this.#handleLost());
  }

  /** `loading`, `ready`, `closing`, `closed`, `crashed` or `destroyed`. */
  get state(): PluginState {
    return this.#state;
  }

  /** Calls in flight now (the wait-group `close()` drains). */
  get inFlight(): number {
    return this.#inflight.size;
  }

  get stats(): PluginStats {
    return { calls: this.#calls, inFlight: this.#inflight.size, failures: this.#failures, strayMessages: this.#stray };
  }

  /** The names callable on this version. */
  get methods(): readonly string[] {
    return [...this.#methods];
  }

  /** The module's `dependencies` export (an array of plugin names; empty when absent). */
  get dependencies(): readonly string[] {
    return this.#dependencies;
  }

  /** The worker's thread id, for diagnostics. */
  get threadId(): number {
    return this.#worker.threadId;
  }

  /** Resolves with the worker's exit code once it has exited (after close, destroy or a crash). */
  get exited(): Promise<number> {
    return this.#exited;
  }

  /** Calls a method by name. Unknown or reserved names reject `ERR_PLUGIN_NO_METHOD` without reaching the worker. */
  call: CallByName<T> = ((name: string, ...args: unknown[]) =>
    this.#invoke(name, args, undefined)) as CallByName<T>;

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
        return new PluginDestroyedError(`plugin ${this.name}@${this.version} was destroyed; ${method}() refused`, this.#context(method, this.#destroyReason));
      default:
        return new PluginClosedError(`plugin ${this.name}@${this.version} is ${this.#state}; ${method}() refused`, this.#context(method));
    }
  }

  #invoke(method: string, args: unknown[], options: CallOptions | undefined, hook = false): Promise<unknown> {
    if (this.#state !== 'ready') return Promise.reject(this.#refusal(String(method)));
    if (typeof method !== 'string' || !(hook ? this.#hooks : this.#methods).has(method)) {
      return Promise.reject(new PluginNoMethodError(`plugin ${this.name}@${this.version} has no method ${String(method)}`, this.#context(String(method))));
    }
    const signal = options?.signal;
    if (signal?.aborted) {
      return Promise.reject(new PluginAbortedError(`${method}() aborted before it started`, this.#context(method, signal.reason)));
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
    // A call with a transfer list travels alone, after the calls queued before it.
    if (transfer !== undefined) this.#flush();
    // Nothing is posted while calls are queued without flushing them first (see #send), so this call
    // travels in the next message: the queued batch, or its own.
    const seq = this.#sent + 1;
    const timeoutMs = options?.timeoutMs;
    const promise = new Promise((resolve, reject) => {
      const call: PendingCall = {
        id,
        method,
        seq,
        resolve,
        reject: (error) => {
          this.#failures++;
          reject(error);
        },
        expiresAt: timeoutMs === undefined && this.#callTimer !== undefined ? performance.now() + this.#callTimer : undefined,
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
    const message: CallMessage = hook ? { t: Tag.Call, id, m: method, a: args, p: slots, k: 0, h: 1 } : { t: Tag.Call, id, m: method, a: args, p: slots, k: 0 };
    if (transfer === undefined) {
      // Calls made in the same tick travel in one message.
      this.#outbox.push(message);
      if (this.#outbox.length === 1) queueMicrotask(this.#flush);
    } else {
      this.#sendCall(message, transfer);
    }
    return promise;
  }

  /** Sends the calls queued this tick: one message for all of them. */
  readonly #flush = (): void => {
    const batch = this.#outbox;
    if (batch.length === 0) return;
    this.#outbox = [];
    // The worker is gone: these calls were already rejected with the reason.
    if (this.#exitCode !== undefined) return;
    if (batch.length === 1) return void this.#sendCall(batch[0]!, undefined);
    try {
      this.#send({ t: Tag.Batch, b: batch, k: 0 });
    } catch {
      // One of them cannot be cloned: send them one by one so only that call fails. Each then
      // travels in its own message, not in the batch's.
      for (const message of batch) {
        const seq = this.#sendCall(message, undefined);
        const call = this.#inflight.get(message.id);
        if (seq !== undefined && call !== undefined) call.seq = seq;
      }
    }
  };

  /**
   * Every message to the worker on the private port goes through here: the calls queued this tick go
   * first (so a queued call's `seq` holds), the message is stamped with `k`, posted and counted.
   * Returns its sequence number; throws what postMessage throws (then nothing was sent or counted).
   */
  #send(message: HostMessage, transfer?: unknown[]): number {
    if (this.#outbox.length > 0) this.#flush();
    message.k = this.#received;
    this.#port.postMessage(message, transfer as MessagePort[] | undefined);
    return ++this.#sent;
  }

  /** Sends one call alone; returns its message's sequence number, or undefined when it could not be cloned (the call rejected). */
  #sendCall(message: CallMessage, transfer: unknown[] | undefined): number | undefined {
    try {
      return this.#send(message, transfer);
    } catch (error) {
      if (message.p) for (const slot of message.p) (message.a[slot] as MessagePort).close();
      this.#inflight
        .take(message.id)
        ?.reject(new PluginCloneError(`${message.m}(): an argument cannot be sent to the plugin`, { ...this.#context(message.m, error), direction: 'argument' }));
      return undefined;
    }
  }

  /**
   * A message from the worker could not be read (`messageerror`): it still counts, and its number
   * tells the worker which replies to send again (see protocol.ts: lost messages).
   */
  #handleLost(): void {
    const s = ++this.#received;
    if (this.#exitCode === undefined) this.#send({ t: Tag.Lost, s, k: 0 });
  }

  /** The worker could not read message `s`: the calls it carried never reached the plugin. */
  #lostCalls(s: number): void {
    this.#inflight.rejectAll(
      (call) => new PluginCloneError(`${call.method}(): the plugin could not read an argument (the message was lost)`, { ...this.#context(call.method), direction: 'argument' }),
      (call) => call.seq === s,
    );
  }

  #timeoutError(method: string, ms: number): PluginTimeoutError {
    return new PluginTimeoutError(`${method}() timed out after ${ms} ms`, { ...this.#context(method), timeoutMs: ms });
  }

  #giveUp(id: number, error: Error): void {
    const call = this.#inflight.take(id);
    if (call === undefined) return;
    this.#abandoned.add(id);
    call.reject(error);
  }

  #handleMessage(message: WorkerMessage): void {
    this.#received++;
    switch (message.t) {
      case Tag.Batch:
        for (const reply of message.b) this.#settle(reply);
        return;
      case Tag.Ok:
      case Tag.Err:
        return this.#settle(message);
      case Tag.Ready:
      case Tag.LoadFailed:
        if (this.#onBoot) this.#onBoot(message);
        else this.#stray++;
        return;
      case Tag.Freed:
        if (this.#onFreed) this.#onFreed(message.error);
        else this.#stray++;
        return;
      case Tag.OverLimit:
        return this.#overLimit(message.bytes, message.limit);
      case Tag.Lost:
        return this.#lostCalls(message.s);
      default:
        this.#stray++;
    }
  }

  #settle(reply: OkMessage | ErrMessage): void {
    const call = this.#inflight.take(reply.id);
    if (call === undefined) return this.#unknownReply(reply.id);
    if (reply.t === Tag.Ok) return call.resolve(reply.v);
    const method = call.method;
    if (reply.tooLarge) {
      return call.reject(
        new PluginPayloadTooLargeError(`${method}(): the result is larger than maxPayloadBytes`, { ...this.#context(method), direction: 'result', limitBytes: this.#maxPayloadBytes }),
      );
    }
    call.reject(
      reply.clone
        ? new PluginCloneError(`${method}(): the result cannot be sent to the host`, { ...this.#context(method, this.#remoteError(reply.e, method)), direction: 'result' })
        : this.#remoteError(reply.e, method),
    );
  }

  /** The size guard (F11): an error when the arguments would serialize to more than `limit` bytes. */
  #checkPayload(method: string, args: unknown[], limit: number): Error | undefined {
    try {
      if (!exceedsBytes(args, limit)) return undefined;
    } catch (error) {
      return new PluginCloneError(`${method}(): an argument cannot be sent to the plugin`, { ...this.#context(method, error), direction: 'argument' });
    }
    return new PluginPayloadTooLargeError(`${method}(): the arguments are larger than maxPayloadBytes (${limit})`, { ...this.#context(method), direction: 'argument', limitBytes: limit });
  }

  /** The ArrayBuffer guard (F7): the worker reported its isolate over `maxArrayBufferMb`; end it as out of memory. */
  #overLimit(bytes: number, limit: number): void {
    if (this.#workerError !== undefined || this.#exitCode !== undefined) return;
    this.#workerError = Object.assign(new RangeError(`the worker holds ${bytes} bytes of ArrayBuffers, over maxArrayBufferMb (${limit} bytes)`), {
      code: 'ERR_PLUGIN_ARRAYBUFFER_LIMIT',
      bytes,
      limit,
    });
    // Not #terminate(): this exit is a crash, and must be reported as one.
    this.#worker.terminate().catch(() => {});
  }

  #unknownReply(id: number): void {
    if (!this.#abandoned.delete(id)) this.#stray++;
  }

  /** Rebuilds what plugin code threw, tagged with where it came from. */
  #remoteError(p: Pack, method: string | undefined): Error {
    const error = unpack(p, (value) =>
      new PluginNonErrorThrownError(`${method ?? 'plugin'} threw a non-Error value: ${value.text}`, { ...this.#context(method), value: value.value }),
    );
    if (!(error instanceof PluginNonErrorThrownError)) {
      Object.defineProperty(error, 'plugin', { value: { name: this.name, version: this.version, method }, configurable: true });
    }
    return error;
  }

  #ref(on: boolean): void {
    if (on) {
      this.#worker.ref();
      this.#port.ref();
    } else {
      this.#worker.unref();
      this.#port.unref();
    }
  }

  #setState(next: PluginState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    emitSafely(this, 'state', next, previous);
  }

  #handleExit(code: number): void {
    this.#exitCode = code;
    const state = this.#state;
    if (state === 'loading') {
      this.#onBoot?.({ t: 'exit' });
    } else if ((state === 'ready' || state === 'closing') && !this.#terminating) {
      const cause = this.#workerError;
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
      emitSafely(this, 'crash', this.#crash);
    }
    // No call outlives its worker, whatever path ended it.
    this.#inflight.rejectAll(
      (call) => new PluginTerminatedError(`${call.method}() was running when plugin ${this.name}@${this.version} ended`, this.#context(call.method)),
    );
    this.#onFreed?.(undefined);
    this.#abandoned.clear();
    this.#port.close();
    for (const port of this.#callbackPorts) port.close();
    this.#callbackPorts.clear();
    this.#onExit(code);
    emitSafely(this, 'exit', code);
  }

  /** Terminates the worker and waits for its exit, at most `ms`. True when it exited. */
  async #terminate(ms: number): Promise<boolean> {
    if (this.#exitCode !== undefined) return true;
    if (!this.#terminating) {
      this.#terminating = true;
      this.#worker.ref();
      this.#worker.terminate().catch(() => {});
    }
    const timer = sleep(ms);
    try {
      return await Promise.race([this.#exited.then(() => true), timer.promise.then(() => false)]);
    } finally {
      timer.cancel();
    }
  }

  /** @internal Boots the worker: resolves when ready, rejects `ERR_PLUGIN_LOAD` with the worker gone. */
  async [internal](readyTimeoutMs: number): Promise<void> {
    const timer = sleep(readyTimeoutMs);
    const outcome = await new Promise<WorkerMessage | { t: 'exit' } | { t: 'timeout' }>((resolve) => {
      this.#onBoot = resolve;
      void timer.promise.then(() => resolve({ t: 'timeout' }));
    });
    timer.cancel();
    this.#onBoot = undefined;
    if (outcome.t === Tag.Ready) {
      for (const method of outcome.methods) this.#methods.add(method);
      for (const name of outcome.hooks) this.#hooks.add(name);
      this.#dependencies = Object.freeze([...outcome.dependencies]);
      this.#hasOnFree = outcome.free;
      this.#setState('ready');
      this.#ref(false);
      return;
    }
    let cause: unknown;
    if (outcome.t === Tag.LoadFailed) cause = this.#remoteError(outcome.error, outcome.stage);
    else if (outcome.t === 'timeout') cause = new PluginTimeoutError(`not ready within ${readyTimeoutMs} ms`, { ...this.#context(), timeoutMs: readyTimeoutMs });
    else cause = this.#workerError ?? new PluginCrashedError(`the worker exited with code ${this.#exitCode} while loading`, { ...this.#context(), exitCode: this.#exitCode, state: 'loading' });
    this.#state = 'closed';
    await this.#terminate(DEFAULTS.terminateTimeoutMs);
    const stage = outcome.t === Tag.LoadFailed ? ` (${outcome.stage})` : '';
    throw new PluginLoadError(`cannot load plugin ${this.name} from ${this.url}${stage}`, this.#context(undefined, cause));
  }

  /**
   * Closes the version: new calls reject `ERR_PLUGIN_CLOSED` at once; calls in flight finish; `onFree`
   * runs; the worker is terminated. Past `timeoutMs` the worker is terminated anyway and the calls still
   * running reject `ERR_PLUGIN_TERMINATED`. A second or concurrent call returns the same promise; when
   * it gives a sooner deadline, the deadline is brought forward (`close({ timeoutMs: 0 })` force-closes
   * a version that is draining).
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
  softClose(options?: CloseOptions): { closed: true; report: Promise<CloseReport> } | { closed: false; inFlight: number } {
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
      drained = await limit.race(this.#inflight.whenIdle().then(() => true), false);
      // Calls rejected because the worker crashed or was destroyed did not settle on their own.
      if (this.state !== 'closing') drained = false;
      // The drain may have ended in a crash or a destroy: only a version still closing runs onFree.
      if (this.state === 'closing') {
        if (drained && this.#exitCode === undefined) {
          [onFree, onFreeError] = await this.#runOnFree(limit);
        }
        terminatedCalls = this.#inflight.rejectAll(
          (call) => new PluginTerminatedError(`${call.method}() was still running at the close deadline (${timeoutMs} ms)`, this.#context(call.method)),
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

  async #runOnFree(limit: Deadline): Promise<[CloseReport['onFree'], Error | undefined]> {
    if (!this.#hasOnFree) return ['absent', undefined];
    const freed = new Promise<Pack | undefined>((resolve) => (this.#onFreed = resolve));
    this.#send({ t: Tag.Free, k: 0 });
    const result = await limit.race(freed.then((error) => ({ error })), undefined);
    this.#onFreed = undefined;
    if (result === undefined) return ['timeout', undefined];
    // The worker died or was destroyed while onFree ran: it did not finish.
    if (this.state === 'crashed') return ['threw', this.#crash];
    if (this.state === 'destroyed') return ['skipped', undefined];
    return result.error === undefined ? ['ok', undefined] : ['threw', this.#remoteError(result.error, 'onFree')];
  }

  /**
   * Ends the version now: every call in flight rejects `ERR_PLUGIN_DESTROYED` (cause: `reason`), the
   * worker is terminated. Resolves once it exited (or after the terminate timeout). Idempotent.
   */
  async destroy(reason?: unknown): Promise<void> {
    if (this.#state === 'ready' || this.#state === 'closing') {
      this.#destroyReason = reason;
      this.#setState('destroyed');
      this.#inflight.rejectAll((call) => new PluginDestroyedError(`${call.method}() ended: plugin ${this.name}@${this.version} was destroyed`, this.#context(call.method, reason)));
    }
    await this.#terminate(DEFAULTS.terminateTimeoutMs);
  }

  /** `await using plugin = await loadPlugin(...)` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export { internal as pluginToken };
