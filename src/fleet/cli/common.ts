/** What the fleet commands share: the database options, `--wait`, and how hosts and revisions print. */
import { UsageError, type Parsed } from '../../cli/args.js';
import type { Io } from '../../cli/io.js';
import { databaseFromEnv } from '../pg.js';
import { openRegistry, type Registry } from '../registry.js';
import type { Deployment, HostStatus } from '../store.js';
import type { Convergence } from '../wait.js';

export const DB_OPTIONS = {
  db: { type: 'string' },
  schema: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const WRITE_OPTIONS = {
  ...DB_OPTIONS,
  message: { type: 'string' },
  'expect-revision': { type: 'string' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
} as const;

export const DB_HELP = `  --db <url>               the registry's database (default: $ISOPLUG_DATABASE_URL)
  --schema <name>          the registry's schema (default: isoplug)
  --json                   print one JSON object instead of text
  -h, --help               show this help`;

export const WRITE_HELP = `  --message <text>         recorded with the revision
  --expect-revision <n>    refuse (ERR_FLEET_CONFLICT) unless the latest revision is n
  --wait                   wait until every live host applied the revision or refused it
  --timeout <seconds>      how long --wait waits (default: 60)
${DB_HELP}`;

export const WAIT_EXIT = `Exit status: 0 done (with --wait: every live host applied it), 1 failed (with --wait: a host
refused it), 2 bad arguments, 3 --wait reached its deadline with hosts still pending.`;

/** Opens the registry named by `--db` (or the environment) and `--schema`. */
export async function registryFrom(values: Parsed['values']): Promise<Registry> {
  const db = databaseFromEnv(typeof values.db === 'string' ? values.db : undefined);
  if (db === undefined) throw new UsageError('no database: pass --db <url> or set ISOPLUG_DATABASE_URL');
  let schema: string | undefined;
  if (values.schema !== undefined) {
    if (typeof values.schema !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(values.schema))
      throw new UsageError('option --schema needs a lowercase SQL identifier');
    schema = values.schema;
  }
  return openRegistry(schema === undefined ? { db } : { db, schema });
}

/** A non-negative integer option, or undefined when absent. */
export function integer(values: Parsed['values'], name: string, min = 0): number | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < min)
    throw new UsageError(`option --${name} needs an integer ≥ ${min}`);
  return Number(value);
}

/** `--message` and `--expect-revision`, as write options; checks `--timeout` too, before anything is written. */
export function writeOptions(values: Parsed['values']): { message?: string; expectRevision?: number } {
  timeoutMs(values);
  const expectRevision = integer(values, 'expect-revision');
  return {
    ...(typeof values.message === 'string' ? { message: values.message } : {}),
    ...(expectRevision === undefined ? {} : { expectRevision }),
  };
}

function timeoutMs(values: Parsed['values']): number {
  const value = values.timeout;
  if (value === undefined) return 60_000;
  if (typeof value !== 'string' || !/^\d+(\.\d+)?$/.test(value))
    throw new UsageError('option --timeout needs a number of seconds');
  return Number(value) * 1000;
}

export const short = (hash: string | undefined): string => (hash === undefined ? '-' : hash.slice(0, 12));

function ago(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms ago`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)}s ago`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)}m ago`;
  return `${Math.round(ms / 3_600_000)}h ago`;
}

/** One line per revision: `r3  stable 1a2b…  canary 9f8e… at 10%  2026-…  by ci  "message"`. */
export function describeDeployment(d: Deployment): string {
  const canary = d.canary === undefined ? '' : `  canary ${short(d.canary)} at ${d.percent}%`;
  const message = d.message === undefined ? '' : `  ${JSON.stringify(d.message)}`;
  return `r${d.revision}  stable ${short(d.stable)}${canary}  ${d.createdAt.toISOString()}  by ${d.createdBy}${message}`;
}

/** What a host is doing with respect to `latest`: ok, behind, applying, failed or stale. */
export function hostState(host: HostStatus, latest: number | undefined): string {
  if (host.stale) return 'stale';
  if (host.state === 'failed') return 'failed';
  if (host.state === 'applying') return 'applying';
  return latest !== undefined && (host.revision ?? 0) < latest ? 'behind' : 'ok';
}

/** A table of hosts, aligned. */
export function hostTable(hosts: readonly HostStatus[], latest: number | undefined): string {
  const rows = [
    ['HOST', 'STATE', 'REVISION', 'VERSION', 'CANARY', 'SEEN', 'ERROR'],
    ...hosts.map((h) => [
      h.host,
      hostState(h, latest),
      h.revision === undefined ? '-' : `r${h.revision}`,
      h.version ?? '-',
      h.canary === undefined ? '-' : `${short(h.canary)} ${h.percent}%`,
      ago(h.ageMs),
      h.error === undefined
        ? ''
        : `${h.error.revision === undefined ? '' : `r${h.error.revision} `}${h.error.code} ${h.error.message}`,
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** `--wait`: waits for the hosts on `deployment`, prints where they stand, returns the exit status. */
export async function waitAndReport(
  registry: Registry,
  deployment: Deployment | undefined,
  values: Parsed['values'],
  io: Io,
  result: Record<string, unknown>,
): Promise<number> {
  const json = values.json === true;
  if (values.wait !== true || deployment === undefined) {
    if (json) io.out(JSON.stringify(result));
    return 0;
  }
  const timeout = timeoutMs(values);
  const report = await registry.waitFor(deployment.name, deployment.revision, { timeoutMs: timeout });
  const status = report.failed.length > 0 ? 1 : report.done ? 0 : 3;
  if (json) {
    io.out(JSON.stringify({ ...result, wait: summary(report) }));
    return status;
  }
  const waited = report.converged.length + report.failed.length + report.pending.length;
  if (status === 0) io.out(`converged: ${report.converged.length}/${waited} hosts on r${report.revision}`);
  else {
    io.out(
      `not converged on r${report.revision}${status === 3 ? ` after ${timeout / 1000}s` : ''}: ` +
        `${report.converged.length} applied, ${report.failed.length} refused, ${report.pending.length} pending`,
    );
    io.out(hostTable([...report.failed, ...report.pending], report.revision));
  }
  if (report.stale.length > 0) io.out(`not waited for (stale): ${report.stale.map((h) => h.host).join(', ')}`);
  return status;
}

function summary(report: Convergence): Record<string, unknown> {
  const ids = (hosts: readonly HostStatus[]) => hosts.map((h) => h.host);
  return {
    revision: report.revision,
    done: report.done,
    converged: ids(report.converged),
    failed: report.failed.map((h) => ({ host: h.host, error: h.error })),
    pending: ids(report.pending),
    stale: ids(report.stale),
  };
}
