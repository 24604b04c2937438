/** Options of `followDeployment()`: where the deployment is, how to follow it, and the hot swap's own. */
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { ClientConfig } from 'pg';
import { PluginOptionRangeError, PluginOptionTypeError, type HotSwapOptions } from 'isoplug';
import { checkSchema, clientConfig, type Database } from './pg.js';
import { trustedKeys, type KeyLike, type TrustedKey } from './sign.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface FollowDeploymentOptions<T = any> extends Omit<HotSwapOptions<T>, 'name' | 'version'> {
  /** The registry's database (a direct session: `LISTEN` does not work through a transaction pooler). */
  db: Database;
  /** The plugin (deployment) name to follow; also the plugin's name in errors and events. */
  name: string;
  /**
   * This host's id in the registry's status rows: unique per process following `name`.
   * @default `${os.hostname()}:${process.pid}`
   */
  host?: string;
  /**
   * The registry's schema.
   * @default 'isoplug'
   */
  schema?: string;
  /**
   * Where verified bundles are written (`<sha256>.mjs`). Keep it under the application when bundles
   * leave packages external, so Node resolves them from the application's `node_modules`.
   * @default '<cwd>/node_modules/.cache/isoplug/fleet'
   */
  cacheDir?: string;
  /**
   * Ed25519 public key(s) (PEM or KeyObject): load only bundles signed by one of them. An unsigned or
   * wrongly signed bundle is refused (`ERR_FLEET_SIGNATURE`), reported, and the current version keeps serving.
   * @default undefined (signatures not required)
   */
  requireSignature?: KeyLike | readonly KeyLike[];
  /**
   * How often the host re-reads the deployment and reports itself, in ms, notifications or not. A host
   * not seen for three intervals shows as stale.
   * @default 30000
   */
  pollMs?: number;
  /**
   * How long `followDeployment()` may wait for the database and a first revision before it rejects.
   * @default 30000
   */
  bootTimeoutMs?: number;
  /**
   * When the database is unreachable at boot, serve the last revision this host applied from `cacheDir`
   * (its bundles re-hashed, and their signatures checked again with `requireSignature`) instead of waiting,
   * and catch up once connected. A cache without one waits for the database as without this option.
   * @default true
   */
  bootFromCache?: boolean;
  /**
   * First wait before reconnecting after the connection is lost, in ms; doubles per failed attempt (with jitter).
   * @default 250
   */
  reconnectBackoffMs?: number;
  /**
   * Longest wait between reconnection attempts, in ms.
   * @default 10000
   */
  reconnectMaxBackoffMs?: number;
}

export const FOLLOW_DEFAULTS = Object.freeze({
  schema: 'isoplug',
  pollMs: 30_000,
  bootTimeoutMs: 30_000,
  reconnectBackoffMs: 250,
  reconnectMaxBackoffMs: 10_000,
  bootFromCache: true,
  /** pg's own settings, under what the user gives: a partition must fail a query, not hang it. */
  client: Object.freeze({
    connectionTimeoutMillis: 10_000,
    query_timeout: 15_000,
    keepAlive: true,
    application_name: 'isoplug host',
  } satisfies ClientConfig),
});

export interface ResolvedFollowOptions {
  readonly name: string;
  readonly host: string;
  readonly schema: string;
  readonly config: ClientConfig;
  readonly cacheDir: string;
  readonly trusted: readonly TrustedKey[] | undefined;
  readonly pollMs: number;
  readonly bootTimeoutMs: number;
  readonly reconnectBackoffMs: number;
  readonly reconnectMaxBackoffMs: number;
  readonly bootFromCache: boolean;
  /** What goes to `createHotSwap()`. */
  readonly hotSwap: HotSwapOptions;
}

const FLEET_KEYS = new Set([
  'db',
  'name',
  'host',
  'schema',
  'cacheDir',
  'requireSignature',
  'pollMs',
  'bootTimeoutMs',
  'reconnectBackoffMs',
  'reconnectMaxBackoffMs',
  'bootFromCache',
]);

function text(option: string, value: unknown, fallback?: string): string {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0 || value.length > 200)
    throw new PluginOptionTypeError(option, `expected a non-empty string of at most 200 characters`);
  return value;
}

function ms(option: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new PluginOptionTypeError(option, `expected a finite number of milliseconds, got ${typeof value}`);
  if (value < min) throw new PluginOptionRangeError(option, `expected at least ${min} ms, got ${value}`);
  return value;
}

function flag(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new PluginOptionTypeError(option, `expected a boolean, got ${typeof value}`);
  return value;
}

/** Validates the options; throws naming the option. The hot swap's options are left to `createHotSwap()`. */
export function resolveFollowOptions(options: unknown): ResolvedFollowOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw new PluginOptionTypeError('options', 'expected an object with db and name');
  const o = options as Record<string, unknown>;
  if ('version' in o && o['version'] !== undefined)
    throw new PluginOptionTypeError('options.version', 'the deployment sets each version label');
  const hotSwap: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(o)) if (!FLEET_KEYS.has(key)) hotSwap[key] = value;
  const name = text('options.name', o['name']);
  const backoff = ms('options.reconnectBackoffMs', o['reconnectBackoffMs'], FOLLOW_DEFAULTS.reconnectBackoffMs, 1);
  const maxBackoff = ms(
    'options.reconnectMaxBackoffMs',
    o['reconnectMaxBackoffMs'],
    Math.max(backoff, FOLLOW_DEFAULTS.reconnectMaxBackoffMs),
    backoff,
  );
  const cacheDir = o['cacheDir'];
  if (cacheDir !== undefined && (typeof cacheDir !== 'string' || cacheDir.length === 0))
    throw new PluginOptionTypeError('options.cacheDir', 'expected a folder path');
  return {
    name,
    host: text('options.host', o['host'], `${hostname()}:${process.pid}`),
    schema: checkSchema('options.schema', o['schema']),
    config: clientConfig('options.db', o['db'], FOLLOW_DEFAULTS.client),
    cacheDir: resolve(cacheDir ?? join(process.cwd(), 'node_modules', '.cache', 'isoplug', 'fleet')),
    trusted:
      o['requireSignature'] === undefined ? undefined : trustedKeys('options.requireSignature', o['requireSignature']),
    pollMs: ms('options.pollMs', o['pollMs'], FOLLOW_DEFAULTS.pollMs, 10),
    bootTimeoutMs: ms('options.bootTimeoutMs', o['bootTimeoutMs'], FOLLOW_DEFAULTS.bootTimeoutMs, 0),
    reconnectBackoffMs: backoff,
    reconnectMaxBackoffMs: maxBackoff,
    bootFromCache: flag('options.bootFromCache', o['bootFromCache'], FOLLOW_DEFAULTS.bootFromCache),
    hotSwap: { ...hotSwap, name } as HotSwapOptions,
  };
}
