/**
 * A HotSwap routes every call to the version current when the call starts, and moves traffic from
 * one version to the next in one synchronous step. This file holds the routing, the swap queue and
 * retention; the standby is standby.ts, restart supervision restart.ts. A canary beside the current
 * version (a share of calls, sticky keys, promote/abort) would be a second target of `#route`.
 *
 * Policies (documented in the README):
 * - Swaps are serialized. While one runs, the latest request waits; an earlier waiting request rejects
 *   `ERR_SWAP_SUPERSEDED` (latest wins). The queue is released at the switch, so a swap does not wait
 *   for the previous version's drain.
 * - A swap is transactional: load, `onLoad` and the health check happen before the switch; if any
 *   fails the new version's workers are destroyed, the current version keeps serving, and `swap()` rejects
 *   `ERR_SWAP_FAILED`.
 * - Retention: at most `retain` old versions drain at once. At a switch that would exceed it, the
 *   oldest draining version is force-closed (its close deadline is brought to now).
 * - Restart (opt-in): a crash of the current version boots the same module again after a backoff,
 *   through the same queue; more than `maxRestarts` within `withinMs` gives up: state `failed`, calls
 *   reject `ERR_PLUGIN_CRASHED` with the last crash as cause, until a successful swap.
 * - Standby (opt-in): booted workers wait for the next version's code; a swap whose spawn options
 *   match takes them, and a new standby boots after the swap.
 */
import { EventEmitter } from 'node:events';
import { createApi, type CallByName, type PluginApi } from './api.js';
import { emitSafely } from './events.js';
import {
  checkHealth,
  resolveHotSwapOptions,
  resolveSwapOptions,
  type HealthCheck,
  type HotSwapOptions,
  type ResolvedHotSwapOptions,
  type ResolvedSwapOptions,
  type SwapOptions,
} from './hotswap-options.js';
import { loadVersion } from './load.js';
import { resolveCallOptions, type CallOptions, type ResolvedLoadOptions } from './options.js';
import { kInvoke, type CloseReport, type Plugin, type PluginCallView, type PluginStats } from './plugin.js';
import type { PluginSpecifier } from './resolve.js';
import { Restarts } from './restart.js';
import { PluginCrashedError } from './shared/errors.js';
import { Standby } from './standby.js';
import { trackLive } from './live.js';
import { VersionErrors } from './version-errors.js';

export type HotSwapState = 'ready' | 'restarting' | 'failed' | 'closing' | 'closed';

/** What `swap()` resolves with, once the switch happened and the old version drained. */
export interface SwapReport {
  /** The version swapped from. */
  readonly from: string;
  /** The version swapped to. */
  readonly to: string;
  /** Load of the new version, `onLoad` and the health check included. */
  readonly loadMs: number;
  /** The synchronous switch itself. */
  readonly switchMs: number;
  /** The old version's drain and close. */
  readonly drainMs: number;
  /** The old version's close report. */
  readonly close: CloseReport;
  /** True when the new version runs on the standby workers (`HotSwapOptions.standby`), false when it booted its own. */
  readonly standby: boolean;
}

/** Emitted at the moment traffic moves. */
export interface SwapEvent {
  readonly from: string;
  readonly to: string;
  readonly loadMs: number;
  readonly reason: 'swap' | 'restart';
}

export interface VersionInfo {
  readonly version: string;
  readonly role: 'current' | 'draining';
  readonly state: Plugin['state'];
  readonly stats: PluginStats;
}

export interface HotSwapEvents {
  swap: [event: SwapEvent];
  drained: [report: CloseReport];
  crash: [error: PluginCrashedError];
  restart: [event: { version: string; attempt: number }];
  failed: [error: PluginCrashedError];
  state: [state: HotSwapState, previous: HotSwapState];
}

interface Request {
  readonly specifier: PluginSpecifier;
  readonly load: ResolvedLoadOptions;
  readonly healthCheck: HealthCheck | undefined;
  readonly healthCheckTimeoutMs: number;
  readonly reason: 'swap' | 'restart';
  readonly resolve: (report: SwapReport) => void;
  readonly reject: (error: Error) => void;
}

const internal = Symbol('isoplug.hotswap');

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- an untyped plugin: any exports, any method
export class HotSwap<T = Record<string, any>> extends EventEmitter<HotSwapEvents> implements AsyncDisposable {
  /** The typed API; each call goes to the version current when it starts. */
  readonly api: PluginApi<T>;
  /** Calls a method by name on the current version. */
  readonly call: CallByName<T>;

