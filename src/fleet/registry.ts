/**
 * The publishing side: store bundles, write deployment revisions, read history and host status.
 *
 * A write is one transaction: the bundle (if new) and its signature, the next revision computed from the
 * latest one read in the same transaction, and `pg_notify`, which PostgreSQL delivers only at commit and in
 * commit order. Revisions are compare-and-set: the insert of revision N+1 fails when another publisher took
 * it first (`ERR_FLEET_CONFLICT`), so two racing publishers never both win silently.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import type { ClientConfig, Pool, PoolClient } from 'pg';
import { PluginOptionRangeError, PluginOptionTypeError } from 'isoplug';
import {
  FleetClosedError,
  FleetConflictError,
  FleetNoDeploymentError,
  FleetSchemaError,
  FleetVersionError,
} from './errors.js';
import { checkSchema, clientConfig, fleetError, ident, loadPg, type Database } from './pg.js';
import { migrate, schemaVersion, SCHEMA_VERSION, type RegistryRoles } from './schema.js';
import { privateKey, sha256, signBundle, type KeyLike } from './sign.js';
import * as q from './store.js';
import type { Deployment, HostStatus } from './store.js';
import { waitForHosts, type Convergence, type WaitOptions } from './wait.js';

export interface RegistryOptions {
  /** The registry's database. */
  db: Database;
  /**
   * The registry's schema.
   * @default 'isoplug'
   */
  schema?: string;
}

/** A revision's full desired state. */
export interface DeploymentSpec {
  /** SHA-256 of the stable bundle (already stored). */
  stable: string;
  /** SHA-256 of a canary bundle. @default undefined */
  canary?: string | undefined;
  /** Share of calls on the canary, 0–100. @default 0 */
  percent?: number;
  /** The canary's sticky-key salt. @default a new random salt (or the current one for the same canary) */
  salt?: string | undefined;
}

export interface WriteOptions {
  /** Recorded with the revision. @default undefined */
  message?: string;
  /** Fail with `ERR_FLEET_CONFLICT` unless the latest revision is this one (0: none yet). @default undefined (the latest read in the transaction) */
  expectRevision?: number;
}

export interface PublishOptions extends WriteOptions {
  /** The plugin (deployment) name. */
  name: string;
  /** Also write a revision that makes this bundle the stable version (no canary). @default false */
  stable?: boolean;
  /** Ed25519 private key to sign the bundle with (PEM or KeyObject). @default undefined */
  sign?: KeyLike;
}

export interface PublishResult {
  readonly sha256: string;
  readonly size: number;
  /** The version label hosts give it: the hash's first 12 digits. */
  readonly version: string;
  /** False when the registry already held these bytes. */
  readonly stored: boolean;
  readonly signedBy: string | undefined;
  /** The revision written, with `stable: true`. */
  readonly deployment: Deployment | undefined;
}

const MAX_BUNDLE_BYTES = 256 * 2 ** 20;

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200)
    throw new PluginOptionTypeError('name', 'expected a non-empty plugin name of at most 200 characters');
  return name;
}

function checkPercent(percent: unknown): number {
  if (typeof percent !== 'number' || Number.isNaN(percent))
    throw new PluginOptionTypeError('percent', `expected a number from 0 to 100, got ${String(percent)}`);
  if (percent < 0 || percent > 100) throw new PluginOptionRangeError('percent', `expected 0 to 100, got ${percent}`);
  return percent;
}

/** Opens a registry: checks that its schema is there and current. */
export async function openRegistry(options: RegistryOptions): Promise<Registry> {
  const schema = checkSchema('options.schema', options.schema);
  const config = clientConfig('options.db', options.db, {
    application_name: 'isoplug publisher',
    // A database that cannot be reached says so in seconds, not at the TCP timeout.
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
  });
  const pg = await loadPg();
  const pool = new pg.Pool({ ...config, max: 2 });
  pool.on('error', () => {}); // an idle client lost: the next query reports it
  try {
    const version = await schemaVersion(pool, schema);
    if (version === undefined || version < SCHEMA_VERSION)
      throw new FleetSchemaError(
        version === undefined
          ? `no registry schema ${schema}: run isoplug registry init`
          : `registry schema ${schema} is at version ${version}, this isoplug needs ${SCHEMA_VERSION}: run isoplug registry init`,
      );
  } catch (error) {
    await pool.end();
    throw fleetError(error, 'opening the registry');
  }
  // A private member by element access: the constructor's parameters are no part of the public types.
  return Registry['create'](pool, schema);
}

