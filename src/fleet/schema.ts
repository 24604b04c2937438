/**
 * The registry's schema: versioned migrations applied in one transaction, and the two roles.
 *
 * Tables (in a schema of ours, `isoplug` by default):
 * - `bundle`: plugin bytes by SHA-256, immutable. The database checks the hash on insert; hosts check it
 *   again, since whoever owns the table can change it.
 * - `signature`: Ed25519 signatures of bundles, one per signing key (so keys can be rotated).
 * - `deployment`: append-only; each row the full desired state of one plugin name at one revision. A
 *   trigger keeps revisions gapless and increasing; the primary key makes the loser of a race fail.
 * - `host`: one row per host process and plugin, upserted by the host: what it applied, whether the last
 *   revision failed and why, and when it was last seen (the server's clock, not the host's).
 *
 * Roles: the publisher may insert bundles, signatures and deployments, and read everything; the host may
 * read bundles, signatures and deployments and write `host` rows, where row-level security limits it to
 * rows whose `owner` is its own database role. Neither may update or delete a deployment.
 */
import { ident, type Queryable } from './pg.js';

interface Migration {
  readonly version: number;
  readonly name: string;
  sql(schema: string): string;
}

/** Append only: a released migration never changes; a new one is added with the next version. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'bundles, signatures, deployments, hosts',
    sql: (schema) => {
      const s = ident(schema);
      return `
CREATE TABLE ${s}.bundle (
  sha256     text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  bytes      bytea NOT NULL,
  size       integer NOT NULL,
  name       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by name NOT NULL DEFAULT current_user,
  CONSTRAINT bundle_size CHECK (size = octet_length(bytes)),
  CONSTRAINT bundle_hash CHECK (encode(sha256(bytes), 'hex') = sha256)
);
CREATE TABLE ${s}.signature (
  sha256     text NOT NULL REFERENCES ${s}.bundle ON DELETE CASCADE,
  key_id     text NOT NULL CHECK (key_id ~ '^[0-9a-f]{64}$'),
  signature  bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by name NOT NULL DEFAULT current_user,
  PRIMARY KEY (sha256, key_id)
);
CREATE TABLE ${s}.deployment (
  name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  revision   bigint NOT NULL CHECK (revision > 0),
  stable     text NOT NULL REFERENCES ${s}.bundle,
  canary     text REFERENCES ${s}.bundle,
  percent    double precision NOT NULL DEFAULT 0 CHECK (percent >= 0 AND percent <= 100),
  salt       text,
  message    text,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by name NOT NULL DEFAULT current_user,
  PRIMARY KEY (name, revision),
  CONSTRAINT deployment_canary CHECK (
    (canary IS NULL AND percent = 0 AND salt IS NULL) OR (canary IS NOT NULL AND canary <> stable AND salt IS NOT NULL)
  )
);
CREATE FUNCTION ${s}.next_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE last bigint;
BEGIN
  SELECT max(revision) INTO last FROM ${s}.deployment WHERE name = NEW.name;
  IF NEW.revision <> coalesce(last, 0) + 1 THEN
    RAISE EXCEPTION 'revision % of % is not the next one (latest %)', NEW.revision, NEW.name, coalesce(last, 0)
      USING ERRCODE = 'unique_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER deployment_next_revision BEFORE INSERT ON ${s}.deployment
  FOR EACH ROW EXECUTE FUNCTION ${s}.next_revision();
CREATE TABLE ${s}.host (
  host_id    text NOT NULL CHECK (length(host_id) BETWEEN 1 AND 200),
  name       text NOT NULL,
  owner      name NOT NULL DEFAULT current_user,
  revision   bigint,
  stable     text,
  canary     text,
  percent    double precision NOT NULL DEFAULT 0,
  version    text,
  state      text NOT NULL CHECK (state IN ('ok', 'failed', 'applying')),
  serving    text,
  error      jsonb,
  poll_ms    integer NOT NULL,
  software   jsonb NOT NULL DEFAULT '{}',
  started_at timestamptz NOT NULL,
  last_seen  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (host_id, name)
);
ALTER TABLE ${s}.host ENABLE ROW LEVEL SECURITY;
CREATE POLICY host_read ON ${s}.host FOR SELECT USING (true);
CREATE POLICY host_insert ON ${s}.host FOR INSERT WITH CHECK (owner = current_user);
CREATE POLICY host_update ON ${s}.host FOR UPDATE USING (owner = current_user) WITH CHECK (owner = current_user);
CREATE POLICY host_delete ON ${s}.host FOR DELETE USING (owner = current_user);
`;
    },
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Names of the two roles `initRegistry()` creates (NOLOGIN roles: grant them to login roles). */
export interface RegistryRoles {
  /**
   * May store bundles and signatures and write deployments; reads host status.
   * @default '<schema>_publisher'
   */
  publisher?: string;
  /**
   * May read bundles, signatures and deployments, and write its own host status rows.
   * @default '<schema>_host'
   */
  host?: string;
}

/** The GRANTs that give the roles their rights (also printed by the README for hand-made roles). */
export function grants(schema: string, publisher: string, host: string): string[] {
  const s = ident(schema);
  const [p, h] = [ident(publisher), ident(host)];
  return [
    `GRANT USAGE ON SCHEMA ${s} TO ${p}, ${h}`,
    `GRANT SELECT ON ${s}.migration TO ${p}, ${h}`,
    `GRANT SELECT, INSERT ON ${s}.bundle, ${s}.signature, ${s}.deployment TO ${p}`,
    `GRANT SELECT ON ${s}.host TO ${p}`,
    `GRANT SELECT ON ${s}.bundle, ${s}.signature, ${s}.deployment TO ${h}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.host TO ${h}`,
  ];
}

/**
 * Creates or upgrades the schema in one transaction (serialized against a concurrent init by an advisory
 * lock), and creates the roles and grants when `roles` is not false. Resolves with the versions applied now.
 */
export async function migrate(
  client: Queryable,
  schema: string,
  roles: { publisher: string; host: string } | false,
): Promise<number[]> {
  const s = ident(schema);
  const applied: number[] = [];
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`isoplug:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.migration (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${s}.migration`);
    const done = new Set(rows.map((row) => row.version));
    for (const migration of MIGRATIONS) {
      if (done.has(migration.version)) continue;
      await client.query(migration.sql(schema));
      await client.query(`INSERT INTO ${s}.migration (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }
    if (roles) {
      for (const role of [roles.publisher, roles.host]) {
        const { rows: found } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
        if (found.length === 0) await client.query(`CREATE ROLE ${ident(role)} NOLOGIN`);
      }
      for (const grant of grants(schema, roles.publisher, roles.host)) await client.query(grant);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
  return applied;
}

/** The schema version in the database, or undefined when there is no registry schema. */
export async function schemaVersion(client: Queryable, schema: string): Promise<number | undefined> {
  const { rows } = await client.query<{ version: number | null }>(
    `SELECT CASE WHEN to_regclass($1) IS NULL THEN NULL ELSE 0 END AS version`,
    [`${ident(schema)}.migration`],
  );
  if (rows[0]?.version === null || rows[0] === undefined) return undefined;
  const { rows: max } = await client.query<{ version: number | null }>(
    `SELECT max(version) AS version FROM ${ident(schema)}.migration`,
  );
  return max[0]?.version ?? undefined;
}
