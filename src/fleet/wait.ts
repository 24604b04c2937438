/**
 * Waiting for a fleet to converge on a revision, always with a deadline: a host that never answers must
 * not hold a deploy forever. The hosts report to the registry; this reads their rows until every live
 * host has applied the revision or refused it.
 */
import { PluginOptionRangeError } from 'isoplug';
import type { HostStatus } from './store.js';

export interface WaitOptions {
  /** How long to wait, in ms. */
  timeoutMs: number;
  /**
   * How often to read the hosts' rows, in ms.
   * @default 250
   */
  intervalMs?: number;
  /** Stops waiting (the report then says `done: false`). */
  signal?: AbortSignal;
}

/** Where the hosts stand on one revision. */
export interface Convergence {
  readonly revision: number;
  /** Every host waited for applied the revision or refused it. */
  readonly done: boolean;
  /** Applied it (or a later one). */
  readonly converged: readonly HostStatus[];
  /** Refused it: `error` says why; they keep serving what they had. */
  readonly failed: readonly HostStatus[];
  /** Live, but neither yet when the wait ended. */
  readonly pending: readonly HostStatus[];
  /** Not seen for three poll intervals when the wait started: not waited for. */
  readonly stale: readonly HostStatus[];
}

/** Sorts hosts by where they stand on `revision`; `skip` are host ids not waited for. */
export function classify(
  hosts: readonly HostStatus[],
  revision: number,
  skip: ReadonlySet<string>,
): Omit<Convergence, 'done' | 'revision'> {
  const converged: HostStatus[] = [];
  const failed: HostStatus[] = [];
  const pending: HostStatus[] = [];
  const stale: HostStatus[] = [];
  for (const host of hosts) {
    if ((host.revision ?? 0) >= revision) converged.push(host);
    else if (skip.has(host.host)) stale.push(host);
    else if (host.state === 'failed' && (host.error?.revision ?? 0) >= revision) failed.push(host);
    else pending.push(host);
  }
  return { converged, failed, pending, stale };
}

export async function waitForHosts(
  read: () => Promise<HostStatus[]>,
  revision: number,
  options: WaitOptions,
): Promise<Convergence> {
  const { timeoutMs, signal } = options;
  const intervalMs = options.intervalMs ?? 250;
  if (!(timeoutMs >= 0)) throw new PluginOptionRangeError('timeoutMs', `expected a duration ≥ 0, got ${timeoutMs}`);
  if (!(intervalMs > 0)) throw new PluginOptionRangeError('intervalMs', `expected a duration > 0, got ${intervalMs}`);
  const deadline = performance.now() + timeoutMs;
  const first = await read();
  const skip = new Set(first.filter((host) => host.stale).map((host) => host.host));
  let hosts = first;
  for (;;) {
    const sorted = classify(hosts, revision, skip);
    const done = sorted.pending.length === 0;
    const left = deadline - performance.now();
    if (done || left <= 0 || signal?.aborted) return { revision, done, ...sorted };
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, Math.min(intervalMs, left));
      function finish(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', finish);
        resolve();
      }
      signal?.addEventListener('abort', finish, { once: true });
    });
    hosts = await read();
  }
}
