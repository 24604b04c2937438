/**
 * The transactional half of a swap, a rollout or a restart: load the next version (on the standby
 * when it fits), then its health check. Until the switch the new version is a candidate: the hot
 * swap's close() and destroy() end it (`Candidates.loading`), and its crash (during the health check,
 * say) fails the swap instead of being switched to. Whatever fails, the candidate's workers are gone
 * before this returns.
 */
import { checkHealth, type HealthCheck } from './hotswap-options.js';
import { loadVersion } from './load.js';
import type { ResolvedLoadOptions } from './options.js';
import type { Plugin } from './plugin.js';
import type { PluginSpecifier } from './resolve.js';
import type { Split } from './canary.js';
import type { PluginClosedError, PluginCrashedError } from './shared/errors.js';
import type { Standby } from './standby.js';
import type { Thread } from './thread.js';
import { VersionErrors } from './version-errors.js';

/** What the queue runs: a swap, a rollout (the candidate becomes the canary) or a restart. */
export interface Job {
  readonly specifier: PluginSpecifier;
  readonly load: ResolvedLoadOptions;
  readonly healthCheck: HealthCheck | undefined;
  readonly healthCheckTimeoutMs: number;
  readonly reason: 'swap' | 'restart' | 'rollout';
  /** A rollout's split. */
  readonly rollout?: Split;
}

export type Loaded<T> =
  | { readonly ok: true; readonly plugin: Plugin<T>; readonly standby: boolean; readonly loadMs: number }
  /** `swap()` rejects `ERR_SWAP_FAILED` with this message and cause. */
  | { readonly ok: false; readonly message: string; readonly cause: unknown }
  /** The hot swap closed meanwhile. */
  | { readonly ok: false; readonly closed: PluginClosedError };

export interface CandidateHost<T> {
  readonly standby: Standby | undefined;
  /** The candidate under its health check (undefined once it is switched to or ended). */
  loading(plugin: Plugin<T> | undefined): void;
  shuttingDown(): boolean;
}

/** Loads and checks `job`'s version. Never throws. */
export async function loadCandidate<T>(job: Job, host: CandidateHost<T>): Promise<Loaded<T>> {
  const started = performance.now();
  let next: Plugin<T>;
  let standby: boolean;
  try {
    const take = (): readonly Thread[] | undefined => host.standby?.take(job.load);
    ({ plugin: next, standby } = await loadVersion<T>(job.specifier, job.load, take));
  } catch (cause) {
    return { ok: false, message: `cannot load ${String(job.specifier)}`, cause };
  }
  host.loading(next);
  let died: PluginCrashedError | undefined;
  const onCrash = (error: PluginCrashedError) => (died = error);
  next.once('crash', onCrash);
  try {
    if (job.healthCheck) {
      const verdict = await checkHealth(job.healthCheck, next, job.healthCheckTimeoutMs);
      if (verdict !== true) {
        await next.destroy(verdict);
        return { ok: false, message: `version ${next.version} failed its health check`, cause: verdict };
      }
    }
    if (host.shuttingDown()) {
      await next.destroy();
      const errors = new VersionErrors(next.name, next.version);
      return { ok: false, closed: errors.hotSwapClosed('hot swap closed while the new version was loading') };
    }
    if (next.state !== 'ready') {
      await next.destroy();
      return { ok: false, message: `version ${next.version} ended before the switch`, cause: died };
    }
  } finally {
    host.loading(undefined);
    next.off('crash', onCrash);
  }
  return { ok: true, plugin: next, standby, loadMs: performance.now() - started };
}
