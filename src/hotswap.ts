/**
 * A HotSwap routes every call to the version current when the call starts, and moves traffic from
 * one version to the next in one synchronous step. This file holds the routing and the switch; the
 * queue is swap-queue.ts, the load and check candidate.ts, retention retire.ts, the standby standby.ts,
 * restart supervision restart.ts, the canary canary.ts (its split and figures rollout.ts).
 *
 * Policies (the README details each): swaps run one at a time, the latest waiting request wins
 * (`ERR_SWAP_SUPERSEDED` for the one it replaced) and the queue is released at the switch; a swap is
 * transactional (load, `onLoad`, health check, then the switch; else `ERR_SWAP_FAILED` and nothing
 * changed); at most `retain` old versions drain at once; restart and standby are opt-in; `prepare()`
 * compiles and runs the next module on the standby; a rollout's canary serves beside the current version,
 * `promote()`/`abort()` switch at once, and a `swap()` or a new rollout ends it.
 */
import { EventEmitter } from 'node:events';
import { createApi, type CallByName, type PluginApi } from './api.js';
import { swapContext, swapTrace, traced } from './diagnostics.js';
import { emitSafely } from './events.js';
import type {
  AbortReport,
  HotSwapEvents,
  HotSwapState,
  RolloutReport,
  SwapEvent,
  SwapReport,
  VersionInfo,
} from './hotswap-events.js';
import {
  resolveHotSwapOptions,
  resolvePrepareOptions,
  resolveSwapOptions,
  type HotSwapOptions,
  type PrepareOptions,
  type ResolvedHotSwapOptions,
  type SwapOptions,
} from './hotswap-options.js';
import { loadVersion } from './load.js';
import { resolveCallOptions, type CallOptions, type ResolvedLoadOptions } from './options.js';
import { kInvoke, type CloseReport, type Plugin, type PluginCallView } from './plugin.js';
import type { PluginSpecifier } from './resolve.js';
import { Restarts } from './restart.js';
import { loadCandidate, type Job } from './candidate.js';
import { CanarySlot, type Incoming } from './canary.js';
import { Retirement } from './retire.js';
import { StickyKey } from './rollout.js';
import {
  checkPercent,
  resolveRolloutOptions,
  splitKey,
  type HotSwapCallOptions,
  type RolloutOptions,
} from './rollout-options.js';
import { PluginCrashedError } from './shared/errors.js';
import { Standby } from './standby.js';
import { trackLive } from './live.js';
import { SwapQueue } from './swap-queue.js';
import { VersionErrors } from './version-errors.js';

export type { HotSwapState, SwapReport, SwapEvent, VersionInfo, HotSwapEvents } from './hotswap-events.js';

interface Request extends Job {
  readonly resolve: (report: SwapReport | RolloutReport) => void;
  readonly reject: (error: Error) => void;
}

const internal = Symbol('isoplug.hotswap');

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- an untyped plugin: any exports, any method
export class HotSwap<T = Record<string, any>> extends EventEmitter<HotSwapEvents> implements AsyncDisposable {
  /** The typed API; each call goes to the version current when it starts (or to the canary, by the split). */
  readonly api: PluginApi<T>;
  /** Calls a method by name, routed as `api`. */
  readonly call: CallByName<T>;