export interface InitOptions extends RegistryOptions {
  /** Create the two roles and grant them their rights; `false` to only create the schema. @default {} (default names) */
  roles?: RegistryRoles | false;
}

/** Creates or upgrades the registry schema, and its roles. Needs a role that may create schemas and roles. */
export async function initRegistry(
  options: InitOptions,
): Promise<{ schema: string; applied: number[]; roles: { publisher: string; host: string } | undefined }> {
  const schema = checkSchema('options.schema', options.schema);
  const config: ClientConfig = clientConfig('options.db', options.db, {
    application_name: 'isoplug registry init',
    connectionTimeoutMillis: 10_000,
  });
  const roles =
    options.roles === false
      ? false
      : {
          publisher: options.roles?.publisher ?? `${schema}_publisher`,
          host: options.roles?.host ?? `${schema}_host`,
        };
  const pg = await loadPg();
  const client = new pg.Client(config);
  client.on('error', () => {});
  try {
    await client.connect();
    const applied = await migrate(client, schema, roles);
    return { schema, applied, roles: roles || undefined };
  } catch (error) {
    throw fleetError(error, 'initializing the registry');
  } finally {
    await client.end().catch(() => {});
  }
}

export class Registry {
  readonly #pool: Pool;
  readonly schema: string;
  #closed = false;

  private constructor(pool: Pool, schema: string) {
    this.#pool = pool;
    this.schema = schema;
  }

  /** @internal `openRegistry()` makes registries. */
  private static create(pool: Pool, schema: string): Registry {
    return new Registry(pool, schema);
  }

  #db(): Pool {
    if (this.#closed) throw new FleetClosedError('the registry is closed');
    return this.#pool;
  }

