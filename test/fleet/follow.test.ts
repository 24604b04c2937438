// A host following a deployment, in this process, against a real PostgreSQL: it serves each newer
// revision, and whatever goes wrong (a version that cannot start, bytes that do not match, a missing or
// wrong signature, a canary it cannot run, a killed connection, the database down) it keeps serving its
// last good version, says so, and catches up.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  followDeployment,
  initRegistry,
  openRegistry,
  type AppliedEvent,
  type DeploymentFollower,
  type FollowDeploymentOptions,
  type FollowerEvents,
  type Registry,
} from '../../src/fleet/index.js';
import { caught, tempDir } from '../helpers.js';
import { asAdmin, bundle, loginRole, useCluster } from './helpers.js';
import { pgMissing } from './pg.js';

type Api = { version(): string };

/** Resolves with the first `event` (from now on) that `match` accepts. */
function until<K extends keyof FollowerEvents>(
  follower: DeploymentFollower<Api>,
  event: K,
  match: (...args: FollowerEvents[K]) => boolean = () => true,
): Promise<FollowerEvents[K]> {
  return new Promise((resolve) => {
    const listener = (...args: FollowerEvents[K]): void => {
      if (!match(...args)) return;
      (follower.off as (e: K, l: typeof listener) => void)(event, listener);
      resolve(args);
    };
    (follower.on as (e: K, l: typeof listener) => void)(event, listener);
  });
}

const broken = Buffer.from(`export function version() { return 'broken'; }
export function onLoad() { throw new Error('this version cannot start'); }
`);