  #current: Plugin<T>;
  #specifier: PluginSpecifier;
  /** The current version's load options (a restart loads it again with them). */
  #load: ResolvedLoadOptions;
  readonly #options: ResolvedHotSwapOptions;
  /** Old versions draining under the retention bound. */
  readonly #retired: Retirement<T>;
  #state: HotSwapState = 'ready';
  /** Swaps, rollouts and restarts, one at a time, latest waiting wins. */
  readonly #queue: SwapQueue<Request>;
  readonly #restarts: Restarts;
  /** A loaded version not yet switched to (during its health check). */
  #candidate: Plugin<T> | undefined;
  /** The rollout's canary, serving its share beside the current version. */
  readonly #slot: CanarySlot<T>;
  #closing: Promise<CloseReport[]> | undefined;
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
    this.#retired = new Retirement(options.drainTimeoutMs, options.retain, (report) =>
      emitSafely(this, 'drained', report),
    );
    this.#slot = new CanarySlot<T>({
      retire: (plugin) => this.#retired.retire(plugin),
      emit: (event, ...args) => emitSafely(this, event, ...args),
      shuttingDown: () => this.#shuttingDown(),
      current: () => this.#current.version,
    });
    this.#standby = options.standby ? new Standby(options.load) : undefined;
    this.#queue = new SwapQueue<Request>(
      (request) => this.#run(request),
      // Booted after the swap, not during it: on a small machine a thread booting beside the new
      // version's import would slow the swap it is meant to speed up.
      () => !this.#shuttingDown() && this.#standby?.replenish(),
      // A user swap that failed while restarting replaced the pending restart: restart now.
      () => this.#state === 'restarting' && !this.#restarts.scheduled && this.#restart(),
    );
    this.#watch(first);
    this.#methods = new Set(first.methods);
    this.api = createApi<T>(this.#methods, (method, args) => this.#route(method, args, undefined, undefined));
    this.call = ((name: string, ...args: unknown[]) =>
      this.#route(name, args, undefined, undefined)) as HotSwap<T>['call'];
    this.#standby?.replenish();
  }

  get state(): HotSwapState {
    return this.#state;
  }

  /** The current version: it serves every call, or the calls the canary does not take. */
  get current(): Plugin<T> {
    return this.#current;
  }

  /** The current version's label. */
  get version(): string {
    return this.#current.version;
  }

  /** The rollout's candidate while it serves beside the current version, else undefined. */
  get canary(): Plugin<T> | undefined {
    return this.#slot.canary?.plugin;
  }

  /** The canary's share of calls, from 0 to 100; 0 without a canary. */
  get percent(): number {
    return this.#slot.canary?.percent ?? 0;
  }

  /** The current version, the canary and the versions still draining, with their counters. */
  get versions(): VersionInfo[] {
    return this.#slot.versions(this.#current, this.#retired.draining);
  }

  /**
   * Per-call options, as `Plugin.with()`, plus a sticky `key`: during a rollout the view's calls go to
   * the canary iff the key's bucket is below `percent × 100` (hashed once per view and salt).
   */
  with(options: HotSwapCallOptions): PluginCallView<T> {
    const { key, call } = splitKey(options);
    const resolved = resolveCallOptions(call);
    const sticky = key === undefined ? undefined : new StickyKey(key);
    return {
      api: createApi<T>(this.#methods, (method, args) => this.#route(method, args, resolved, sticky)),
      call: ((name: string, ...args: unknown[]) =>
        this.#route(name, args, resolved, sticky)) as PluginCallView<T>['call'],
    };
  }

  /** The errors of the current version (their context: its name and label). */
  get #errors(): VersionErrors {
    return new VersionErrors(this.#current.name, this.#current.version);
  }

  /** Where a call goes: the canary when the split picks it, else the current version. */
  #route(method: string, args: unknown[], options: CallOptions | undefined, sticky: StickyKey | undefined) {
    const canary = this.#slot.canary;
    if (canary === undefined || this.#shuttingDown() || !canary.takes(sticky)) {
      return this.#toCurrent(method, args, options);
    }
    return canary.observe(canary.plugin, canary.plugin[kInvoke](method, args, options));
  }

  /** A call for the current version: it serves it, or the call waits for a restart, or it is refused. */
  #toCurrent = (method: string, args: unknown[], options: CallOptions | undefined): Promise<unknown> => {
    switch (this.#state) {
      case 'ready': {
        const call = this.#current[kInvoke](method, args, options);
        return this.#slot.canary ? this.#slot.canary.observe(this.#current, call) : call;
      }
      case 'restarting':
        return this.#restarts.wait(method, args, options, this.#load.callTimeoutMs, this.#errors, this.#toCurrent);
      case 'failed':
        return Promise.reject(this.#errors.failedRefusal(method, this.#restarts.lastCrash));
      default:
        return Promise.reject(this.#errors.hotSwapClosed(`hot swap is ${this.#state}; ${method}() refused`, method));
    }
  };

  /** Closing or closed (a method: a check after an await is not narrowed away by one before it). */
  #shuttingDown(): boolean {
    return this.#state === 'closing' || this.#state === 'closed';
  }

  #setState(next: HotSwapState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    emitSafely(this, 'state', next, previous);
  }

  /** Compiles (and runs) the next module on the standby (standby.ts); rejects only for bad options. README: "Code cache". */
  async prepare(specifier: PluginSpecifier, options?: PrepareOptions): Promise<boolean> {
    return (await this.#standby?.prepare(specifier, this.#load, resolvePrepareOptions(options))) ?? false;
  }

  /**
   * Loads `specifier` as the next version, checks it, moves traffic to it, then drains and closes
   * the old version. Resolves after the drain. Rejects `ERR_SWAP_FAILED` (the current version keeps
   * serving), `ERR_SWAP_SUPERSEDED` (a later request replaced this one while it waited) or
   * `ERR_PLUGIN_CLOSED` (the hot swap is closing). A canary serving at the switch is aborted: the new
   * version takes every call.
   */
  swap(specifier: PluginSpecifier, options?: SwapOptions<T>): Promise<SwapReport> {
    const job = (): Job => ({ specifier, ...resolveSwapOptions(options, this.#options), reason: 'swap' });
    return this.#enqueue(job) as Promise<SwapReport>;
  }

  /**
   * Loads `specifier` as a candidate exactly as `swap()` does (through the same queue: load, `onLoad`,
   * health check), then routes `percent`% of calls to it beside the current version. Resolves once it
   * serves. Rejects as `swap()` does; on `ERR_SWAP_FAILED` nothing changed. A canary already serving is
   * replaced (it drains and closes, with an `abort` event).
   */
  rollout(specifier: PluginSpecifier, options: RolloutOptions<T>): Promise<RolloutReport> {
    const job = (): Job => {
      const { swap, ...rollout } = resolveRolloutOptions(options, this.#options);
      return { specifier, ...swap, reason: 'rollout', rollout };
    };
    return this.#enqueue(job) as Promise<RolloutReport>;
  }

  /**
   * Sets the canary's share, from 0 to 100, for the calls that start from now on. Throws
   * `ERR_ROLLOUT_NO_CANARY` without a canary, `ERR_PLUGIN_CLOSED` once the hot swap closes.
   */
  setPercent(percent: number): void {
    const next = checkPercent('percent', percent);
    if (this.#shuttingDown()) throw this.#errors.hotSwapClosed(`hot swap is ${this.#state}; setPercent() refused`);
    if (!this.#slot.setPercent(next)) throw this.#errors.noCanary('setPercent()');
  }

  /**
   * Makes the canary the current version at once (no load: it is loaded and checked already); the
   * previous current version drains and closes as in a swap. Resolves after that drain, with the
   * report of a swap. Rejects `ERR_ROLLOUT_NO_CANARY` without a canary.
   */
  promote(): Promise<SwapReport> {
    if (this.#shuttingDown()) {
      return Promise.reject(this.#errors.hotSwapClosed(`hot swap is ${this.#state}; promote() refused`));
    }
    const canary = this.#slot.take();
    if (canary === undefined) return Promise.reject(this.#errors.noCanary('promote()'));
    return this.#switch(canary, 'promote');
  }

  /**
   * Ends the rollout: the current version takes every call from now on, the canary drains and
   * closes. Resolves after its close; with undefined when no canary serves (none, or it was aborted
   * already), so that it can be called whatever happened meanwhile.
   */
  abort(reason?: unknown): Promise<AbortReport | undefined> {
    return this.#slot.end(this.#slot.canary, reason, false);
  }

  /** Queues the job `make` validates and makes (its options' TypeError or RangeError rejects). */
  #enqueue(make: () => Job): Promise<SwapReport | RolloutReport> {
    let job: Job;
    try {
      job = make();
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#shuttingDown()) {
      return Promise.reject(this.#errors.hotSwapClosed(`hot swap is ${this.#state}; ${job.reason} refused`));
    }
    const context = swapContext(this.#current, job.specifier, job.reason);
    const superseded = () => this.#errors.superseded('a later swap replaced this one before it started');
    const enqueue = (resolve: Request['resolve'], reject: Request['reject']) =>
      this.#queue.push({ ...job, resolve, reject }, superseded);
    return traced(swapTrace, context, () => new Promise(enqueue));
  }

  /** Queues a restart of the current version's module. */
  #restart(): void {
    const job = { specifier: this.#specifier, load: this.#load, healthCheck: undefined, healthCheckTimeoutMs: 0 };
    this.#enqueue(() => ({ ...job, reason: 'restart' })).catch(() => {});
  }

  /** One swap, rollout or restart: never throws; settles the request. */
  async #run(request: Request): Promise<void> {
    if (request.reason === 'restart' && this.#state !== 'restarting') {
      // A swap already replaced the crashed version.
      return request.reject(this.#errors.superseded('a swap replaced the crashed version before the restart'));
    }
    const loaded = await loadCandidate<T>(request, {
      standby: this.#standby,
      loading: (plugin) => (this.#candidate = plugin),
      shuttingDown: () => this.#shuttingDown(),
    });
    if (!loaded.ok) {
      return 'closed' in loaded ? request.reject(loaded.closed) : this.#failed(request, loaded.message, loaded.cause);
    }
    const { plugin: next, standby, loadMs } = loaded;
    this.#watch(next);
    const incoming = { plugin: next, specifier: request.specifier, load: request.load, loadMs, standby };
    if (request.reason === 'rollout') return request.resolve(this.#slot.install(incoming, request.rollout!));
    // A swap ends the rollout: the new version takes every call (a restart replaces the current only).
    if (request.reason === 'swap') void this.#slot.end(this.#slot.canary, `a swap to ${next.version}`, false);
    void this.#switch(incoming, request.reason).then(request.resolve);
  }

  /**
   * The switch: one synchronous step. Calls that started before it stay on `from`, which is retired
   * before any event fires, so a listener that closes the hot swap closes it too. Resolves after the
   * drain of `from`.
   */
  #switch(incoming: Incoming<T>, reason: SwapEvent['reason']): Promise<SwapReport> {
    const { plugin: next, loadMs, standby } = incoming;
    const from = this.#current;
    const switchStarted = performance.now();
    this.#current = next;
    this.#specifier = incoming.specifier;
    this.#load = incoming.load;
    const retiring = this.#retired.retire(from);
    this.#methods.clear();
    for (const method of next.methods) this.#methods.add(method);
    const switchMs = performance.now() - switchStarted;
    const drainStarted = performance.now();
    const report = retiring.then((close) => {
      const drainMs = performance.now() - drainStarted;
      const { codeCache } = next;
      return { from: from.version, to: next.version, loadMs, switchMs, drainMs, close, standby, codeCache };
    });
    // The old version's close emits events: a listener may have closed the hot swap meanwhile.
    if (this.#shuttingDown()) return report;
    this.#setState('ready');
    this.#restarts.recovered();
    const event = { from: from.version, to: next.version, loadMs, reason };
    if (reason === 'promote') emitSafely(this, 'promote', event);
    emitSafely(this, 'swap', event);
    if (reason === 'restart') emitSafely(this, 'restart', { version: next.version, attempt: this.#restarts.attempt });
    return report;
  }

  #failed(request: Request, message: string, cause: unknown): void {
    request.reject(this.#errors.swapFailed(message, cause));
    if (request.reason === 'restart') {
      this.#restarts.bootFailed();
      this.#crashed(cause instanceof PluginCrashedError ? cause : undefined);
    }
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
      if (this.#state === 'restarting' && !this.#queue.waiting) this.#restart();
    });
  }

  /**
   * Closes the current version and every draining one (each drains first, within `timeoutMs`, default
   * `drainTimeoutMs`), ends the standby, and refuses swaps and calls from now on. Resolves with the
   * versions' close reports: the current version's, the canary's (during a rollout), then the draining ones'.
   */
  close(options?: { timeoutMs?: number }): Promise<CloseReport[]> {
    if (this.#closing) return this.#closing;
    this.#setState('closing');
    this.#restarts.stop();
    this.#queue.cancel(() => this.#errors.hotSwapClosed('hot swap closed before this swap started'));
    void this.#candidate?.destroy(this.#errors.hotSwapClosed('hot swap closed during the health check'));
    const timeoutMs = options?.timeoutMs ?? this.#options.drainTimeoutMs;
    const closes = Promise.all(this.#live().map((p) => p.close({ timeoutMs })));
    // The standby is ended now, and again once the queue stopped (a swap running now may end after close).
    const standby = Promise.all([this.#standby?.close(), this.#queue.pumping.then(() => this.#standby?.end())]);
    this.#closing = Promise.all([closes, this.#queue.pumping, standby]).then(([reports]) => {
      this.#setState('closed');
      return reports;
    });
    return this.#closing;
  }

  /** Every version still alive: the current one, the canary, the draining ones. */
  #live(): Plugin<T>[] {
    const canary = this.#slot.canary?.plugin;
    return [this.#current, ...(canary ? [canary] : []), ...this.#retired.draining];
  }

  /** Ends every version now: calls in flight reject `ERR_PLUGIN_DESTROYED`. */
  async destroy(reason?: unknown): Promise<void> {
    const closing = this.close({ timeoutMs: 0 });
    await Promise.all(this.#live().map((p) => p.destroy(reason)));
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
  return hs.on('state', (state) => state === 'closed' && untrack());
}
