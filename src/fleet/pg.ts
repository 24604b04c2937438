/**
 * The PostgreSQL client, `pg`, an optional peer dependency imported on first use; connection settings;
 * and the mapping of its errors onto the fleet's codes.
 */
import type { Client, ClientConfig, QueryResultRow } from 'pg';
import { PluginOptionTypeError } from 'isoplug';
import {
  FleetNoPgError,
  FleetPermissionError,
  FleetSchemaError,
  FleetUnavailableError,
  type FleetErrorContext,
} from './errors.js';

/** The parts of `pg` isoplug uses. */
export interface Pg {
  Client: typeof import('pg').Client;
  Pool: typeof import('pg').Pool;
}

/** node-postgres client settings (pg's `ClientConfig`), passed through as given; the common ones are typed. */
export interface ConnectionConfig {
  connectionString?: string;
  host?: string;
  port?: number;
  user?: string;
  password?: string | (() => string | Promise<string>);
  database?: string;
  ssl?: boolean | Record<string, unknown>;
  application_name?: string;
  /** pg's connect timeout, in ms. */
  connectionTimeoutMillis?: number;
  /** pg's client-side query timeout, in ms. */
  query_timeout?: number;
  keepAlive?: boolean;
  [setting: string]: unknown;
}

/**
 * Where the registry is: a connection string (`postgres://user:password@host:5432/db`) or node-postgres
 * client settings (`{ host, port, user, password, database, ssl, … }`). A follower keeps one session
 * open for `LISTEN`: it must reach PostgreSQL directly or through a pooler in session mode.
 */
export type Database = string | Readonly<ConnectionConfig>;

/** Something queries can be sent to: a pg `Client`, `PoolClient` or `Pool`. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

let pgModule: Promise<Pg> | undefined;

/** Imports `pg` once; rejects `ERR_FLEET_NO_PG` naming the fix when it is not installed. */
export function loadPg(): Promise<Pg> {
  pgModule ??= import('pg').then(
    (module) => (module as unknown as { default?: Pg }).default ?? (module as unknown as Pg),
    (cause: unknown) => {
      pgModule = undefined;
      throw new FleetNoPgError('pg is not installed; isoplug/fleet needs it: npm install pg', { cause });
    },
  );
  return pgModule;
}

/** The client configuration for `db`, with isoplug's defaults under what the user set. */
export function clientConfig(option: string, db: unknown, defaults: ClientConfig = {}): ClientConfig {
  if (typeof db === 'string' && db.length > 0) return { ...defaults, connectionString: db };
  if (db !== null && typeof db === 'object' && !Array.isArray(db)) return { ...defaults, ...(db as ClientConfig) };
  throw new PluginOptionTypeError(option, 'expected a connection string or a pg client configuration');
}

/** The database named by `--db`, else `ISOPLUG_DATABASE_URL`. */
export function databaseFromEnv(flag: string | undefined): string | undefined {
  return flag ?? (process.env.ISOPLUG_DATABASE_URL || undefined);
}

/** Schema names are identifiers we quote ourselves: keep them plain. */
export function checkSchema(option: string, schema: unknown): string {
  if (schema === undefined) return 'isoplug';
  if (typeof schema !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
    throw new PluginOptionTypeError(option, `expected a lowercase SQL identifier, got ${JSON.stringify(schema)}`);
  return schema;
}

/** A quoted SQL identifier. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** SQLSTATE classes and Node socket errors that mean the session is gone or unusable. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown (pg_terminate_backend, fast shutdown)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
  '53300', // too_many_connections
]);

/** True when `error` says the connection failed, was lost, or timed out. */
export function isConnectionError(error: unknown): boolean {
  if (error instanceof FleetUnavailableError) return true;
  const e = error as { code?: unknown; message?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (CONNECTION_CODES.has(code) || code.startsWith('08')) return true;
  // pg reports a lost socket and its own query timeout without a code.
  const message = typeof e.message === 'string' ? e.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Client was closed/i.test(
    message,
  );
}

/** The fleet error for a database error, or the error itself when it has no fleet meaning. */
export function fleetError(error: unknown, what: string, context: FleetErrorContext = {}): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === '42501')
    return new FleetPermissionError(`${what}: permission denied (${(error as Error).message})`, {
      ...context,
      cause: error,
    });
  if (code === '42P01' || code === '3F000' || code === '42883')
    return new FleetSchemaError(`${what}: the registry schema is missing; run isoplug registry init`, {
      ...context,
      cause: error,
    });
  if (isConnectionError(error) && !(error instanceof FleetUnavailableError))
    return new FleetUnavailableError(`${what}: the database is unreachable (${(error as Error).message})`, {
      ...context,
      cause: error,
    });
  return error;
}

/**
 * Ends a client without waiting on a dead peer: `end()` politely, and the socket is destroyed if the
 * goodbye does not complete (a partition would otherwise hold it until TCP gives up).
 */
export function hangUp(client: Client): void {
  const socket = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
  const timer = setTimeout(() => socket?.destroy(), 1_000);
  timer.unref();
  client.end().then(
    () => clearTimeout(timer),
    () => {
      clearTimeout(timer);
      socket?.destroy();
    },
  );
}
