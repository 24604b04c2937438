/**
 * Inline (debug) versions: the module is imported in the host thread with a cache-busting query, so
 * breakpoints and stack traces work, and served with the same API and lifecycle as a worker version:
 * arguments and results are structured-cloned, reserved names are not callable, `onLoad` → `onInit`
 * → calls → drain → `onFree`. DEBUG ONLY: an ES module is never evicted from the module cache, so every
 * inline version stays in memory for the life of the process; only the entry module is cache-busted
 * (its relative imports are shared between versions); a crash or an infinite loop is the host's.
 */
import type { MessagePort } from 'node:worker_threads';
import { buildContext, servePeer } from '../shared/plugin-context.js';
import {
  importNamespace,
  readHook,
  readSurface,
  type Fn,
  type ModuleSurface,
  type Namespace,
} from '../shared/module-surface.js';
import { PluginCloneError, PluginClosedError, PluginLoadError, PluginNoMethodError } from '../shared/errors.js';
import { HOOK_SERVE } from '../shared/protocol.js';
import { runnableUrl } from '../typescript.js';
import { deadline } from '../time.js';
import type { InitDescriptor } from '../shared/peer-wire.js';
import type { ManagedVersion } from './version.js';

let loads = 0;

export class InlineVersion implements ManagedVersion {
  readonly methods: readonly string[];
  readonly dependencies: readonly string[];
  readonly #methods: ReadonlyMap<string, Fn>;
  readonly #hooks = new Map<string, Fn>();
  readonly #ports = new Set<MessagePort>();
  readonly #onFree: Fn | undefined;
  #state: 'ready' | 'closing' | 'closed' = 'ready';
  #inFlight = 0;
  #idle: (() => void) | undefined;

  private constructor(
    readonly name: string,
    readonly version: string,
    surface: ModuleSurface,
  ) {
    this.#methods = surface.methods;
    this.methods = Object.freeze([...this.#methods.keys()]);
    this.dependencies = Object.freeze(surface.dependencies);
    this.#onFree = surface.onFree;
    const { reloadable, onInit } = surface;
    if (reloadable) this.#hooks.set('reloadable', reloadable);
    if (onInit)
      this.#hooks.set('onInit', (desc) => onInit(buildContext(desc as InitDescriptor, (port) => this.#track(port))));
    this.#hooks.set(HOOK_SERVE, (port) => servePeer(this.#track(port as MessagePort), this.#methods));
  }

  static async load(name: string, entry: string, hash: string, data: unknown): Promise<InlineVersion> {
    let ns: Namespace;
    try {
      const url = `${await runnableUrl(entry, { pluginName: name, version: hash })}?isoplug-inline=${hash}-${++loads}`;
      ({ ns } = await importNamespace(url));
    } catch (error) {
      throw new PluginLoadError(`cannot load plugin ${name} from ${entry} (import)`, {
        pluginName: name,
        version: hash,
        cause: error,
      });
    }
    try {
      await readHook(ns, 'onLoad')?.(structuredClone(data));
    } catch (error) {
      throw new PluginLoadError(`cannot load plugin ${name} from ${entry} (onLoad)`, {
        pluginName: name,
        version: hash,
        cause: error,
      });
    }
    return new InlineVersion(name, hash, readSurface(ns));
  }

  #track(port: MessagePort): MessagePort {
    this.#ports.add(port);
    return port;
  }

  hasHook(name: string): boolean {
    return this.#hooks.has(name);
  }

  #clone(value: unknown, method: string, direction: 'argument' | 'result'): unknown {
    try {
      return structuredClone(value);
    } catch (error) {
      throw new PluginCloneError(
        `${method}(): ${direction === 'argument' ? 'an argument' : 'the result'} cannot be cloned`,
        {
          pluginName: this.name,
          version: this.version,
          method,
          cause: error,
          direction,
        },
      );
    }
  }

  async #run(fn: Fn | undefined, method: string, args: unknown[], clone: boolean): Promise<unknown> {
    const context = { pluginName: this.name, version: this.version, method };
    if (this.#state !== 'ready')
      throw new PluginClosedError(
        `plugin ${this.name}@${this.version} is ${this.#state}; ${method}() refused`,
        context,
      );
    if (fn === undefined)
      throw new PluginNoMethodError(`plugin ${this.name}@${this.version} has no method ${method}`, context);
    const copies = clone ? (this.#clone(args, method, 'argument') as unknown[]) : args;
    this.#inFlight++;
    try {
      const result = await Reflect.apply(fn, undefined, copies);
      return clone ? this.#clone(result, method, 'result') : result;
    } finally {
      if (--this.#inFlight === 0) this.#idle?.();
    }
  }

  call(method: string, args: unknown[]): Promise<unknown> {
    return this.#run(this.#methods.get(method), method, args, true);
  }

  hook(name: string, args: unknown[], transfer: MessagePort[]): Promise<unknown> {
    for (const port of transfer) this.#track(port);
    return this.#run(this.#hooks.get(name), name, args, false);
  }

  async close(timeoutMs: number): Promise<void> {
    if (this.#state !== 'ready') return;
    this.#state = 'closing';
    const limit = deadline(timeoutMs);
    try {
      const drained =
        this.#inFlight === 0 ||
        (await limit.race(new Promise<boolean>((resolve) => (this.#idle = () => resolve(true))), false));
      if (drained && this.#onFree)
        await limit
          .race(
            Promise.resolve().then(() => this.#onFree!()),
            undefined,
          )
          .catch(() => {});
    } finally {
      limit.cancel();
      this.#end();
    }
  }

  destroy(): Promise<void> {
    this.#end();
    return Promise.resolve();
  }

  #end(): void {
    this.#state = 'closed';
    for (const port of this.#ports) port.close();
    this.#ports.clear();
  }
}
