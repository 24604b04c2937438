/**
 * A host following a deployment: a hot swap whose versions come from the registry.
 *
 * Level-triggered, in the manner of a controller: `LISTEN` first, then read the latest revision, then
 * re-read every `pollMs` as a safety net. A notification only says "read again"; after every reconnect
 * the host reads again too, since notifications sent while it was away are lost. Only a revision above
 * the one applied is acted on, so late, repeated or reordered hints change nothing.
 *
 * Applying a revision: fetch each bundle not cached, check its SHA-256 (and signature when required),
 * write it to the cache, and load it through the hot swap, whose swap is transactional: a version that
 * fails to load, to start or its health check is refused and the current one keeps serving. Whatever
 * fails (database down, bad bytes, failed load), the host keeps serving its last good version, says so
 * in its status, and reports it to the registry when it can.
 */
import { EventEmitter } from 'node:events';
import { createHotSwap, type HotSwap, type PluginApi } from 'isoplug';
import { fetchBundle } from './bundle.js';
import { FleetNoDeploymentError, FleetUnavailableError } from './errors.js';
import { resolveFollowOptions, type FollowDeploymentOptions, type ResolvedFollowOptions } from './follow-options.js';
import { fleetError, isConnectionError, loadPg } from './pg.js';
import { checkSupported, plan, runStep, served, type RolloutTarget, type Serving } from './plan.js';
import { Session } from './session.js';
import { describe, transient, type FollowerEvents, type FollowerStatus } from './follower-status.js';
import { loadLastGood, saveLastGood } from './last-good.js';
import { latest, report, type Deployment, type HostError } from './store.js';

