/**
 * One plugin version as the manager sees it, whichever way it is isolated: a worker (`Plugin`, the
 * product) or inline in the host thread (inline.ts, debug only). Hooks go on the version's ordinary
 * call path, flagged as hook calls (protocol.ts `h`).
 */
import type { MessagePort } from 'node:worker_threads';
import type { LoadBounds } from '../admission.js';
import { loadVersion } from '../load.js';
import { resolveLoadOptions, type ResolvedLoadOptions } from '../options.js';
import { kHasHook, kHook, kInvoke, type CloseReport, type Plugin } from '../plugin.js';
import type { InlineLeftovers } from './inline-leftovers.js';

/** How a version of a managed plugin ended: the manager's `versionClosed` event. */
export interface VersionClosed {
  readonly name: string;
  readonly version: string;
  /** `'closed'`: drained and `onFree` ran (or timed out); `'destroyed'`: ended at once (it never switched in). */
  readonly how: 'closed' | 'destroyed';
  /** A worker version's close report (undefined when destroyed, and in inline mode). */
  readonly report: CloseReport | undefined;
  /** An inline version's leftovers: timers ended at close, handles still open (undefined for a worker version). */
  readonly leftovers: InlineLeftovers | undefined;
}

export interface ManagedVersion {
  readonly name: string;
  readonly version: string;
  readonly methods: readonly string[];
  readonly dependencies: readonly string[];
  hasHook(name: string): boolean;
  call(method: string, args: unknown[]): Promise<unknown>;
  /** Calls a hook; `transfer` lists the MessagePorts in `args` to move (a worker) or to keep track of (inline). */
  hook(name: string, args: unknown[], transfer: MessagePort[]): Promise<unknown>;
  /** Drains within `timeoutMs`, runs `onFree`, ends; resolves with the worker's close report, if any. */
  close(timeoutMs: number): Promise<CloseReport | undefined>;
  /** What an inline version left behind, once it ended. */
  readonly leftovers: InlineLeftovers | undefined;
  /** Ends now (a version that never switched in). */
  destroy(): Promise<void>;
}

export class WorkerVersion implements ManagedVersion {
  readonly #plugin: Plugin;
  private constructor(plugin: Plugin) {
    this.#plugin = plugin;
  }

  static async load(
    name: string,
    entry: string,
    hash: string,
    data: unknown,
    options: ResolvedLoadOptions,
    bounds: LoadBounds,
  ): Promise<WorkerVersion> {
    const load = resolveLoadOptions({ ...options, data, name, version: hash });
    return new WorkerVersion((await loadVersion(entry, load, undefined, bounds)).plugin);
  }

  get name(): string {
    return this.#plugin.name;
  }
  get version(): string {
    return this.#plugin.version;
  }
  get methods(): readonly string[] {
    return this.#plugin.methods;
  }
  get dependencies(): readonly string[] {
    return this.#plugin.dependencies;
  }
  /** The worker's Plugin handle (state, stats, events). */
  get plugin(): Plugin {
    return this.#plugin;
  }
  hasHook(name: string): boolean {
    return this.#plugin[kHasHook](name);
  }
  call(method: string, args: unknown[]): Promise<unknown> {
    return this.#plugin[kInvoke](method, args, undefined);
  }
  hook(name: string, args: unknown[], transfer: MessagePort[]): Promise<unknown> {
    return this.#plugin[kHook](name, args, transfer.length > 0 ? { transfer } : undefined);
  }
  close(timeoutMs: number): Promise<CloseReport> {
    return this.#plugin.close({ timeoutMs });
  }
  readonly leftovers = undefined;
  destroy(): Promise<void> {
    return this.#plugin.destroy();
  }
}
