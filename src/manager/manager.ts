/**
 * PluginManager: a directory of plugins, reloaded as one transactional set (edwingeng/hotswap's model,
 * the Node way: each version in its own worker).
 *
 * reload():
 *   scan + hash ─▶ reloadable() on the current versions that changed ─▶ dependents of changed plugins
 *   join the set ─▶ load every new version (import, onLoad) ─▶ dependency order of the next set
 *   (missing / cycle fail) ─▶ in that order: vault + peer channels, onInit(ctx) ─▶ SWITCH (one
 *   synchronous step) ─▶ old versions drain and close, dependents before their dependencies.
 * Any failure before the switch destroys the new versions; the current set keeps serving untouched and
 * reload() rejects `ERR_MANAGER_RELOAD` with each failing plugin's cause. Reloads are serialized.
 */
import { EventEmitter } from 'node:events';
import { readdir, readFile, stat } from 'node:fs/promises';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import {
  ManagerClosedError,
  ManagerNoPluginError,
  ManagerNotReloadableError,
  ManagerReloadError,
  type ReloadFailure,
} from '../shared/errors.js';
import { emitSafely } from '../events.js';
import { HOOK_SERVE } from '../shared/protocol.js';
import { dependencyOrder } from './graph.js';
import { InlineVersion } from './inline.js';
import { LiveJobs, makeJob, type LiveJob } from './jobs.js';
import { resolveManagerOptions, type PluginManagerOptions, type ResolvedManagerOptions } from './options.js';
import { diffScan, scanPlugins, type ManagerFs, type ScannedPlugin } from './scan.js';
import { serveVault, serviceTable } from './vault.js';
import { WorkerVersion, type ManagedVersion, type VersionClosed } from './version.js';
import { watchDirectory } from './watch.js';
import { ReloadDeadline } from './reload-deadline.js';
import { trackLive } from '../live.js';
import type { InitDescriptor, PeerDescriptor } from '../shared/peer-wire.js';

/** What `reload()` resolves with (plugin names). */
export interface ReloadResult {
  /** Same content as the current version: not touched. */
  readonly unchanged: string[];
  /** Changed or removed, but the current version's `reloadable()` returned false: kept. */
  readonly notReloadable: string[];
  /** New versions switched in: new, changed, and dependents of those. */
  readonly loaded: string[];
  /** Gone from the directory: their versions were closed. */
  readonly removed: string[];
}

/** One result of `invokeEach()`. */
export interface EachResult {
  readonly name: string;
  readonly value: unknown;
}

export interface ManagerEvents {
  reload: [result: ReloadResult];
  reloadError: [error: Error];
  /** A version ended: retired by a reload, removed, closed with the manager, or a new one destroyed by a failed reload. */
  versionClosed: [closed: VersionClosed];
}

interface Entry {
  readonly name: string;
  readonly version: ManagedVersion;
  readonly hash: string;
  /** Host-side ports of this version (its vault), closed when it ends. */
  readonly ports: MessagePort[];
}

const nodeFs: ManagerFs = { readdir, stat, readFile };

export class PluginManager extends EventEmitter<ManagerEvents> implements AsyncDisposable {
  readonly #options: ResolvedManagerOptions;
  readonly #services: ReturnType<typeof serviceTable>;
  /** The data bag plugins read and write through `ctx.vault.get/set`. */
  readonly #data = new Map<string, unknown>();
  #current = new Map<string, Entry>();
  /** Names of the current set in dependency order. */
  #order: string[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | undefined;
  readonly #jobs = new LiveJobs((job) => this.invoke(job.plugin, job.fn, job.data));
  readonly #stops = new Set<() => void>();
  readonly #untrack: () => void;

  /** Throws a `PluginOptionTypeError`/`PluginOptionRangeError` naming a bad option. */
  constructor(options: PluginManagerOptions) {
    super();
    this.#options = resolveManagerOptions(options);
    this.#services = serviceTable(this.#options.services);
    // For closeAll(): the manager closes its versions, dependents first.
    this.#untrack = trackLive('owner', { close: () => this.close() });
  }

