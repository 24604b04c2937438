/** Shared by the fleet tests: a cluster per file, an admin connection, small plugin bundles. */
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { Cluster } from './pg.js';

/** Starts a cluster for this test file and removes it after; `get()` is it. */
export function useCluster(): { get(): Cluster } {
  let cluster: Cluster | undefined;
  beforeAll(async () => {
    cluster = await Cluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.destroy();
  }, 60_000);
  return {
    get: () => {
      if (!cluster) throw new Error('no cluster');
      return cluster;
    },
  };
}

/** Runs `fn` with a superuser connection, ended afterwards. */
export async function asAdmin<R>(cluster: Cluster, fn: (client: pg.Client) => Promise<R>): Promise<R> {
  const client = new pg.Client({ connectionString: cluster.url() });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates a login role that is a member of `group` (trust authentication: no password on this cluster). */
export async function loginRole(cluster: Cluster, name: string, group: string): Promise<string> {
  await asAdmin(cluster, (client) => client.query(`CREATE ROLE "${name}" LOGIN IN ROLE "${group}"`));
  return cluster.url(name);
}

/**
 * The bytes of a tiny plugin version: `version()` answers `label`; `onLoad` throws when the host's
 * `HOST_ID` environment variable is in `failOn` (a version that one host cannot start).
 */
export function bundle(label: string, failOn: string[] = []): Uint8Array {
  return Buffer.from(
    `export function version() { return ${JSON.stringify(label)}; }
export function onLoad() {
  if (${JSON.stringify(failOn)}.includes(process.env.HOST_ID)) throw new Error('cannot start on ' + process.env.HOST_ID);
}
`,
  );
}