  async #read<R>(what: string, run: () => Promise<R>): Promise<R> {
    try {
      return await run();
    } catch (error) {
      throw fleetError(error, what);
    }
  }

  /**
   * Stores a bundle (idempotent: the same bytes are stored once), optionally signed, and with
   * `stable: true` writes a revision serving it to every host; all in one transaction.
   */
  async publish(bytes: Uint8Array, options: PublishOptions): Promise<PublishResult> {
    const name = checkName(options.name);
    if (!(bytes instanceof Uint8Array) || bytes.byteLength === 0 || bytes.byteLength > MAX_BUNDLE_BYTES)
      throw new PluginOptionTypeError('bytes', `expected 1 byte to ${MAX_BUNDLE_BYTES} bytes of ES module`);
    const key: KeyObject | undefined = options.sign === undefined ? undefined : privateKey('sign', options.sign);
    const hash = sha256(bytes);
    const signature = key && signBundle(bytes, key);
    let stored = false;
    const deployment = await this.#write(name, options, async (client, current) => {
      const { rows } = await client.query(
        `INSERT INTO ${ident(this.schema)}.bundle (sha256, bytes, size, name) VALUES ($1, $2, $3, $4)
         ON CONFLICT (sha256) DO NOTHING RETURNING sha256`,
        [hash, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes.byteLength, name],
      );
      stored = rows.length > 0;
      if (signature)
        await client.query(
          `INSERT INTO ${ident(this.schema)}.signature (sha256, key_id, signature) VALUES ($1, $2, $3)
           ON CONFLICT (sha256, key_id) DO NOTHING`,
          [hash, signature.keyId, Buffer.from(signature.signature)],
        );
      if (options.stable !== true) return undefined;
      if (current?.stable === hash && current.canary === undefined) return undefined;
      return { stable: hash };
    });
    return {
      sha256: hash,
      size: bytes.byteLength,
      version: hash.slice(0, 12),
      stored,
      signedBy: signature?.keyId,
      deployment,
    };
  }

  /** Writes a revision with a full desired state (bundles already stored). */
  async deploy(name: string, spec: DeploymentSpec, options: WriteOptions = {}): Promise<Deployment> {
    checkName(name);
    const deployment = await this.#write(name, options, () => Promise.resolve(spec));
    return deployment!;
  }

  /**
   * Starts (or moves) a canary: `version` beside the stable one, on `percent`% of calls. The same canary
   * at a new percent keeps its salt, so a sticky key on it stays on it as the percent rises.
   */
  async rollout(name: string, version: string, options: WriteOptions & { percent: number }): Promise<Deployment> {
    checkName(name);
    const percent = checkPercent(options.percent);
    const canary = await this.resolveVersion(name, version);
    const deployment = await this.#write(name, options, (_client, current) => {
      if (!current)
        throw new FleetNoDeploymentError(`${name} has no stable version to roll out beside`, { pluginName: name });
      if (current.stable === canary)
        throw new FleetVersionError(`${version} is already the stable version of ${name}`, { pluginName: name });
      return Promise.resolve({
        stable: current.stable,
        canary,
        percent,
        salt: current.canary === canary ? current.salt : undefined,
      });
    });
    return deployment!;
  }

  /** Makes the canary the stable version (a new revision without a canary). */
  async promote(name: string, options: WriteOptions = {}): Promise<Deployment> {
    checkName(name);
    const deployment = await this.#write(name, options, (_client, current) => {
      if (current?.canary === undefined)
        throw new FleetNoDeploymentError(`${name} has no canary to promote`, { pluginName: name });
      return Promise.resolve({ stable: current.canary });
    });
    return deployment!;
  }

  /**
   * A new revision pointing back: to `to` (a version or `r<revision>`) when given; else without the
   * canary when there is one; else to the stable version before the current one.
   */
  async rollback(name: string, options: WriteOptions & { to?: string } = {}): Promise<Deployment> {
    checkName(name);
    const target = options.to === undefined ? undefined : await this.resolveVersion(name, options.to);
    const deployment = await this.#write(name, options, async (client, current) => {
      if (!current) throw new FleetNoDeploymentError(`nothing is deployed under ${name}`, { pluginName: name });
      if (target !== undefined) return { stable: target };
      if (current.canary !== undefined) return { stable: current.stable };
      const { rows } = await client.query<{ stable: string }>(
        `SELECT stable FROM ${ident(this.schema)}.deployment WHERE name = $1 AND stable <> $2
         ORDER BY revision DESC LIMIT 1`,
        [name, current.stable],
      );
      if (!rows[0])
        throw new FleetNoDeploymentError(`${name} has no earlier version to roll back to`, { pluginName: name });
      return { stable: rows[0].stable };
    });
    return deployment!;
  }

  /**
   * The SHA-256 a version names: a hash prefix of at least 8 hex digits, or `r<revision>` (that
   * revision's stable version). Rejects `ERR_FLEET_VERSION` when it names none or several.
   */
  async resolveVersion(name: string, version: string): Promise<string> {
    const revisionMatch = /^r(\d+)$/.exec(version);
    if (revisionMatch) {
      const found = await this.#read('reading a revision', () =>
        q.revision(this.#db(), this.schema, name, Number(revisionMatch[1])),
      );
      if (!found) throw new FleetVersionError(`${name} has no revision ${revisionMatch[1]}`, { pluginName: name });
      return found.stable;
    }
    if (!/^[0-9a-f]{8,64}$/.test(version))
      throw new FleetVersionError(
        `${JSON.stringify(version)} is not a version: expected 8 to 64 hex digits or r<revision>`,
        {
          pluginName: name,
        },
      );
    const found = await this.#read('finding a bundle', () => q.bundlesByPrefix(this.#db(), this.schema, version));
    if (found.length !== 1)
      throw new FleetVersionError(
        found.length === 0 ? `no bundle ${version} in the registry` : `${version} names more than one bundle`,
        { pluginName: name },
      );
    return found[0]!;
  }

  /**
   * One write transaction: `change` gets the latest revision (read in the transaction) and returns the
   * next desired state, or undefined to write none; the revision is the latest + 1, inserted under the
   * primary key, then notified.
   */
  async #write(
    name: string,
    options: WriteOptions,
    change: (client: PoolClient, current: Deployment | undefined) => Promise<DeploymentSpec | undefined>,
  ): Promise<Deployment | undefined> {
    const expect = options.expectRevision;
    if (expect !== undefined && (!Number.isInteger(expect) || expect < 0))
      throw new PluginOptionTypeError('expectRevision', `expected a revision number ≥ 0, got ${String(expect)}`);
    const s = ident(this.schema);
    let client: PoolClient;
    try {
      client = await this.#db().connect();
    } catch (error) {
      throw fleetError(error, `publishing ${name}`, { pluginName: name });
    }
    // A checked-out client has no error listener of the pool's: a connection lost now must not crash the process.
    const onError = (): void => {};
    client.on('error', onError);
    let current: Deployment | undefined;
    try {
      await client.query('BEGIN');
      current = await q.latest(client, this.schema, name);
      const at = current?.revision ?? 0;
      if (expect !== undefined && at !== expect)
        throw new FleetConflictError(`${name} is at revision ${at}, not ${expect}`, {
          pluginName: name,
          currentRevision: at,
        });
      const spec = await change(client, current);
      let written: Deployment | undefined;
      if (spec !== undefined) {
        const canary = spec.canary;
        const salt = canary === undefined ? null : (spec.salt ?? randomBytes(8).toString('hex'));
        const { rows } = await client.query<{ revision: string; created_at: Date; created_by: string }>(
          `INSERT INTO ${s}.deployment (name, revision, stable, canary, percent, salt, message)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING revision, created_at, created_by`,
          [
            name,
            at + 1,
            spec.stable,
            canary ?? null,
            canary === undefined ? 0 : (spec.percent ?? 0),
            salt,
            options.message ?? null,
          ],
        );
        const row = rows[0]!;
        written = {
          name,
          revision: Number(row.revision),
          stable: spec.stable,
          canary,
          percent: canary === undefined ? 0 : (spec.percent ?? 0),
          salt: salt ?? undefined,
          message: options.message,
          createdAt: row.created_at,
          createdBy: row.created_by,
        };
        await client.query('SELECT pg_notify($1, $2)', [
          this.schema,
          JSON.stringify({ name, revision: written.revision }),
        ]);
      }
      await client.query('COMMIT');
      return written;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      // Bundles and signatures insert ON CONFLICT DO NOTHING: a unique violation here is the revision's.
      if ((error as { code?: unknown }).code === '23505') {
        const now = await q.latest(this.#pool, this.schema, name).catch(() => undefined);
        throw new FleetConflictError(
          `another publish took revision ${(current?.revision ?? 0) + 1} of ${name} first (now at ${now?.revision ?? '?'})`,
          { pluginName: name, currentRevision: now?.revision, cause: error },
        );
      }
      throw fleetError(error, `publishing ${name}`, { pluginName: name });
    } finally {
      client.off('error', onError);
      client.release();
    }
  }

  /** The latest revision of `name`, or undefined. */
  latest(name: string): Promise<Deployment | undefined> {
    return this.#read('reading the deployment', () => q.latest(this.#db(), this.schema, checkName(name)));
  }

  /** Revisions of `name`, newest first. */
  history(name: string, options: { limit?: number } = {}): Promise<Deployment[]> {
    const limit = options.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1)
      throw new PluginOptionRangeError('limit', `expected an integer ≥ 1, got ${limit}`);
    return this.#read('reading the history', () => q.history(this.#db(), this.schema, checkName(name), limit));
  }

  /** Every host's report for `name`. */
  hosts(name: string): Promise<HostStatus[]> {
    return this.#read('reading host status', () => q.hosts(this.#db(), this.schema, checkName(name)));
  }

  /**
   * Waits until every live host reports `revision` of `name` applied (or refused), or the deadline.
   * Hosts already stale when the wait starts are listed, not waited for.
   */
  waitFor(name: string, revision: number, options: WaitOptions): Promise<Convergence> {
    return waitForHosts(() => this.hosts(name), revision, options);
  }

  /** Ends the registry's connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
