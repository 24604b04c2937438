/** The registry's queries, shared by the publishing side and the hosts. */
import { ident, type Queryable } from './pg.js';
import type { BundleSignature } from './sign.js';

/** One revision of a plugin's deployment: the full desired state, never a delta. */
export interface Deployment {
  /** The plugin (deployment) name. */
  readonly name: string;
  /** 1, 2, 3…: each publish takes the next one. */
  readonly revision: number;
  /** SHA-256 (hex) of the bundle every call goes to when there is no canary, else the calls not on it. */
  readonly stable: string;
  /** SHA-256 of the canary bundle, or undefined. */
  readonly canary: string | undefined;
  /** Share of calls (0–100) on the canary; 0 without one. */
  readonly percent: number;
  /** The sticky-key salt of this canary, the same across its percent changes; undefined without one. */
  readonly salt: string | undefined;
  readonly message: string | undefined;
  readonly createdAt: Date;
  /** The database role that published it. */
  readonly createdBy: string;
}

/** The last failure a host reported. */
export interface HostError {
  /** The revision it failed to apply, when the failure was about one. */
  readonly revision?: number | undefined;
  readonly code: string;
  readonly message: string;
}

/** One host's report for one plugin, as the registry holds it. */
export interface HostStatus {
  readonly host: string;
  readonly name: string;
  /** The database role that wrote the row. */
  readonly owner: string;
  /** The last revision it applied in full; undefined before the first. */
  readonly revision: number | undefined;
  readonly stable: string | undefined;
  readonly canary: string | undefined;
  readonly percent: number;
  /** The version label serving (12 hex digits of the stable bundle's SHA-256). */
  readonly version: string | undefined;
  /** `ok`: the last revision it saw is applied; `failed`: it was refused (see `error`); `applying`. */
  readonly state: 'ok' | 'failed' | 'applying';
  /** The hot swap's state (`ready`, `restarting`, `failed`, …). */
  readonly serving: string | undefined;
  readonly error: HostError | undefined;
  readonly pollMs: number;
  readonly software: Readonly<Record<string, string>>;
  readonly startedAt: Date;
  readonly lastSeen: Date;
  /** Milliseconds since `lastSeen`, by the database's clock. */
  readonly ageMs: number;
  /** Not seen for more than three poll intervals. */
  readonly stale: boolean;
}

interface DeploymentRow {
  name: string;
  revision: string;
  stable: string;
  canary: string | null;
  percent: number;
  salt: string | null;
  message: string | null;
  created_at: Date;
  created_by: string;
}

const DEPLOYMENT_COLUMNS = 'name, revision, stable, canary, percent, salt, message, created_at, created_by';

function toDeployment(row: DeploymentRow): Deployment {
  return {
    name: row.name,
    revision: Number(row.revision),
    stable: row.stable,
    canary: row.canary ?? undefined,
    percent: row.percent,
    salt: row.salt ?? undefined,
    message: row.message ?? undefined,
    createdAt: row.created_at,
    createdBy: row.created_by,
  };
}

/** The latest revision of `name`, or undefined when nothing was published under it. */
export async function latest(q: Queryable, schema: string, name: string): Promise<Deployment | undefined> {
  const { rows } = await q.query<DeploymentRow>(
    `SELECT ${DEPLOYMENT_COLUMNS} FROM ${ident(schema)}.deployment WHERE name = $1 ORDER BY revision DESC LIMIT 1`,
    [name],
  );
  return rows[0] && toDeployment(rows[0]);
}

/** Revisions of `name`, newest first. */
export async function history(q: Queryable, schema: string, name: string, limit: number): Promise<Deployment[]> {
  const { rows } = await q.query<DeploymentRow>(
    `SELECT ${DEPLOYMENT_COLUMNS} FROM ${ident(schema)}.deployment WHERE name = $1 ORDER BY revision DESC LIMIT $2`,
    [name, limit],
  );
  return rows.map(toDeployment);
}

/** One revision of `name`. */
export async function revision(
  q: Queryable,
  schema: string,
  name: string,
  number: number,
): Promise<Deployment | undefined> {
  const { rows } = await q.query<DeploymentRow>(
    `SELECT ${DEPLOYMENT_COLUMNS} FROM ${ident(schema)}.deployment WHERE name = $1 AND revision = $2`,
    [name, number],
  );
  return rows[0] && toDeployment(rows[0]);
}