  /** The current set's names, in dependency order. */
  get plugins(): readonly string[] {
    return [...this.#order];
  }

  /** The current version label (content hash) of `name`, or undefined. */
  versionOf(name: string): string | undefined {
    return this.#current.get(name)?.hash;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Scans the directory and switches to the changed plugins as one set (see the file comment). */
  reload(): Promise<ReloadResult> {
    if (this.#closing) return Promise.reject(this.#closedError('reload'));
    const run = this.#queue.then(() => (this.#closing ? Promise.reject(this.#closedError('reload')) : this.#bounded()));
    this.#queue = run.catch(() => {});
    return run;
  }

  #closedError(method: string): ManagerClosedError {
    return new ManagerClosedError(`the plugin manager is closed; ${method}() refused`, { method });
  }

  /** One reload within `reloadTimeoutMs`. */
  async #bounded(): Promise<ReloadResult> {
    const limit = new ReloadDeadline(this.#options.reloadTimeoutMs);
    try {
      return await this.#reload(limit);
    } finally {
      limit.cancel();
    }
  }

  async #reload(limit: ReloadDeadline): Promise<ReloadResult> {
    const scanning = scanPlugins(this.#options.fs ?? nodeFs, this.#options.dir);
    const scanned = await limit.race(scanning, undefined);
    if (scanned === undefined)
      throw new ManagerReloadError('reload failed: the scan did not finish in time', [
        { name: '', error: limit.error('scan') },
      ]);
    const current = this.#current;
    const diff = diffScan(new Map([...current].map(([name, entry]) => [name, entry.hash])), scanned);
    const added = new Set(diff.added);
    const unchanged = diff.unchanged;
    const notReloadable: string[] = [];
    const removed: string[] = [];
    const reload = new Map<string, ScannedPlugin>();
    const failures: ReloadFailure[] = [];
    // Asked at most once per plugin in a reload: one answer for the whole transaction, one failure at most.
    const answers = new Map<string, Promise<boolean>>();
    const ask = async (entry: Entry): Promise<boolean> => {
      if (!entry.version.hasHook('reloadable')) return true;
      try {
        return (await entry.version.hook('reloadable', [], [])) !== false;
      } catch (error) {
        failures.push({ name: entry.name, error });
        return true;
      }
    };
    const reloadable = (entry: Entry): Promise<boolean> => {
      let answer = answers.get(entry.name);
      if (answer === undefined) answers.set(entry.name, (answer = ask(entry)));
      return answer;
    };
    for (const [name, plugin] of scanned) {
      if (added.has(name)) reload.set(name, plugin);
      else if (unchanged.includes(name)) continue;
      else if (await reloadable(current.get(name)!)) reload.set(name, plugin);
      else notReloadable.push(name);
    }
    for (const name of diff.removed) {
      if (await reloadable(current.get(name)!)) removed.push(name);
      else notReloadable.push(name);
    }
    // A kept version depending on a plugin that goes must reload with it (new channels to the new version).
    const pinned = new Set<string>();
    for (let grew = true; grew;) {
      grew = false;
      for (const [name, entry] of current) {
        if (reload.has(name) || removed.includes(name) || pinned.has(name)) continue;
        if (!entry.version.dependencies.some((dep) => reload.has(dep) || removed.includes(dep))) continue;
        const plugin = scanned.get(name);
        if (plugin === undefined) continue;
        if (!(await reloadable(entry))) {
          pinned.add(name);
          failures.push({
            name,
            error: new ManagerNotReloadableError(
              `plugin ${name} must reload with its dependencies, but reloadable() returned false`,
              { pluginName: name, version: entry.hash },
            ),
          });
          continue;
        }
        // Its answer was yes, so it is not among the notReloadable: it was unchanged.
        reload.set(name, plugin);
        unchanged.splice(unchanged.indexOf(name), 1);
        grew = true;
      }
    }
    if (failures.length > 0)
      throw new ManagerReloadError(`reload failed: ${failures.map((f) => f.name).join(', ')}`, failures);
    const result: ReloadResult = {
      unchanged: unchanged.sort(),
      notReloadable: notReloadable.sort(),
      loaded: [...reload.keys()].sort(),
      removed: removed.sort(),
    };
    if (reload.size === 0 && removed.length === 0) return this.#reloaded(result);

    // Load every new version (import, onLoad), all at once.
    const fresh = new Map<string, Entry>();
    const settled = await Promise.allSettled([...reload.values()].map((plugin) => this.#load(plugin, limit)));
    for (const [i, outcome] of settled.entries()) {
      const name = [...reload.keys()][i]!;
      if (outcome.status === 'fulfilled') fresh.set(name, outcome.value);
      else failures.push({ name, error: outcome.reason });
    }
    const next = new Map(current);
    for (const name of removed) next.delete(name);
    for (const [name, entry] of fresh) next.set(name, entry);
    let order: string[] = [];
    if (failures.length === 0) {
      try {
        order = dependencyOrder(new Map([...next].map(([name, entry]) => [name, entry.version.dependencies])));
      } catch (error) {
        failures.push({ name: (error as { pluginName?: string }).pluginName ?? '', error });
      }
    }
    // Vault and peer channels, then onInit, dependencies first.
    if (failures.length === 0) {
      const extension = this.#options.extension?.();
      for (const name of order) {
        const entry = fresh.get(name);
        if (entry === undefined) continue;
        try {
          await this.#init(entry, next, extension);
        } catch (error) {
          failures.push({ name, error });
          break;
        }
      }
    }
    if (failures.length === 0 && limit.passed) failures.push({ name: '', error: limit.error('onInit') });
    if (failures.length > 0) {
      await Promise.all([...fresh.values()].map((entry) => this.#end(entry, undefined)));
      throw new ManagerReloadError(`reload failed: ${failures.map((f) => f.name).join(', ')}`, failures);
    }
    // The switch: one synchronous step.
    const retired = [...reload.keys(), ...removed].flatMap((name) => current.get(name) ?? []);
    this.#current = next;
    this.#order = order;
    await this.#retire(retired);
    return this.#reloaded(result);
  }

  #reloaded(result: ReloadResult): ReloadResult {
    emitSafely(this, 'reload', result);
    return result;
  }

  async #load(plugin: ScannedPlugin, limit: ReloadDeadline): Promise<Entry> {
    const { name, entry, hash } = plugin;
    const data = this.#options.data;
    const version =
      this.#options.isolation === 'inline'
        ? await InlineVersion.load(name, entry, hash, data, this.#options.inline)
        : await WorkerVersion.load(name, entry, hash, data, this.#options.load, limit.bounds);
    return { name, version, hash, ports: [] };
  }

  /** Gives a new version its vault and its dependencies' channels, and runs its `onInit(ctx)`. */
  async #init(entry: Entry, next: ReadonlyMap<string, Entry>, extension: unknown): Promise<void> {
    if (!entry.version.hasHook('onInit')) return;
    const vault = new MessageChannel();
    entry.ports.push(vault.port1);
    serveVault(vault.port1, this.#services, this.#data, entry.name);
    const transfer: MessagePort[] = [vault.port2];
    const peers: PeerDescriptor[] = [];
    try {
      for (const dep of entry.version.dependencies) {
        const target = next.get(dep)!;
        const channel = new MessageChannel();
        transfer.push(channel.port1);
        try {
          await target.version.hook(HOOK_SERVE, [channel.port2], [channel.port2]);
        } catch (error) {
          channel.port2.close();
          throw error;
        }
        peers.push({ name: dep, port: channel.port1, methods: [...target.version.methods] });
      }
      const desc: InitDescriptor = {
        vault: vault.port2,
        services: [...this.#services.keys()],
        extension: structuredClone(extension),
        peers,
      };
      await entry.version.hook('onInit', [desc], transfer);
    } catch (error) {
      // Ports that did not move to the worker would stay open here.
      for (const port of transfer) port.close();
      throw error;
    }
  }

  /** Closes (drain, onFree) or destroys a version, then its host-side ports. */
  async #end(entry: Entry, drainTimeoutMs: number | undefined): Promise<void> {
    let report;
    try {
      if (drainTimeoutMs === undefined) await entry.version.destroy();
      else report = await entry.version.close(drainTimeoutMs);
    } finally {
      for (const port of entry.ports) port.close();
    }
    const { name, version, leftovers } = entry.version;
    emitSafely(this, 'versionClosed', {
      name,
      version,
      how: drainTimeoutMs === undefined ? 'destroyed' : 'closed',
      report,
      leftovers,
    });
  }

  /** Closes old versions with their drain, each after the old versions that depend on it. */
  async #retire(entries: readonly Entry[]): Promise<void> {
    const closing = new Map<string, Promise<void>>();
    const close = (entry: Entry): Promise<void> => {
      let done = closing.get(entry.name);
      if (done === undefined) {
        const dependents = entries.filter(
          (other) => other !== entry && other.version.dependencies.includes(entry.name),
        );
        done = Promise.all(dependents.map(close)).then(() => this.#end(entry, this.#options.drainTimeoutMs));
        closing.set(entry.name, done);
      }
      return done;
    };
    await Promise.all(entries.map(close));
  }

  /** Calls `fn` on the current version of `plugin`. */
  invoke(plugin: string, fn: string, ...args: unknown[]): Promise<unknown> {
    if (this.#closing) return Promise.reject(this.#closedError('invoke'));
    const entry = this.#current.get(plugin);
    if (entry === undefined)
      return Promise.reject(
        new ManagerNoPluginError(`no plugin named ${String(plugin)}`, {
          pluginName: String(plugin),
          method: String(fn),
        }),
      );
    return entry.version.call(fn, args);
  }

  /** Calls `fn` on every plugin that exports it, one after the other, dependencies first. */
  invokeEach(fn: string, ...args: unknown[]): Promise<EachResult[]> {
    return this.#each(fn, args, this.#order);
  }

  /** As `invokeEach()`, dependents first. */
  invokeEachBackward(fn: string, ...args: unknown[]): Promise<EachResult[]> {
    return this.#each(fn, args, [...this.#order].reverse());
  }

  async #each(fn: string, args: unknown[], order: readonly string[]): Promise<EachResult[]> {
    const results: EachResult[] = [];
    for (const name of order) {
      if (!this.#current.get(name)?.version.methods.includes(fn)) continue;
      results.push({ name, value: await this.invoke(name, fn, ...args) });
    }
    return results;
  }

  /**
   * Runs `plugin`'s `live_*` function `fn` with `data` after `delayMsOrDate`, on the version current
   * when it fires. `data` is copied now: data that cannot be cloned rejects `ERR_MANAGER_JOB_CLONE`.
   * `close()` rejects pending jobs `ERR_MANAGER_CLOSED`. A pending job does not keep the process alive (its timer is unref'd): await the job's promise
   * with something else holding the process (a server), or keep a ref'd timer of your own.
   */
  schedule(delayMsOrDate: number | Date, plugin: string, fn: `live_${string}`, data?: unknown): Promise<unknown> {
    if (this.#closing) return Promise.reject(this.#closedError('schedule'));
    let job: LiveJob;
    try {
      job = makeJob(delayMsOrDate, plugin, fn, data);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#jobs.schedule(job);
  }

  /**
   * Reloads whenever the directory changes (debounced). A failed reload is a `reloadError` event; the
   * current versions keep serving. Returns a function that stops watching; `close()` stops it too.
   */
  watch(): () => void {
    if (this.#closing) throw this.#closedError('watch');
    let queued = false;
    const onChange = () => {
      if (queued) return;
      queued = true;
      void this.#queue.then(() => {
        queued = false;
        if (this.#closing) return;
        this.reload().catch((error: Error) => {
          if (!(error instanceof ManagerClosedError)) emitSafely(this, 'reloadError', error);
        });
      });
    };
    const stopWatching = watchDirectory(this.#options.dir, this.#options.watchDebounceMs, onChange);
    const stop = () => {
      stopWatching();
      this.#stops.delete(stop);
    };
    this.#stops.add(stop);
    return stop;
  }

  /**
   * Stops watching, rejects pending live jobs, waits for a running reload, then drains and closes every
   * version (dependents first). Calls and reloads after it reject `ERR_MANAGER_CLOSED`. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#runClose();
    return this.#closing;
  }

  async #runClose(): Promise<void> {
    for (const stop of [...this.#stops]) stop();
    this.#jobs.cancelAll(
      (job) =>
        new ManagerClosedError(`the plugin manager closed before live job ${job.plugin}.${job.fn} ran`, {
          pluginName: job.plugin,
          method: job.fn,
        }),
    );
    await this.#queue;
    const entries = [...this.#current.values()];
    this.#current = new Map();
    this.#order = [];
    await this.#retire(entries);
    this.#untrack();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