  #current: Plugin<T>;
  #specifier: PluginSpecifier;
  /** The current version's load options (a restart loads it again with them). */
  #load: ResolvedLoadOptions;
  readonly #options: ResolvedHotSwapOptions;
  readonly #draining = new Set<Plugin<T>>();
  /** Draining versions whose deadline was brought to now; they no longer count against `retain`. */
  readonly #forced = new Set<Plugin<T>>();
  #state: HotSwapState = 'ready';
  #waiting: Request | undefined;
  #running = false;
  readonly #restarts: Restarts;
  /** A loaded version not yet switched to (during its health check). */
  #candidate: Plugin<T> | undefined;
  #closing: Promise<CloseReport[]> | undefined;
  /** The running queue, awaited by close() so no new version outlives it. */
  #pumping: Promise<void> = Promise.resolve();
  /** Methods of the current version (the api's keys follow the switch). */
  readonly #methods: Set<string>;
  /** Workers booted for the next version (`standby: true`). */
  readonly #standby: Standby | undefined;

  /** @internal Use `createHotSwap()`. */
  constructor(token: typeof internal, first: Plugin<T>, specifier: PluginSpecifier, options: ResolvedHotSwapOptions) {
    super();
    if (token !== internal) throw new TypeError('use createHotSwap() to create a HotSwap');
    this.#current = first;
    this.#specifier = specifier;
    this.#load = options.load;
    this.#options = options;
    this.#restarts = new Restarts(options.restart);
    this.#standby = options.standby ? new Standby(options.load) : undefined;
    this.#watch(first);
    this.#methods = new Set(first.methods);
    this.api = createApi<T>(this.#methods, (method, args) => this.#route(method, args, undefined));
    this.call = ((name: string, ...args: unknown[]) => this.#route(name, args, undefined)) as HotSwap<T>['call'];
    this.#standby?.replenish();
  }

  get state(): HotSwapState {
    return this.#state;
  }

  /** The version serving new calls. */
  get current(): Plugin<T> {
    return this.#current;
  }

  /** The current version's label. */
  get version(): string {
    return this.#current.version;
  }

  /** The current version and the ones still draining, with their counters. */
  get versions(): VersionInfo[] {
    const info = (plugin: Plugin<T>, role: VersionInfo['role']): VersionInfo => ({
      version: plugin.version,
      role,
      state: plugin.state,
      stats: plugin.stats,
    });
    return [info(this.#current, 'current'), ...[...this.#draining].map((p) => info(p, 'draining'))];
  }

  /** Per-call options, as `Plugin.with()`. */
  with(options: CallOptions): PluginCallView<T> {
    const resolved = resolveCallOptions(options);
    return {
      api: createApi<T>(this.#methods, (method, args) => this.#route(method, args, resolved)),
      call: ((name: string, ...args: unknown[]) => this.#route(name, args, resolved)) as PluginCallView<T>['call'],
    };
  }

  /** The errors of the current version (their context: its name and label). */
  get #errors(): VersionErrors {
    return new VersionErrors(this.#current.name, this.#current.version);
  }

  /** Where a call goes: the current version, or it waits for a restart, or it is refused. */
  #route = (method: string, args: unknown[], options: CallOptions | undefined): Promise<unknown> => {
    switch (this.#state) {
      case 'ready':
        return this.#current[kInvoke](method, args, options);
      case 'restarting':
        return this.#restarts.wait(method, args, options, this.#options.load.callTimeoutMs, this.#errors, this.#route);
      case 'failed':
        return Promise.reject(this.#errors.failedRefusal(method, this.#restarts.lastCrash));
      default:
        return Promise.reject(this.#errors.hotSwapClosed(`hot swap is ${this.#state}; ${method}() refused`, method));
    }
  };

  /** Closing or closed (a method, so that a check after an await is not narrowed away by one before it). */
  #shuttingDown(): boolean {
    return this.#state === 'closing' || this.#state === 'closed';
  }

  #setState(next: HotSwapState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    emitSafely(this, 'state', next, previous);
  }

  /**
   * Loads `specifier` as the next version, checks it, moves traffic to it, then drains and closes
   * the old version. Resolves after the drain. Rejects `ERR_SWAP_FAILED` (the current version keeps
   * serving), `ERR_SWAP_SUPERSEDED` (a later request replaced this one while it waited) or
   * `ERR_PLUGIN_CLOSED` (the hot swap is closing).
   */
  swap(specifier: PluginSpecifier, options?: SwapOptions<T>): Promise<SwapReport> {
    let resolved: ResolvedSwapOptions;
    try {
      resolved = resolveSwapOptions(options, this.#options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#enqueue(specifier, resolved.load, resolved.healthCheck, resolved.healthCheckTimeoutMs, 'swap');
  }

  #enqueue(
    specifier: PluginSpecifier,
    load: ResolvedLoadOptions,
    healthCheck: HealthCheck | undefined,
    healthCheckTimeoutMs: number,
    reason: Request['reason'],
  ): Promise<SwapReport> {
    if (this.#shuttingDown()) {
      return Promise.reject(this.#errors.hotSwapClosed(`hot swap is ${this.#state}; swap refused`));
    }
    return new Promise((resolve, reject) => {
      const superseded = this.#waiting;
      this.#waiting = { specifier, load, healthCheck, healthCheckTimeoutMs, reason, resolve, reject };
      superseded?.reject(this.#errors.superseded('a later swap replaced this one before it started'));
      if (!this.#running) this.#pumping = this.#pump();
    });
  }

  /** Queues a restart of the current version's module. */
  #restart(): void {
    this.#enqueue(this.#specifier, this.#load, undefined, 0, 'restart').catch(() => {});
  }

  async #pump(): Promise<void> {
    this.#running = true;
    for (let request = this.#waiting; request; request = this.#waiting) {
      this.#waiting = undefined;
      await this.#run(request);
      // Booted after the swap, not during it: on a small machine a thread booting beside the new
      // version's import would slow the swap it is meant to speed up.
      if (!this.#shuttingDown()) this.#standby?.replenish();
    }
    this.#running = false;
    // A user swap that failed while restarting replaced the pending restart: restart now.
    if (this.#state === 'restarting' && !this.#restarts.scheduled) this.#restart();
  }

  /** One swap (or restart): never throws; settles the request. */
  async #run(request: Request): Promise<void> {
    if (request.reason === 'restart' && this.#state !== 'restarting') {
      // A swap already replaced the crashed version.
      return request.reject(this.#errors.superseded('a swap replaced the crashed version before the restart'));
    }
    const from = this.#current;
    const started = performance.now();
    let next: Plugin<T>;
    let standby: boolean;
    try {
      ({ plugin: next, standby } = await loadVersion<T>(request.specifier, request.load, () =>
        this.#standby?.take(request.load),
      ));
    } catch (cause) {
      return this.#failed(request, `cannot load ${String(request.specifier)}`, cause);
    }
    // Until the switch the new version is a candidate: close() and destroy() end it, and its crash
    // (during the health check, say) fails the swap instead of being switched to.
    this.#candidate = next;
    let died: PluginCrashedError | undefined;
    const onCrash = (error: PluginCrashedError) => (died = error);
    next.once('crash', onCrash);
    try {
      if (request.healthCheck) {
        const verdict = await checkHealth(request.healthCheck, next, request.healthCheckTimeoutMs);
        if (verdict !== true) {
          await next.destroy(verdict);
          return this.#failed(request, `version ${next.version} failed its health check`, verdict);
        }
      }
      if (this.#shuttingDown()) {
        await next.destroy();
        return request.reject(
          new VersionErrors(next.name, next.version).hotSwapClosed('hot swap closed while the new version was loading'),
        );
      }
      if (next.state !== 'ready') {
        await next.destroy();
        return this.#failed(request, `version ${next.version} ended before the switch`, died);
      }
    } finally {
      this.#candidate = undefined;
      next.off('crash', onCrash);
    }
    const loadMs = performance.now() - started;

    // The switch: one synchronous step. Calls that started before it stay on `from`, which is retired
    // before any event fires, so a listener that closes the hot swap closes it too.
    const switchStarted = performance.now();
    this.#current = next;
    this.#specifier = request.specifier;
    this.#load = request.load;
    const retiring = this.#retire(from);
    this.#watch(next);
    this.#methods.clear();
    for (const method of next.methods) this.#methods.add(method);
    const switchMs = performance.now() - switchStarted;
    const drainStarted = performance.now();
    void retiring.then((close) =>
      request.resolve({
        from: from.version,
        to: next.version,
        loadMs,
        switchMs,
        drainMs: performance.now() - drainStarted,
        close,
        standby,
      }),
    );
    // The old version's close emits events: a listener may have closed the hot swap meanwhile.
    if (this.#shuttingDown()) return;
    this.#setState('ready');
    this.#restarts.recovered();
    emitSafely(this, 'swap', { from: from.version, to: next.version, loadMs, reason: request.reason });
    if (request.reason === 'restart')
      emitSafely(this, 'restart', { version: next.version, attempt: this.#restarts.attempt });
  }

  #failed(request: Request, message: string, cause: unknown): void {
    request.reject(this.#errors.swapFailed(message, cause));
    if (request.reason === 'restart') {
      this.#restarts.bootFailed();
      this.#crashed(cause instanceof PluginCrashedError ? cause : undefined);
    }
  }

  /** Moves a version out of service: it drains under the retention bound, then is closed. */
  #retire(old: Plugin<T>): Promise<CloseReport> {
    this.#draining.add(old);
    const closing = old.close({ timeoutMs: this.#options.drainTimeoutMs });
    for (const oldest of this.#draining) {
      if (this.#draining.size - this.#forced.size <= this.#options.retain) break;
      if (this.#forced.has(oldest)) continue;
      this.#forced.add(oldest);
      void oldest.close({ timeoutMs: 0 });
    }
    return closing.then((report) => {
      this.#draining.delete(old);
      this.#forced.delete(old);
      emitSafely(this, 'drained', report);
      return report;
    });
  }

  #watch(plugin: Plugin<T>): void {
    plugin.once('crash', (error) => {
      if (plugin !== this.#current || this.#shuttingDown()) return;
      emitSafely(this, 'crash', error);
      this.#crashed(error);
    });
  }

  /** The current version died (or a restart failed): restart within the intensity limit, or fail. */
  #crashed(error: PluginCrashedError | undefined): void {
    if (this.#shuttingDown()) return;
    const backoff = this.#restarts.next(error);
    if (backoff === undefined) {
      this.#setState('failed');
      this.#restarts.settle();
      const lastCrash = this.#restarts.lastCrash;
      if (lastCrash) emitSafely(this, 'failed', lastCrash);
      return;
    }
    this.#setState('restarting');
    void this.#restarts.backoff(backoff).then(() => {
      // A user swap waiting meanwhile goes first; the pump restarts afterwards if it fails.
      if (this.#state === 'restarting' && !this.#waiting) this.#restart();
    });
  }

  /**
   * Closes the current version and every draining one (each drains first, within `timeoutMs`, default
   * `drainTimeoutMs`), ends the standby, and refuses swaps and calls from now on. Resolves with the
   * versions' close reports, current first.
   */
  close(options?: { timeoutMs?: number }): Promise<CloseReport[]> {
    if (this.#closing) return this.#closing;
    this.#setState('closing');
    this.#restarts.stop();
    this.#waiting?.reject(this.#errors.hotSwapClosed('hot swap closed before this swap started'));
    void this.#candidate?.destroy(this.#errors.hotSwapClosed('hot swap closed during the health check'));
    this.#waiting = undefined;
    const timeoutMs = options?.timeoutMs ?? this.#options.drainTimeoutMs;
    const closes = Promise.all([this.#current, ...this.#draining].map((p) => p.close({ timeoutMs })));
    // The standby is ended now, and again once the queue stopped (a swap running now may end after close).
    const standby = Promise.all([this.#standby?.end(), this.#pumping.then(() => this.#standby?.end())]);
    this.#closing = Promise.all([closes, this.#pumping, standby]).then(([reports]) => {
      this.#setState('closed');
      return reports;
    });
    return this.#closing;
  }

  /** Ends every version now: calls in flight reject `ERR_PLUGIN_DESTROYED`. */
  async destroy(reason?: unknown): Promise<void> {
    const closing = this.close({ timeoutMs: 0 });
    await Promise.all([this.#current, ...this.#draining].map((p) => p.destroy(reason)));
    await closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Loads the first version and returns a HotSwap routing calls to it; `hs.swap()` moves traffic to the
 * next. Rejects like `loadPlugin()` when the first version cannot be loaded.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- an untyped plugin: any exports, any method
export async function createHotSwap<T = Record<string, any>>(
  specifier: PluginSpecifier,
  options?: HotSwapOptions<T>,
): Promise<HotSwap<T>> {
  const resolved = resolveHotSwapOptions(options);
  const { plugin: first } = await loadVersion<T>(specifier, resolved.load);
  const hs = new HotSwap<T>(internal, first, specifier, resolved);
  // For closeAll(): the hot swap closes its versions and its standby, and stops swapping.
  const untrack = trackLive('owner', { close: (timeoutMs) => hs.close({ timeoutMs }) });
  hs.on('state', (state) => state === 'closed' && untrack());
  return hs;
}
