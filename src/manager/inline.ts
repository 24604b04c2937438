/**
 * Inline (debug) versions: each version is bundled and evaluated in the host thread (inline-bundle.ts,
 * inline-eval.ts), so breakpoints and stack traces work, and served with the same API and lifecycle as
 * a worker version: arguments and results are structured-cloned, reserved names are not callable,
 * `onLoad` → `onInit` → calls → drain → `onFree`. A closed version is garbage once nothing refers to it;
 * its leftover timers are ended at close and its open handles reported (inline-leftovers.ts). DEBUG
 * ONLY: a crash or an infinite loop is the host's.
 *
 * Without esbuild (an optional peer dependency) the entry is imported with a cache-busting query
 * instead: then every version stays in the module cache for the life of the process, and its relative
 * imports are shared between versions. A process warning says so, once.
 */
import type { MessagePort } from 'node:worker_threads';
import { importEsbuild } from '../esbuild.js';
import { bundleInline } from './inline-bundle.js';
import { compileInline, runInline } from './inline-eval.js';
import { runAs, settle, track, type InlineLeftovers } from './inline-leftovers.js';
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
import { checkTransfer, readMark } from '../shared/transfer-check.js';
import type { Transferable } from '../shared/transfer.js';
import { deadline } from '../time.js';
import type { InitDescriptor } from '../shared/peer-wire.js';
import type { ManagedVersion } from './version.js';

let loads = 0;
let warned = false;

/** Options of the inline mode (the manager's `inline` option). */
export interface InlineOptions {
  readonly external: readonly string[];
}

async function hasEsbuild(): Promise<boolean> {
  return importEsbuild().then(
    () => true,
    () => false,
  );
}

/** Imports the entry with a cache-busting query: what the inline mode does without esbuild. */
async function importFresh(entry: string, hash: string): Promise<Namespace> {
  if (!warned) {
    warned = true;
    process.emitWarning(
      'isoplug: esbuild is not installed, so inline versions are imported and never unloaded (npm install --save-dev esbuild)',
      { code: 'ISOPLUG_INLINE_NO_ESBUILD' },
    );
  }
  // TypeScript: stripped by Node where it can, else this throws ERR_PLUGIN_NO_ESBUILD (typescript.ts).
  const url = await runnableUrl(entry, { version: hash });
  return (await importNamespace(`${url}?isoplug-inline=${hash}-${++loads}`)).ns;
}

/** Bundles and evaluates the entry (top-level code runs in `owner`'s scope); with the stage that failed. */
async function evaluate(entry: string, hash: string, options: InlineOptions, owner: object): Promise<Namespace> {
  if (!(await hasEsbuild())) return runAs(owner, () => importFresh(entry, hash));
  const fn = compileInline(entry, await bundleInline(entry, options.external));
  return runAs(owner, () => runInline(entry, fn));
}

export class InlineVersion implements ManagedVersion {
  readonly methods: readonly string[];
  readonly dependencies: readonly string[];
  readonly #methods: ReadonlyMap<string, Fn>;
  readonly #hooks = new Map<string, Fn>();
  readonly #ports = new Set<MessagePort>();
  readonly #onFree: Fn | undefined;
  /** The scope of this version's code (inline-leftovers.ts). */
  readonly #owner: object;
  #state: 'ready' | 'closing' | 'closed' = 'ready';
  #inFlight = 0;
  #idle: (() => void) | undefined;
  #leftovers: InlineLeftovers | undefined;

  private constructor(
    readonly name: string,
    readonly version: string,
    surface: ModuleSurface,
    owner: object,
  ) {
    this.#owner = owner;
    // Peers call methods from their port's listener: in this version's scope too.
    this.#methods = new Map(
      [...surface.methods].map(([key, fn]) => [key, (...args) => runAs(owner, () => fn(...args))]),
    );
    this.methods = Object.freeze([...this.#methods.keys()]);
    this.dependencies = Object.freeze(surface.dependencies);
    this.#onFree = surface.onFree;
    const { reloadable, onInit } = surface;
    if (reloadable) this.#hooks.set('reloadable', reloadable);
    if (onInit)
      this.#hooks.set('onInit', (desc) => onInit(buildContext(desc as InitDescriptor, (port) => this.#track(port))));
    this.#hooks.set(HOOK_SERVE, (port) => servePeer(this.#track(port as MessagePort), this.#methods));
  }

  static async load(
    name: string,
    entry: string,
    hash: string,
    data: unknown,
    options: InlineOptions,
  ): Promise<InlineVersion> {
    const owner = {};
    track();
    let stage = 'import';
    try {
      const ns = await evaluate(entry, hash, options, owner);
      stage = 'onLoad';
      const onLoad = readHook(ns, 'onLoad');
      if (onLoad) await runAs(owner, () => onLoad(structuredClone(data)));
      return new InlineVersion(name, hash, readSurface(ns), owner);
    } catch (error) {
      // A version that never served: end what it started.
      settle(owner);
      throw new PluginLoadError(`cannot load plugin ${name} from ${entry} (${stage})`, {
        pluginName: name,
        version: hash,
        cause: error,
      });
    }
  }

  /** What the version left behind at close (undefined before it ended). */
  get leftovers(): InlineLeftovers | undefined {
    return this.#leftovers;
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
      // transfer(value, list) in a result: checked as in a worker, then moved within the thread (the
      // plugin's buffers are detached, as a worker's would be), so a bad list fails here too.
      const mark = direction === 'result' ? readMark(value) : undefined;
      if (mark === undefined) return structuredClone(value);
      const problem = checkTransfer(mark.value, mark.list);
      if (problem !== undefined) throw problem;
      return structuredClone(mark.value, { transfer: mark.list as Transferable[] });
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
      const result = await runAs(this.#owner, () => Reflect.apply(fn, undefined, copies));
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

  async close(timeoutMs: number): Promise<undefined> {
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
            Promise.resolve().then(() => runAs(this.#owner, () => this.#onFree!())),
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
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#leftovers = settle(this.#owner);
    for (const port of this.#ports) port.close();
    this.#ports.clear();
  }
}