/** A bundle's bytes, or undefined when there is no such bundle. */
export async function bundleBytes(q: Queryable, schema: string, sha256: string): Promise<Buffer | undefined> {
  const { rows } = await q.query<{ bytes: Buffer }>(`SELECT bytes FROM ${ident(schema)}.bundle WHERE sha256 = $1`, [
    sha256,
  ]);
  return rows[0]?.bytes;
}

/** The signatures of a bundle by the keys in `keyIds`. */
export async function signatures(
  q: Queryable,
  schema: string,
  sha256: string,
  keyIds: readonly string[],
): Promise<BundleSignature[]> {
  const { rows } = await q.query<{ key_id: string; signature: Buffer }>(
    `SELECT key_id, signature FROM ${ident(schema)}.signature WHERE sha256 = $1 AND key_id = ANY($2::text[])`,
    [sha256, keyIds],
  );
  return rows.map((row) => ({ keyId: row.key_id, signature: row.signature }));
}

/** Full SHA-256s of bundles whose hash starts with `prefix` (at most two: enough to tell it is ambiguous). */
export async function bundlesByPrefix(q: Queryable, schema: string, prefix: string): Promise<string[]> {
  const { rows } = await q.query<{ sha256: string }>(
    `SELECT sha256 FROM ${ident(schema)}.bundle WHERE sha256 LIKE $1 || '%' ORDER BY sha256 LIMIT 2`,
    [prefix],
  );
  return rows.map((row) => row.sha256);
}

/** What a host writes about itself. */
export interface HostReport {
  readonly host: string;
  readonly name: string;
  readonly revision: number | undefined;
  readonly stable: string | undefined;
  readonly canary: string | undefined;
  readonly percent: number;
  readonly version: string | undefined;
  readonly state: HostStatus['state'];
  readonly serving: string | undefined;
  readonly error: HostError | undefined;
  readonly pollMs: number;
  readonly software: Readonly<Record<string, string>>;
  readonly startedAt: Date;
}

/** Upserts a host's row; `last_seen` is the database's `now()`. */
export async function report(q: Queryable, schema: string, r: HostReport): Promise<void> {
  await q.query(
    `INSERT INTO ${ident(schema)}.host
       (host_id, name, revision, stable, canary, percent, version, state, serving, error, poll_ms, software, started_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
     ON CONFLICT (host_id, name) DO UPDATE SET
       revision = EXCLUDED.revision, stable = EXCLUDED.stable, canary = EXCLUDED.canary,
       percent = EXCLUDED.percent, version = EXCLUDED.version, state = EXCLUDED.state,
       serving = EXCLUDED.serving, error = EXCLUDED.error, poll_ms = EXCLUDED.poll_ms,
       software = EXCLUDED.software, started_at = EXCLUDED.started_at, last_seen = now()`,
    [
      r.host,
      r.name,
      r.revision ?? null,
      r.stable ?? null,
      r.canary ?? null,
      r.percent,
      r.version ?? null,
      r.state,
      r.serving ?? null,
      r.error === undefined ? null : JSON.stringify(r.error),
      r.pollMs,
      JSON.stringify(r.software),
      r.startedAt,
    ],
  );
}

interface HostRow {
  host_id: string;
  name: string;
  owner: string;
  revision: string | null;
  stable: string | null;
  canary: string | null;
  percent: number;
  version: string | null;
  state: HostStatus['state'];
  serving: string | null;
  error: HostError | null;
  poll_ms: number;
  software: Record<string, string>;
  started_at: Date;
  last_seen: Date;
  age_ms: number;
}

/** Every host's row for `name`, by host id. */
export async function hosts(q: Queryable, schema: string, name: string): Promise<HostStatus[]> {
  const { rows } = await q.query<HostRow>(
    `SELECT host_id, name, owner, revision, stable, canary, percent, version, state, serving, error, poll_ms,
            software, started_at, last_seen,
            (extract(epoch FROM clock_timestamp() - last_seen) * 1000)::float8 AS age_ms
       FROM ${ident(schema)}.host WHERE name = $1 ORDER BY host_id`,
    [name],
  );
  return rows.map((row) => ({
    host: row.host_id,
    name: row.name,
    owner: row.owner,
    revision: row.revision === null ? undefined : Number(row.revision),
    stable: row.stable ?? undefined,
    canary: row.canary ?? undefined,
    percent: row.percent,
    version: row.version ?? undefined,
    state: row.state,
    serving: row.serving ?? undefined,
    error: row.error ?? undefined,
    pollMs: row.poll_ms,
    software: row.software,
    startedAt: row.started_at,
    lastSeen: row.last_seen,
    ageMs: Math.max(0, row.age_ms),
    stale: row.age_ms > 3 * row.poll_ms,
  }));
}
