/**
 * Garbage collection of the registry: bundles no revision names, and (when asked) the revisions older
 * than the newest few of each plugin. History is append-only for the publisher and host roles, so this
 * runs as the schema's owner (as `initRegistry()` does), in one transaction: a concurrent publish that
 * names a bundle being removed fails its foreign key and can be retried; it never points at nothing.
 */
import { PluginOptionRangeError, PluginOptionTypeError } from 'isoplug';
import { checkSchema, clientConfig, fleetError, ident, loadPg } from './pg.js';
import type { RegistryOptions } from './registry.js';

export interface GcOptions extends RegistryOptions {
  /**
   * Keep the newest `keepRevisions` revisions of each plugin and delete the older ones (a rollback
   * `--to` one of them is then no longer possible). At least 1.
   * @default undefined (every revision is kept)
   */
  keepRevisions?: number;
  /**
   * Only bundles stored at least this long ago are removed: an upload about to be rolled out stays.
   * @default 3600000 (one hour)
   */
  minAgeMs?: number;
  /**
   * Work out what would go, in the same transaction, and roll it back.
   * @default false
   */
  dryRun?: boolean;
}

export interface GcResult {
  /** Revisions deleted (or that would be), per plugin name. */
  readonly revisions: Readonly<Record<string, number>>;
  /** Bundles deleted (or that would be), with their signatures. */
  readonly bundles: readonly { sha256: string; name: string; size: number }[];
  /** Their bytes in total. */
  readonly bytes: number;
  readonly dryRun: boolean;
}

export const GC_DEFAULTS = Object.freeze({ minAgeMs: 3_600_000 });

/** Removes what the registry no longer needs; see `GcOptions`. Needs the schema owner's rights. */
export async function gcRegistry(options: GcOptions): Promise<GcResult> {
  const schema = checkSchema('options.schema', options.schema);
  const keep = options.keepRevisions;
  if (keep !== undefined && (!Number.isInteger(keep) || keep < 1))
    throw new PluginOptionRangeError('options.keepRevisions', `expected an integer ≥ 1, got ${String(keep)}`);
  const minAgeMs = options.minAgeMs ?? GC_DEFAULTS.minAgeMs;
  if (typeof minAgeMs !== 'number' || !Number.isFinite(minAgeMs) || minAgeMs < 0)
    throw new PluginOptionRangeError('options.minAgeMs', `expected a duration ≥ 0 ms, got ${String(minAgeMs)}`);
  if (options.dryRun !== undefined && typeof options.dryRun !== 'boolean')
    throw new PluginOptionTypeError('options.dryRun', `expected a boolean, got ${typeof options.dryRun}`);
  const dryRun = options.dryRun ?? false;
  const s = ident(schema);
  const pg = await loadPg();
  const client = new pg.Client(
    clientConfig('options.db', options.db, {
      application_name: 'isoplug registry gc',
      connectionTimeoutMillis: 10_000,
    }),
  );
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('BEGIN');
    // The lock registry init takes: a migration and a collection never interleave.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`isoplug:${schema}`]);
    const revisions: Record<string, number> = {};
    if (keep !== undefined) {
      const { rows } = await client.query<{ name: string; n: number }>(
        `WITH gone AS (
           DELETE FROM ${s}.deployment d
            USING (SELECT name, max(revision) AS top FROM ${s}.deployment GROUP BY name) m
            WHERE d.name = m.name AND d.revision <= m.top - $1
           RETURNING d.name)
         SELECT name, count(*)::int AS n FROM gone GROUP BY name ORDER BY name`,
        [keep],
      );
      for (const row of rows) revisions[row.name] = row.n;
    }
    const { rows: bundles } = await client.query<{ sha256: string; name: string; size: number }>(
      `DELETE FROM ${s}.bundle b
        WHERE b.created_at <= now() - make_interval(secs => $1::float8 / 1000)
          AND NOT EXISTS (SELECT 1 FROM ${s}.deployment d WHERE d.stable = b.sha256 OR d.canary = b.sha256)
       RETURNING b.sha256, b.name, b.size`,
      [minAgeMs],
    );
    await client.query(dryRun ? 'ROLLBACK' : 'COMMIT');
    bundles.sort((a, b) => a.name.localeCompare(b.name) || a.sha256.localeCompare(b.sha256));
    return { revisions, bundles, bytes: bundles.reduce((sum, b) => sum + b.size, 0), dryRun };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw fleetError(error, 'collecting the registry');
  } finally {
    await client.end().catch(() => {});
  }
}