export type { AppliedEvent, FollowerEvents, FollowerStatus } from './follower-status.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export class DeploymentFollower<T = Record<string, any>> extends EventEmitter<FollowerEvents> {
  readonly #options: ResolvedFollowOptions;
  readonly #session: Session;
  #hotSwap: HotSwap<T> | undefined;
  #serving: Serving = { stable: '', canary: undefined, percent: 0, salt: undefined };
  #revision: number | undefined;
  #latest: number | undefined;
  #state: FollowerStatus['state'] = 'applying';
  #error: HostError | undefined;
  #lastError: HostError | undefined;
  /** A revision refused for a reason a retry would meet again: not tried again. */
  #refused: number | undefined;
  #disconnectedSince: Date | undefined = new Date();
  /** Serving what the local cache held at boot, the database not read yet. */
  #fromCache = false;
  readonly #startedAt = new Date();
  #dirty = false;
  #running: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closing: Promise<unknown> | undefined;
  /** Wakes the boot loop on a hint or a (re)connect. */
  #wake: (() => void) | undefined;

  private constructor(options: ResolvedFollowOptions, session: Session) {
    super();
    this.#options = options;
    this.#session = session;
    session.on('connected', () => {
      this.#disconnectedSince = undefined;
      this.#lastError = undefined;
      this.emit('connected');
      this.#kick();
    });
    session.on('disconnected', (error) => {
      this.#disconnectedSince ??= new Date();
      this.#lastError = describe(error);
      this.emit('disconnected', error);
    });
    session.on('hint', () => this.#kick());
  }

  /** @internal `followDeployment()` makes followers. */
  private static create<T>(options: ResolvedFollowOptions, session: Session): DeploymentFollower<T> {
    return new DeploymentFollower<T>(options, session);
  }

  /** The hot swap serving the deployment's versions. Swapping it by hand lasts until the next revision. */
  get hotSwap(): HotSwap<T> {
    return this.#hotSwap!;
  }

  /** The typed API; each call goes to the version serving when it starts. */
  get api(): PluginApi<T> {
    return this.hotSwap.api;
  }

  get call(): HotSwap<T>['call'] {
    return this.hotSwap.call;
  }

  /** Per-call options, as `HotSwap.with()`. */
  with(options: Parameters<HotSwap<T>['with']>[0]): ReturnType<HotSwap<T>['with']> {
    return this.hotSwap.with(options);
  }

  /** The current version's label (12 hex digits of its bundle's SHA-256). */
  get version(): string {
    return this.hotSwap.version;
  }

  get status(): FollowerStatus {
    return {
      host: this.#options.host,
      name: this.#options.name,
      state: this.#state,
      revision: this.#revision,
      latestRevision: this.#latest,
      stable: this.#serving.stable,
      canary: this.#serving.canary,
      percent: this.#serving.percent,
      version: this.#hotSwap?.version ?? '',
      error: this.#error,
      connected: this.#session.connected,
      disconnectedSince: this.#disconnectedSince,
      lastError: this.#lastError,
      fromCache: this.#fromCache,
    };
  }

  /** Reads the deployment now (as a notification would make it) and resolves once it is handled. */
  async refresh(): Promise<FollowerStatus> {
    this.#kick();
    while (this.#running) await this.#running;
    return this.status;
  }

  /**
   * Connects, waits for a first revision and serves it; rejects past `bootTimeoutMs`. When the first
   * connection fails and the cache holds the last revision this host applied, serves that one instead and
   * keeps trying to connect in the background (`bootFromCache`).
   */
  private async boot(): Promise<void> {
    const { bootTimeoutMs, name, bootFromCache, cacheDir, schema } = this.#options;
    const deadline = performance.now() + bootTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, bootTimeoutMs)));
    let why: unknown = new FleetUnavailableError(`no connection to the database within ${bootTimeoutMs} ms`, {
      pluginName: name,
    });
    this.#session.on('hint', () => this.#wake?.());
    this.#session.on('connected', () => this.#wake?.());
    let failedOnce = false;
    const onFailure = (): void => {
      failedOnce = true;
      this.#wake?.();
    };
    this.#session.on('disconnected', onFailure);
    let cacheTried = !bootFromCache;
    this.#session.start();
    try {
      while (performance.now() < deadline) {
        const woken = new Promise<void>((resolve) => (this.#wake = resolve));
        if (!this.#session.connected && failedOnce && !cacheTried) {
          cacheTried = true;
          const last = await loadLastGood(cacheDir, schema, name);
          if (last) {
            try {
              this.#fromCache = true;
              return await this.#first(last);
            } catch (error) {
              // The cached version cannot serve (a file gone or changed, a failed load): wait for the database.
              this.#fromCache = false;
              why = error;
            }
          }
        }
        if (this.#session.connected) {
          try {
            const deployment = await latest(this.#session, this.#options.schema, name);
            if (deployment) return await this.#first(deployment);
            why = new FleetNoDeploymentError(`nothing is deployed under ${name} (waited ${bootTimeoutMs} ms)`, {
              pluginName: name,
            });
          } catch (error) {
            if (!isConnectionError(error)) throw fleetError(error, `following ${name}`, { pluginName: name });
            why = error;
          }
        }
        await Promise.race([woken, expired]);
      }
      throw why;
    } finally {
      clearTimeout(timer);
      this.#session.off('disconnected', onFailure);
      this.#wake = undefined;
    }
  }

  /** Serves the first revision: its stable bundle starts the hot swap; a canary follows as a step. */
  async #first(deployment: Deployment): Promise<void> {
    this.#latest = deployment.revision;
    try {
      const file = await this.#fetch(deployment.stable, deployment);
      this.#hotSwap = await createHotSwap<T>(file, {
        ...this.#options.hotSwap,
        version: deployment.stable.slice(0, 12),
      });
    } catch (error) {
      if (!transient(error)) {
        this.#error = describe(error, deployment.revision);
        this.#state = 'failed';
        await this.#report().catch(() => {});
      }
      throw error;
    }
    this.#serving = { stable: deployment.stable, canary: undefined, percent: 0, salt: undefined };
    this.#hotSwap.on('state', (state) => {
      // Closed by hand: stop following. Restarting or failed: report it now, not at the next poll.
      if (state === 'closing') void this.close();
      else this.#kick();
    });
    this.#timer = setInterval(() => this.#kick(), this.#options.pollMs);
    this.#timer.unref();
    try {
      // The rest of the revision (a canary): a connection lost here is retried by the loop, as later revisions are.
      await this.#apply(deployment);
      await this.#report();
    } catch (error) {
      this.#lastError = describe(error);
    }
  }

  #kick(): void {
    if (this.#closing || !this.#hotSwap) return;
    this.#dirty = true;
    this.#running ??= this.#loop().finally(() => (this.#running = undefined));
  }

  async #loop(): Promise<void> {
    while (this.#dirty && !this.#closing) {
      this.#dirty = false;
      try {
        await this.#reconcile();
      } catch (error) {
        this.#lastError = describe(fleetError(error, `following ${this.#options.name}`));
      }
    }
  }

  async #reconcile(): Promise<void> {
    if (!this.#session.connected) return;
    const deployment = await latest(this.#session, this.#options.schema, this.#options.name);
    this.#fromCache = false;
    if (deployment) {
      this.#latest = Math.max(this.#latest ?? 0, deployment.revision);
      // The same revision with other contents: history was rewound (a failover to a replica that lacked the
      // last commits, a restored backup) and written again. The database is the truth: apply it.
      const rewritten = deployment.revision === this.#revision && !this.#matches(deployment);
      if ((deployment.revision > (this.#revision ?? 0) || rewritten) && deployment.revision !== this.#refused)
        await this.#apply(deployment);
    }
    await this.#report();
    this.#lastError = undefined;
  }

  #matches(deployment: Deployment): boolean {
    const serving = this.#serving;
    return (
      serving.stable === deployment.stable &&
      serving.canary === deployment.canary &&
      serving.percent === deployment.percent &&
      serving.salt === deployment.salt
    );
  }

  /** Moves the hot swap to `deployment`; a refusal leaves what serves as it was and is reported. */
  async #apply(deployment: Deployment): Promise<void> {
    const target = this.#hotSwap as unknown as RolloutTarget;
    const wanted: Serving = {
      stable: deployment.stable,
      canary: deployment.canary,
      percent: deployment.percent,
      salt: deployment.salt,
    };
    const steps = plan(this.#serving, wanted);
    const before = this.#state;
    this.#state = 'applying';
    // Loading can take a while: `isoplug status` shows it meanwhile (best effort).
    if (steps.length > 0) await this.#report().catch(() => {});
    try {
      checkSupported(steps, target, { pluginName: this.#options.name, revision: deployment.revision });
      const files = new Map<string, string>();
      for (const step of steps)
        if (step.kind === 'swap' || step.kind === 'rollout')
          files.set(step.sha256, await this.#fetch(step.sha256, deployment));
      for (const step of steps) {
        if (this.#closing) return;
        await runStep(step, target, (hash) => files.get(hash)!);
        this.#serving = served(this.#serving, step);
      }
    } catch (error) {
      if (transient(error)) {
        this.#state = before;
        throw error;
      }
      this.#state = 'failed';
      this.#error = describe(error, deployment.revision);
      this.#refused = deployment.revision;
      this.emit('rejected', { revision: deployment.revision, error: this.#error });
      return;
    }
    this.#state = 'ok';
    this.#error = undefined;
    this.#refused = undefined;
    this.#revision = deployment.revision;
    // For a boot without the database (best effort: a full disk must not refuse what already serves).
    await saveLastGood(this.#options.cacheDir, this.#options.schema, deployment).catch(() => {});
    this.emit('applied', {
      revision: deployment.revision,
      stable: this.#serving.stable,
      canary: this.#serving.canary,
      percent: this.#serving.percent,
      version: this.#hotSwap!.version,
    });
  }

  #fetch(hash: string, deployment: Deployment): Promise<string> {
    const { cacheDir, schema, trusted, name } = this.#options;
    // Without a connection (a boot from the cache) only cached bundles, with their kept signatures, will do.
    const q = this.#session.connected ? this.#session : undefined;
    return fetchBundle(q, { cacheDir, schema, trusted }, hash, {
      pluginName: name,
      revision: deployment.revision,
      sha256: hash,
    });
  }

  /** Upserts this host's row (its heartbeat too). */
  async #report(): Promise<void> {
    try {
      await report(this.#session, this.#options.schema, {
        host: this.#options.host,
        name: this.#options.name,
        revision: this.#revision,
        stable: this.#serving.stable || undefined,
        canary: this.#serving.canary,
        percent: this.#serving.percent,
        version: this.#hotSwap?.version,
        state: this.#state,
        serving: this.#hotSwap?.state,
        error: this.#error,
        pollMs: this.#options.pollMs,
        software: { node: process.version, pid: String(process.pid) },
        startedAt: this.#startedAt,
      });
    } catch (error) {
      throw fleetError(error, `reporting ${this.#options.host}`, { pluginName: this.#options.name });
    }
  }

  /** Stops following and closes the hot swap (its versions drain, as `HotSwap.close()`). */
  close(options?: { timeoutMs?: number }): Promise<unknown> {
    this.#closing ??= (async () => {
      clearInterval(this.#timer);
      this.#wake?.();
      await this.#running;
      await this.#session.close();
      await this.#hotSwap?.close(options);
    })();
    return this.#closing;
  }

  /** Stops following and ends every version now (`HotSwap.destroy()`). */
  async destroy(reason?: unknown): Promise<void> {
    const hotSwap = this.#hotSwap;
    const closing = this.close({ timeoutMs: 0 });
    await hotSwap?.destroy(reason);
    await closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Follows the deployment `name` in the registry: resolves, once the first revision serves, with a
 * follower whose hot swap moves to each newer revision. Rejects `ERR_FLEET_UNAVAILABLE` or
 * `ERR_FLEET_NO_DEPLOYMENT` after `bootTimeoutMs`, `ERR_FLEET_NO_PG` without `pg`, and with the
 * load's error when the first version cannot be served.
 *
 * @example
 * const handler = await followDeployment<typeof import('./handler.js')>({
 *   db: process.env.ISOPLUG_DATABASE_URL, name: 'handler', standby: true,
 * });
 * await handler.api.handle(request);
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function followDeployment<T = Record<string, any>>(
  options: FollowDeploymentOptions<T>,
): Promise<DeploymentFollower<T>> {
  const resolved = resolveFollowOptions(options);
  const pg = await loadPg();
  const session = new Session({
    pg,
    config: resolved.config,
    channel: resolved.schema,
    backoffMs: resolved.reconnectBackoffMs,
    maxBackoffMs: resolved.reconnectMaxBackoffMs,
  });
  // Private members by element access: the constructor's parameters are no part of the public types.
  const follower = DeploymentFollower['create']<T>(resolved, session);
  try {
    await follower['boot']();
  } catch (error) {
    await follower.close();
    throw error;
  }
  return follower;
}
