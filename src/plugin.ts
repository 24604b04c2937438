/**
 * One plugin version: its workers (one per thread, see thread.ts for the wire to each) and one state
 * machine. The call path is dispatch.ts, the close path close.ts, the errors version-errors.ts; a
 * Plugin is made from workers that booted (boot.ts), so it starts `ready`.
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
import { createApi, type CallByName, type PluginApi } from './api.js';
import type { Readable } from 'node:stream';
import {
  END_WAIT_MS,
  closeVersion,
  endAll,
  terminateAll,
  type Closable,
  type CloseReport,
  type PluginState,
} from './close.js';
import { callTrace, closeTrace, crashChannel, traced, type CallContext, type CrashMessage } from './diagnostics.js';
import { Dispatch } from './dispatch.js';
import { emitSafely } from './events.js';
import {
  DEFAULTS,
  resolveCallOptions,
  resolveCloseOptions,
  type CallOptions,
  type CloseOptions,
  type ResolvedLoadOptions,
} from './options.js';
import type { ResolvedModule } from './resolve.js';
import type { PluginCrashedError } from './shared/errors.js';
import { Tag, forEachReply, type CodeCacheStatus, type ReadyMessage, type WorkerMessage } from './shared/protocol.js';
import { timerDelay } from './time.js';
import type { Thread, ThreadOwner } from './thread.js';
import { arrayBufferLimit, type VersionErrors } from './version-errors.js';

export type { CloseReport, PluginState };

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

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- an untyped plugin: any exports, any method
export class Plugin<T = Record<string, any>> extends EventEmitter<PluginEvents> implements AsyncDisposable {
  /** The plugin's name (`LoadOptions.name`, or the module file's base name). */
  readonly name: string;
  /** The version label (`LoadOptions.version`, or a hash of the modules the version runs and the packages they import). */
  readonly version: string;
  /** The file URL the workers import: the entry module, or a TypeScript entry compiled into the cache. */
  readonly url: string;
  /** How the code cache served this version's load (`LoadOptions.codeCache`); `'off'` when it was not used. */
  readonly codeCache: CodeCacheStatus;
  /** The typed API: one async function per exported function. Not thenable. */
  readonly api: PluginApi<T>;
  /**
   * With `output: 'pipe'`: what the version writes to `process.stdout` (every thread's). The plugin is
   * held back while this is not read (past a window), and it ends once every worker is gone. Otherwise undefined.
   */
  readonly stdout: Readable | undefined;
  /** With `output: 'pipe'`: what the version writes to `process.stderr`; as `stdout`. */
  readonly stderr: Readable | undefined;

  #state: PluginState = 'ready';
  readonly #threads: readonly Thread[];
  readonly #errors: VersionErrors;
  readonly #calls: Dispatch;
  readonly #methods: ReadonlySet<string>;
  /** The hooks a hook call may name (`Ready.hooks`). */
  readonly #hooks: ReadonlySet<string>;
  readonly #dependencies: readonly string[];
  #crash: PluginCrashedError | undefined;
  #destroyReason: unknown;
  #closing: Promise<CloseReport> | undefined;
  /** The exit code of the first worker that exited: set once any worker of the version is gone. */
  #exitCode: number | undefined;
  readonly #exited: Promise<number>;
  #onExit!: (code: number) => void;
  /** What the close path sees of this version. */
  readonly #closable: Closable;

  /**
   * @internal Use `loadPlugin()`. `threads`: the workers the version runs on, booted (boot.ts) with the
   * module whose `Ready` message is `ready`.
   */
  constructor(
    token: typeof internal,
    module: ResolvedModule,
    options: ResolvedLoadOptions,
    threads: readonly Thread[],
    ready: ReadyMessage,
    errors: VersionErrors,
    output?: { stdout: Readable | undefined; stderr: Readable | undefined },
  ) {
    super();
    if (token !== internal) throw new TypeError('use loadPlugin() to create a Plugin');
    this.name = errors.name;
    this.version = errors.version;
    this.url = module.url;
    this.stdout = output?.stdout;
    this.stderr = output?.stderr;
    this.codeCache = ready.code;
    this.#errors = errors;
    this.#exited = new Promise((resolve) => (this.#onExit = resolve));
    this.#methods = new Set(ready.methods);
    this.#hooks = new Set(ready.hooks);
    this.#dependencies = Object.freeze([...ready.dependencies]);
    this.#threads = threads;
    this.#calls = new Dispatch(threads, errors, {
      callTimer: timerDelay(options.callTimeoutMs),
      maxPayloadBytes: options.maxPayloadBytes,
      busy: (busy) => this.#ref(busy || this.#state === 'closing'),
    });
    this.#closable = {
      threads,
      calls: this.#calls,
      errors,
      hasOnFree: ready.free,
      childKillGraceMs: options.childKillGraceMs,
      state: () => this.#state,
      setState: (next) => this.#setState(next),
      ref: (on) => this.#ref(on),
      anyExited: () => this.#exitCode !== undefined,
      crash: () => this.#crash,
      closeDeadline: undefined,
      freeing: undefined,
    };
    this.api = createApi<T>(this.#methods, (method, args) => this.#invoke(method, args, undefined));
    // Idle: the workers do not hold the process. A worker that exited since its boot is a crash now.
    this.#ref(false);
    threads.forEach((thread, lane) => thread.attach(this.#owner, lane));
  }

  /** `ready`, `closing`, `closed`, `crashed` or `destroyed` (`loading` while `loadPlugin()` runs, before a handle exists). */
  get state(): PluginState {
    return this.#state;
  }

  /** Calls in flight now, on every thread (the wait-group `close()` drains). */
  get inFlight(): number {
    return this.#calls.inFlight;
  }

  get stats(): PluginStats {
    let stray = this.#calls.stray;
    for (const thread of this.#threads) stray += thread.stray;
    return {
      calls: this.#calls.calls,
      inFlight: this.#calls.inFlight,
      failures: this.#calls.failures,
      strayMessages: stray,
    };
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

  /** The error for a call refused in the current state. */
  #refusal(method: string): Error {
    switch (this.#state) {
      case 'crashed':
        return this.#errors.crashedRefusal(method, this.#crash, this.#exitCode);
      case 'destroyed':
        return this.#errors.destroyedRefusal(method, this.#destroyReason);
      default:
        return this.#errors.closed(method, this.#state);
    }
  }

  #invoke(method: string, args: unknown[], options: CallOptions | undefined, hook = false): Promise<unknown> {
    if (!callTrace.hasSubscribers) return this.#call(method, args, options, hook);
    const context: CallContext = { pluginName: this.name, version: this.version, method: String(method) };
    return callTrace.tracePromise(() => this.#call(method, args, options, hook), context);
  }

  #call(method: string, args: unknown[], options: CallOptions | undefined, hook: boolean): Promise<unknown> {
    if (this.#state !== 'ready') return Promise.reject(this.#refusal(String(method)));
    if (typeof method !== 'string' || !(hook ? this.#hooks : this.#methods).has(method)) {
      return Promise.reject(this.#errors.noMethod(String(method)));
    }
    return this.#calls.invoke(method, args, options, hook);
  }

  /** What the threads report (see ThreadOwner). */
  readonly #owner: ThreadOwner = {
    message: (thread, message) => this.#handleMessage(thread, message),
    lost: (thread, s) => this.#calls.lost(thread, s),
    unsendable: (_thread, message, error) => this.#calls.unsendable(message, error),
    resent: (_thread, id, seq) => this.#calls.resent(id, seq),
    exit: (thread, code, error) => this.#handleExit(thread, code, error),
  };

  #handleMessage(thread: Thread, message: WorkerMessage): void {
    if (Array.isArray(message)) return forEachReply(message, this.#calls.settle);
    switch (message.t) {
      case Tag.Freed:
        if (!this.#closable.freeing?.answered(thread, message.error, message.open)) thread.stray++;
        return;
      case Tag.OverLimit:
        // The ArrayBuffer guard (F7): the worker's isolate is over `maxArrayBufferMb`; it ends as out of memory.
        return thread.fail(arrayBufferLimit(message.bytes, message.limit));
      default:
        thread.stray++;
    }
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
    if ((state === 'ready' || state === 'closing') && !thread.terminating) {
      this.#crash = this.#errors.crashed(code, state, cause);
      this.#setState('crashed');
      this.#calls.rejectAll((call) => this.#errors.crashed(code, state, cause, call.method));
      for (const other of this.#threads) {
        if (other !== thread)
          void endAll([other], 0, END_WAIT_MS).then(() => other.terminate(DEFAULTS.terminateTimeoutMs));
      }
      if (crashChannel.hasSubscribers) {
        const crash = this.#crash;
        const message: CrashMessage = {
          pluginName: this.name,
          version: this.version,
          exitCode: code,
          state,
          error: crash,
        };
        crashChannel.publish(message);
      }
      emitSafely(this, 'crash', this.#crash);
    }
    this.#calls.threadExited(thread);
    this.#closable.freeing?.answered(thread, undefined);
    if (!this.#threads.every((other) => other.gone)) return;
    this.#calls.end();
    this.#onExit(this.#exitCode);
    emitSafely(this, 'exit', this.#exitCode);
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
      if (options?.timeoutMs !== undefined) this.#closable.closeDeadline?.shorten(resolved.timeoutMs);
      return this.#closing;
    }
    // Assigned before the close path emits anything: a 'state' listener that calls close() gets this promise.
    let run!: (report: Promise<CloseReport>) => void;
    this.#closing = new Promise<CloseReport>((resolve) => (run = resolve));
    run(
      traced(
        closeTrace,
        () => ({ pluginName: this.name, version: this.version, timeoutMs: resolved.timeoutMs }),
        () => this.#runClose(resolved),
      ),
    );
    return this.#closing;
  }

  async #runClose({ timeoutMs, terminateTimeoutMs }: Required<CloseOptions>): Promise<CloseReport> {
    const ended = await closeVersion(this.#closable, timeoutMs, terminateTimeoutMs);
    const report: CloseReport = { name: this.name, version: this.version, ...ended };
    emitSafely(this, 'close', report);
    return report;
  }

  /**
   * Erlang's soft purge: closes the version only when nothing is in flight. Otherwise closes nothing,
   * changes nothing, and tells how many calls are in flight.
   */
  softClose(
    options?: CloseOptions,
  ): { closed: true; report: Promise<CloseReport> } | { closed: false; inFlight: number } {
    const inFlight = this.#calls.inFlight;
    if (inFlight > 0 && this.#state === 'ready') return { closed: false, inFlight };
    return { closed: true, report: this.close(options) };
  }

  /**
   * Ends the version now: every call in flight rejects `ERR_PLUGIN_DESTROYED` (cause: `reason`), the
   * workers are terminated. Resolves once they exited (or after the terminate timeout). Idempotent.
   */
  async destroy(reason?: unknown): Promise<void> {
    if (this.#state === 'ready' || this.#state === 'closing') {
      this.#destroyReason = reason;
      this.#setState('destroyed');
      this.#calls.rejectAll((call) => this.#errors.destroyed(call.method, reason));
    }
    // Output flushed and children ended with no grace, as far as the workers can in END_WAIT_MS.
    await endAll(this.#threads, 0, END_WAIT_MS);
    await terminateAll(this.#threads, DEFAULTS.terminateTimeoutMs);
    this.#calls.releaseCallbacks();
  }

  /** `await using plugin = await loadPlugin(...)` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export { internal as pluginToken };