describe.skipIf(pgMissing !== undefined)(`following a deployment${pgMissing ? ` (skipped: ${pgMissing})` : ''}`, () => {
  const cluster = useCluster();
  let registry: Registry;

  async function setup(name: string): Promise<Registry> {
    await initRegistry({ db: cluster.get().url() });
    registry = await openRegistry({ db: cluster.get().url() });
    await registry.publish(bundle('v1'), { name, stable: true });
    return registry;
  }

  function follow(name: string, options: Partial<FollowDeploymentOptions<Api>> = {}) {
    return followDeployment<Api>({
      db: cluster.get().url(),
      name,
      cacheDir: tempDir(),
      // Polls are the safety net; these tests show the host converging without one.
      pollMs: 600_000,
      reconnectBackoffMs: 20,
      reconnectMaxBackoffMs: 200,
      bootTimeoutMs: 20_000,
      ...options,
    });
  }

  it('serves the first revision, then each newer one, and reports itself to the registry', async () => {
    await using r = await setup('serve');
    await using host = await follow('serve', { host: 'h1' });
    expect(await host.api.version()).toBe('v1');
    expect(host.status).toMatchObject({ host: 'h1', state: 'ok', revision: 1, connected: true, error: undefined });
    const applied = until(host, 'applied', (e) => e.revision === 2);
    const v2 = await r.publish(bundle('v2'), { name: 'serve', stable: true });
    const [event] = await applied;
    expect(event).toMatchObject({ revision: 2, stable: v2.sha256, version: v2.version });
    expect(await host.api.version()).toBe('v2');
    expect(host.version).toBe(v2.version);
    await host.refresh();
    expect(await r.hosts('serve')).toMatchObject([
      { host: 'h1', revision: 2, state: 'ok', stable: v2.sha256, version: v2.version, serving: 'ready', stale: false },
    ]);
  });

  it('boot rejects ERR_FLEET_NO_DEPLOYMENT when nothing is deployed, ERR_FLEET_UNAVAILABLE without a database', async () => {
    await initRegistry({ db: cluster.get().url() });
    expect(await caught(follow('nothing-here', { bootTimeoutMs: 200 }))).toMatchObject({
      code: 'ERR_FLEET_NO_DEPLOYMENT',
    });
    const closed = `postgres://postgres@127.0.0.1:1/postgres`;
    expect(await caught(follow('x', { db: closed, bootTimeoutMs: 200 }))).toMatchObject({
      code: 'ERR_FLEET_UNAVAILABLE',
    });
    expect(await caught(follow('', {}))).toMatchObject({ code: 'ERR_PLUGIN_INVALID_OPTION', option: 'options.name' });
    expect(await caught(follow('x', { pollMs: -1 }))).toMatchObject({
      code: 'ERR_PLUGIN_INVALID_OPTION',
      option: 'options.pollMs',
    });
  });

  it('a version that cannot start is refused and reported; the current one serves on; a later one applies', async () => {
    await using r = await setup('refuse');
    await using host = await follow('refuse', { host: 'h1' });
    const rejected = until(host, 'rejected');
    await r.publish(broken, { name: 'refuse', stable: true });
    const [event] = await rejected;
    expect(event).toMatchObject({ revision: 2, error: { revision: 2, code: 'ERR_SWAP_FAILED' } });
    expect(await host.api.version()).toBe('v1');
    expect(host.status).toMatchObject({ state: 'failed', revision: 1, latestRevision: 2 });
    await host.refresh();
    expect(await r.hosts('refuse')).toMatchObject([
      { host: 'h1', state: 'failed', revision: 1, error: { revision: 2, code: 'ERR_SWAP_FAILED' } },
    ]);
    const applied = until(host, 'applied');
    await r.publish(bundle('v3'), { name: 'refuse', stable: true });
    expect((await applied)[0].revision).toBe(3);
    expect(await host.api.version()).toBe('v3');
    expect(host.status).toMatchObject({ state: 'ok', revision: 3, error: undefined });
  });

  it('bytes that do not match their SHA-256 are never loaded', async () => {
    await using r = await setup('tampered');
    await using host = await follow('tampered');
    const evil = await r.publish(bundle('v2'), { name: 'tampered' });
    // Same length: the size check stays true, only the hash check would catch it.
    // Whoever owns the table can change a row: the host does not trust the database's check.
    await asAdmin(cluster.get(), async (admin) => {
      await admin.query('ALTER TABLE isoplug.bundle DROP CONSTRAINT bundle_hash');
      await admin.query(`UPDATE isoplug.bundle SET bytes = $2 WHERE sha256 = $1`, [evil.sha256, bundle('ev')]);
    });
    const rejected = until(host, 'rejected');
    await r.deploy('tampered', { stable: evil.sha256 });
    expect((await rejected)[0]).toMatchObject({ revision: 2, error: { code: 'ERR_FLEET_INTEGRITY' } });
    expect(await host.api.version()).toBe('v1');
    // Refused for good: reading again does not try it again.
    let again = 0;
    host.on('rejected', () => again++);
    await host.refresh();
    expect(again).toBe(0);
    await asAdmin(cluster.get(), async (admin) => {
      await admin.query(`DELETE FROM isoplug.deployment WHERE name = 'tampered' AND revision = 2`);
      await admin.query(`UPDATE isoplug.bundle SET bytes = $2 WHERE sha256 = $1`, [evil.sha256, bundle('v2')]);
      await admin.query(
        `ALTER TABLE isoplug.bundle ADD CONSTRAINT bundle_hash CHECK (encode(sha256(bytes), 'hex') = sha256)`,
      );
    });
  });

  it('with requireSignature: unsigned, unknown-key and tampered bundles are refused; trusted ones apply', async () => {
    await initRegistry({ db: cluster.get().url() });
    await using r = await openRegistry({ db: cluster.get().url() });
    const trusted = generateKeyPairSync('ed25519');
    const stranger = generateKeyPairSync('ed25519');
    await r.publish(bundle('v1'), { name: 'signed', stable: true, sign: trusted.privateKey });
    await using host = await follow('signed', { requireSignature: [trusted.publicKey] });
    expect(await host.api.version()).toBe('v1');

    const refusal = async (publish: () => Promise<unknown>) => {
      const rejected = until(host, 'rejected');
      await publish();
      return (await rejected)[0].error.code;
    };
    expect(await refusal(() => r.publish(bundle('unsigned'), { name: 'signed', stable: true }))).toBe(
      'ERR_FLEET_SIGNATURE',
    );
    expect(
      await refusal(() => r.publish(bundle('stranger'), { name: 'signed', stable: true, sign: stranger.privateKey })),
    ).toBe('ERR_FLEET_SIGNATURE');
    // Tampered: other bytes under their own (correct) hash, with the trusted signature of the original copied over.
    const original = await r.publish(bundle('original'), { name: 'signed', sign: trusted.privateKey });
    const evil = await r.publish(bundle('evil'), { name: 'signed' });
    await asAdmin(cluster.get(), (admin) =>
      admin.query(
        `INSERT INTO isoplug.signature (sha256, key_id, signature)
         SELECT $2, key_id, signature FROM isoplug.signature WHERE sha256 = $1`,
        [original.sha256, evil.sha256],
      ),
    );
    expect(await refusal(() => r.deploy('signed', { stable: evil.sha256 }))).toBe('ERR_FLEET_SIGNATURE');
    expect(await host.api.version()).toBe('v1');

    const applied = until(host, 'applied');
    await r.deploy('signed', { stable: original.sha256 });
    expect((await applied)[0].revision).toBe(5);
    expect(await host.api.version()).toBe('original');
    // A host booting on an unsigned revision has nothing to serve: it rejects.
    await r.publish(bundle('unsigned-again'), { name: 'signed', stable: true });
    expect(await caught(follow('signed', { requireSignature: trusted.publicKey }))).toMatchObject({
      code: 'ERR_FLEET_SIGNATURE',
    });
  });

  it('old, repeated and malformed hints change nothing; a burst of revisions applies in increasing order', async () => {
    await using r = await setup('order');
    await using host = await follow('order');
    const log: number[] = [];
    host.on('applied', (e: AppliedEvent) => log.push(e.revision));
    const sixth = until(host, 'applied', (e) => e.revision === 6);
    for (const label of ['v2', 'v3', 'v4', 'v5', 'v6']) await r.publish(bundle(label), { name: 'order', stable: true });
    await sixth;
    // Hosts may skip revisions (each is a full snapshot), never go back.
    expect(log.at(-1)).toBe(6);
    expect(log).toEqual([...log].sort((a, b) => a - b));
    expect(new Set(log).size).toBe(log.length);

    await asAdmin(cluster.get(), async (admin) => {
      for (const payload of ['{"name":"order","revision":2}', '{"name":"order","revision":6}', 'garbage', ''])
        await admin.query('SELECT pg_notify($1, $2)', ['isoplug', payload]);
    });
    // Notifications arrive in commit order: once r7 applies, the hints above were all handled.
    const seventh = until(host, 'applied', (e) => e.revision === 7);
    await r.publish(bundle('v7'), { name: 'order', stable: true });
    await seventh;
    expect(log.filter((revision) => revision < 7).at(-1)).toBe(6);
    expect(log.at(-1)).toBe(7);
    expect(await host.api.version()).toBe('v7');
  });

  it('a revision written without a notification (as behind a transaction pooler) is found by the poll', async () => {
    await using r = await setup('polled');
    await using host = await follow('polled', { pollMs: 50 });
    const v2 = await r.publish(bundle('v2'), { name: 'polled' });
    const applied = until(host, 'applied');
    await asAdmin(cluster.get(), (admin) =>
      admin.query(`INSERT INTO isoplug.deployment (name, revision, stable) VALUES ('polled', 2, $1)`, [v2.sha256]),
    );
    expect((await applied)[0].revision).toBe(2);
    expect(await host.api.version()).toBe('v2');
  });

  it('the same revision written again with other contents (history rewound) is applied', async () => {
    await using r = await setup('rewound');
    await using host = await follow('rewound');
    const second = until(host, 'applied');
    await r.publish(bundle('v2'), { name: 'rewound', stable: true });
    expect((await second)[0].revision).toBe(2);
    // As after a failover to a replica that lacked revision 2: it is gone, and written again differently.
    await asAdmin(cluster.get(), (admin) =>
      admin.query(`DELETE FROM isoplug.deployment WHERE name = 'rewound' AND revision = 2`),
    );
    const again = until(host, 'applied');
    await r.publish(bundle('v2-again'), { name: 'rewound', stable: true });
    expect((await again)[0].revision).toBe(2);
    expect(await host.api.version()).toBe('v2-again');
  });

  it('a revision with a canary applies: the hot swap serves it beside the stable version; promote makes it stable', async () => {
    await using r = await setup('canary');
    await using host = await follow('canary');
    const v2 = await r.publish(bundle('v2'), { name: 'canary' });
    const rolled = until(host, 'applied');
    await r.rollout('canary', v2.version, { percent: 100 });
    expect((await rolled)[0]).toMatchObject({ revision: 2 });
    expect(host.status).toMatchObject({ state: 'ok', canary: v2.sha256, percent: 100, version: expect.any(String) });
    expect(host.hotSwap.canary?.version).toBe(v2.sha256.slice(0, 12));
    expect(await host.api.version()).toBe('v2');
    const promoted = until(host, 'applied');
    await r.promote('canary');
    expect((await promoted)[0]).toMatchObject({ revision: 3, stable: v2.sha256 });
    expect(host.hotSwap.canary).toBeUndefined();
    expect(await host.api.version()).toBe('v2');
  });

  it('a host whose id another role owns cannot report (ERR_FLEET_PERMISSION) and still follows', async () => {
    await using r = await setup('owned');
    const first = await loginRole(cluster.get(), 'pod_first', 'isoplug_host');
    const second = await loginRole(cluster.get(), 'pod_second', 'isoplug_host');
    await using owner = await follow('owned', { db: first, host: 'same-id' });
    await using intruder = await follow('owned', { db: second, host: 'same-id' });
    expect((await intruder.refresh()).lastError).toMatchObject({ code: 'ERR_FLEET_PERMISSION' });
    const applied = Promise.all([until(owner, 'applied'), until(intruder, 'applied')]);
    await r.publish(bundle('v2'), { name: 'owned', stable: true });
    await applied;
    expect(await intruder.api.version()).toBe('v2');
    await owner.refresh();
    expect(await r.hosts('owned')).toMatchObject([{ host: 'same-id', owner: 'pod_first', revision: 2 }]);
  });

  it('a killed connection: the host serves on, reconnects, and applies what it missed meanwhile', async () => {
    await using r = await setup('killed');
    const url = await loginRole(cluster.get(), 'pod_killed', 'isoplug_host');
    await using host = await follow('killed', { db: url });
    const disconnected = until(host, 'disconnected');
    await asAdmin(cluster.get(), async (admin) => {
      // Kept from logging in again until the revision below is written: no notification can reach it.
      await admin.query('ALTER ROLE pod_killed NOLOGIN');
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pod_killed'`);
    });
    await disconnected;
    await r.publish(bundle('v2'), { name: 'killed', stable: true });
    expect(host.status).toMatchObject({ connected: false, revision: 1 });
    expect(host.status.disconnectedSince).toBeInstanceOf(Date);
    expect(await host.api.version()).toBe('v1');
    const applied = until(host, 'applied');
    await asAdmin(cluster.get(), (admin) => admin.query('ALTER ROLE pod_killed LOGIN'));
    expect((await applied)[0].revision).toBe(2);
    expect(await host.api.version()).toBe('v2');
    expect(host.status).toMatchObject({ connected: true, disconnectedSince: undefined });
  });

  it('the database stopped and started again: the host serves on, says so, and catches up', async () => {
    await using r = await setup('outage');
    await using host = await follow('outage');
    const disconnected = until(host, 'disconnected');
    await cluster.get().halt();
    await disconnected;
    expect(await host.api.version()).toBe('v1');
    expect(host.status).toMatchObject({ connected: false, state: 'ok', lastError: { code: 'ERR_FLEET_UNAVAILABLE' } });
    const connected = until(host, 'connected');
    await cluster.get().resume();
    await connected;
    const applied = until(host, 'applied');
    await r.publish(bundle('v2'), { name: 'outage', stable: true });
    expect((await applied)[0].revision).toBe(2);
    expect(await host.api.version()).toBe('v2');
  });
});
