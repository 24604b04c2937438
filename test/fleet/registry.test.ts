// The registry against a real PostgreSQL: schema and migrations, publishing as one transaction,
// compare-and-set revisions, rollout/promote/rollback as full snapshots, signatures, and the two roles.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { gcRegistry, initRegistry, keyId, openRegistry, type Registry } from '../../src/fleet/index.js';
import { sha256 } from '../../src/fleet/sign.js';
import { caught } from '../helpers.js';
import { asAdmin, bundle, loginRole, useCluster } from './helpers.js';
import { pgMissing } from './pg.js';

/** The command line's own entry, in this process. */
async function run(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: Io = { out: (text) => void (stdout += `${text}\n`), err: (text) => void (stderr += `${text}\n`) };
  const status = await main(args, io);
  return { status, stdout, stderr };
}

describe.skipIf(pgMissing !== undefined)(`registry${pgMissing ? ` (skipped: ${pgMissing})` : ''}`, () => {
  const cluster = useCluster();
  const open = async (schema = 'isoplug', url = cluster.get().url()): Promise<Registry> =>
    openRegistry({ db: url, schema });

  it('init creates the schema and roles once; a second init applies nothing', async () => {
    const first = await initRegistry({ db: cluster.get().url() });
    expect(first).toEqual({
      schema: 'isoplug',
      applied: [1],
      roles: { publisher: 'isoplug_publisher', host: 'isoplug_host' },
    });
    const again = await initRegistry({ db: cluster.get().url() });
    expect(again.applied).toEqual([]);
    const roles = await asAdmin(cluster.get(), async (client) => {
      const { rows } = await client.query<{ rolname: string; rolcanlogin: boolean }>(
        `SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'isoplug_%' ORDER BY rolname`,
      );
      return rows;
    });
    expect(roles).toEqual([
      { rolname: 'isoplug_host', rolcanlogin: false },
      { rolname: 'isoplug_publisher', rolcanlogin: false },
    ]);
  });

  it('openRegistry without the schema rejects ERR_FLEET_SCHEMA', async () => {
    expect(await caught(open('nowhere'))).toMatchObject({ code: 'ERR_FLEET_SCHEMA' });
  });

  it('publish stores a bundle once, and --stable writes revision after revision', async () => {
    await initRegistry({ db: cluster.get().url() });
    await using registry = await open();
    const v1 = bundle('v1');
    const first = await registry.publish(v1, { name: 'greeter' });
    expect(first).toMatchObject({ sha256: sha256(v1), size: v1.byteLength, stored: true, deployment: undefined });
    expect(await registry.latest('greeter')).toBeUndefined();

    const again = await registry.publish(v1, { name: 'greeter', stable: true, message: 'first' });
    expect(again.stored).toBe(false);
    expect(again.deployment).toMatchObject({
      name: 'greeter',
      revision: 1,
      stable: sha256(v1),
      canary: undefined,
      percent: 0,
      message: 'first',
      createdBy: 'postgres',
    });
    const second = await registry.publish(bundle('v2'), { name: 'greeter', stable: true });
    expect(second.deployment?.revision).toBe(2);
    expect((await registry.history('greeter')).map((d) => d.revision)).toEqual([2, 1]);
  });

  it('rollout, percent, promote and rollback each write a full snapshot', async () => {
    await initRegistry({ db: cluster.get().url() });
    await using registry = await open();
    const [a, b, c] = await Promise.all(
      ['a', 'b', 'c'].map((label) => registry.publish(bundle(label), { name: 'flow' })),
    );
    const r1 = await registry.deploy('flow', { stable: a!.sha256 });
    expect(r1.revision).toBe(1);
    const r2 = await registry.rollout('flow', b!.version, { percent: 10 });
    expect(r2).toMatchObject({ revision: 2, stable: a!.sha256, canary: b!.sha256, percent: 10 });
    expect(r2.salt).toMatch(/^[0-9a-f]{16}$/);
    const r3 = await registry.rollout('flow', b!.sha256.slice(0, 8), { percent: 50 });
    // The same canary keeps its salt, so keys only move onto it as the percent rises.
    expect(r3).toMatchObject({ revision: 3, canary: b!.sha256, percent: 50, salt: r2.salt });
    const r4 = await registry.promote('flow');
    expect(r4).toMatchObject({ revision: 4, stable: b!.sha256, canary: undefined, percent: 0, salt: undefined });
    expect(await caught(registry.promote('flow'))).toMatchObject({ code: 'ERR_FLEET_NO_DEPLOYMENT' });

    // Without --to: back to the stable version before the current one.
    const r5 = await registry.rollback('flow');
    expect(r5).toMatchObject({ revision: 5, stable: a!.sha256, canary: undefined });
    // With a canary on, a rollback drops the canary.
    await registry.rollout('flow', c!.version, { percent: 5 });
    const r7 = await registry.rollback('flow');
    expect(r7).toMatchObject({ revision: 7, stable: a!.sha256, canary: undefined });
    // --to a revision or a version.
    expect(await registry.rollback('flow', { to: 'r4' })).toMatchObject({ revision: 8, stable: b!.sha256 });
    expect(await registry.rollback('flow', { to: c!.version })).toMatchObject({ revision: 9, stable: c!.sha256 });
    // History is append-only: every revision is still there.
    expect((await registry.history('flow', { limit: 100 })).map((d) => d.revision)).toEqual([
      9, 8, 7, 6, 5, 4, 3, 2, 1,
    ]);
  });

  it('registry gc: bundles no revision names, once old enough; with keepRevisions, older revisions first', async () => {
    const db = cluster.get().url();
    // A schema of its own: a collection sees every plugin in its schema.
    await initRegistry({ db, schema: 'gcreg' });
    await using registry = await open('gcreg');
    const signer = generateKeyPairSync('ed25519');
    const v1 = await registry.publish(bundle('v1'), { name: 'a', stable: true });
    const v2 = await registry.publish(bundle('v2'), { name: 'a', stable: true });
    const v3 = await registry.publish(bundle('v3'), { name: 'a', stable: true });
    const stray = await registry.publish(bundle('stray'), { name: 'a', sign: signer.privateKey });
    const fresh = await registry.publish(bundle('fresh'), { name: 'b' });
    await registry.publish(bundle('b1'), { name: 'b', stable: true });
    await asAdmin(cluster.get(), (admin) =>
      admin.query(`UPDATE gcreg.bundle SET created_at = now() - interval '2 hours' WHERE sha256 <> $1`, [fresh.sha256]),
    );
    const counts = () =>
      asAdmin(cluster.get(), async (admin) => {
        const { rows } = await admin.query<{ bundles: number; signatures: number; revisions: number }>(
          `SELECT (SELECT count(*)::int FROM gcreg.bundle) AS bundles,
                  (SELECT count(*)::int FROM gcreg.signature) AS signatures,
                  (SELECT count(*)::int FROM gcreg.deployment) AS revisions`,
        );
        return rows[0];
      });
    expect(await counts()).toEqual({ bundles: 6, signatures: 1, revisions: 4 });

    // Only the upload no revision names, past the minimum age (an hour by default).
    const strayOnly = { revisions: {}, bundles: [{ sha256: stray.sha256, name: 'a', size: stray.size }] };
    expect(await gcRegistry({ db, schema: 'gcreg', dryRun: true })).toEqual({
      ...strayOnly,
      bytes: stray.size,
      dryRun: true,
    });
    expect(await counts()).toEqual({ bundles: 6, signatures: 1, revisions: 4 });
    const cli = await run(['registry', 'gc', '--db', db, '--schema', 'gcreg', '--dry-run']);
    expect(cli).toMatchObject({ status: 0 });
    expect(cli.stdout).toContain(`would delete 1 bundle (${stray.size} bytes)`);
    expect(await gcRegistry({ db, schema: 'gcreg' })).toMatchObject({ ...strayOnly, dryRun: false });
    expect(await counts()).toEqual({ bundles: 5, signatures: 0, revisions: 4 });

    // Keep the newest revision of each plugin: revisions 1 and 2 of a go, and the bundles only they named.
    const kept = await gcRegistry({ db, schema: 'gcreg', keepRevisions: 1 });
    expect(kept.revisions).toEqual({ a: 2 });
    expect(kept.bundles.map((b) => b.sha256).sort()).toEqual([v1.sha256, v2.sha256].sort());
    expect((await registry.history('a')).map((d) => [d.revision, d.stable])).toEqual([[3, v3.sha256]]);
    expect(await caught(registry.rollback('a', { to: 'r1' }))).toMatchObject({ code: 'ERR_FLEET_VERSION' });
    // Revisions go on from the latest.
    expect((await registry.publish(bundle('v4'), { name: 'a', stable: true })).deployment?.revision).toBe(4);

    // The fresh upload stays until it is old enough.
    expect((await gcRegistry({ db, schema: 'gcreg' })).bundles).toEqual([]);
    expect((await gcRegistry({ db, schema: 'gcreg', minAgeMs: 0 })).bundles.map((b) => b.sha256)).toEqual([
      fresh.sha256,
    ]);

    // History is not the publisher's to delete.
    const publisher = await loginRole(cluster.get(), 'gc_ci', 'gcreg_publisher');
    expect(await caught(gcRegistry({ db: publisher, schema: 'gcreg', keepRevisions: 1 }))).toMatchObject({
      code: 'ERR_FLEET_PERMISSION',
    });
    expect(await caught(gcRegistry({ db, schema: 'gcreg', keepRevisions: 0 }))).toMatchObject({
      code: 'ERR_PLUGIN_INVALID_OPTION',
      option: 'options.keepRevisions',
    });
  });

  it('versions that name no bundle, or several, reject ERR_FLEET_VERSION', async () => {
    await initRegistry({ db: cluster.get().url() });
    await using registry = await open();
    const a = await registry.publish(bundle('only'), { name: 'versions', stable: true });
    expect(await caught(registry.rollout('versions', 'ffffffffffff', { percent: 1 }))).toMatchObject({
      code: 'ERR_FLEET_VERSION',
    });
    expect(await caught(registry.rollout('versions', 'r99', { percent: 1 }))).toMatchObject({
      code: 'ERR_FLEET_VERSION',
    });
    expect(await caught(registry.rollout('versions', 'v1', { percent: 1 }))).toMatchObject({
      code: 'ERR_FLEET_VERSION',
    });
    expect(await caught(registry.rollout('versions', a.version, { percent: 1 }))).toMatchObject({
      code: 'ERR_FLEET_VERSION',
    });
    await expect(registry.rollout('versions', a.version, { percent: 101 })).rejects.toMatchObject({
      code: 'ERR_PLUGIN_INVALID_OPTION',
    });
  });

  it('a stale expected revision rejects ERR_FLEET_CONFLICT and writes nothing', async () => {
    await initRegistry({ db: cluster.get().url() });
    await using registry = await open();
    const a = await registry.publish(bundle('cas-a'), { name: 'cas', stable: true, expectRevision: 0 });
    expect(a.deployment?.revision).toBe(1);
    const error = await caught(registry.publish(bundle('cas-b'), { name: 'cas', stable: true, expectRevision: 0 }));
    expect(error).toMatchObject({ code: 'ERR_FLEET_CONFLICT', currentRevision: 1 });
    expect((await registry.history('cas')).map((d) => d.revision)).toEqual([1]);
  });

  it('two publishers racing for the same revision: one wins, the other rejects ERR_FLEET_CONFLICT', async () => {
    await initRegistry({ db: cluster.get().url() });
    await using first = await open();
    await using second = await open();
    await first.publish(bundle('race-0'), { name: 'race', stable: true });
    const [x, y] = await Promise.all(
      ['race-x', 'race-y'].map((label) => first.publish(bundle(label), { name: 'race' })),
    );

    // Both read revision 1, then both try to insert revision 2 while a lock holds the table: a real race.
    const results = await asAdmin(cluster.get(), async (admin) => {
      await admin.query('BEGIN');
      await admin.query('LOCK TABLE isoplug.deployment IN SHARE MODE');
      const racing = [
        first.deploy('race', { stable: x!.sha256 }).then(
          (d) => ({ ok: d.revision }),
          (e: unknown) => ({ error: e }),
        ),
        second.deploy('race', { stable: y!.sha256 }).then(
          (d) => ({ ok: d.revision }),
          (e: unknown) => ({ error: e }),
        ),
      ];
      // Handshake: both inserts are waiting on the lock (pg_locks is live, unlike pg_stat_activity in a transaction).
      for (;;) {
        const { rows } = await admin.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = 'isoplug.deployment'::regclass`,
        );
        if (rows[0]!.n === 2) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await admin.query('COMMIT');
      return Promise.all(racing);
    });
    const won = results.filter((r) => 'ok' in r);
    const lost = results.filter((r) => 'error' in r);
    expect(won).toEqual([{ ok: 2 }]);
    expect(lost).toHaveLength(1);
    expect((lost[0] as { error: unknown }).error).toMatchObject({ code: 'ERR_FLEET_CONFLICT', currentRevision: 2 });
    expect((await first.history('race')).map((d) => d.revision)).toEqual([2, 1]);
  });

  it('the database refuses bytes that do not match their hash, and revisions out of sequence', async () => {
    await initRegistry({ db: cluster.get().url() });
    await using registry = await open();
    const a = await registry.publish(bundle('seq'), { name: 'seq', stable: true });
    await asAdmin(cluster.get(), async (admin) => {
      expect(
        await caught(
          admin.query(`INSERT INTO isoplug.bundle (sha256, bytes, size, name) VALUES ($1, $2, 3, 'seq')`, [
            'a'.repeat(64),
            Buffer.from('abc'),
          ]),
        ),
      ).toMatchObject({ code: '23514' });
      // Revision 3 before 2, or 1 again: refused by the database itself.
      for (const revision of [3, 1])
        expect(
          await caught(
            admin.query(`INSERT INTO isoplug.deployment (name, revision, stable) VALUES ('seq', $1, $2)`, [
              revision,
              a.sha256,
            ]),
          ),
        ).toMatchObject({ code: '23505' });
    });
  });

  it('a signed publish stores the signature under the key id', async () => {
    await initRegistry({ db: cluster.get().url() });
    await using registry = await open();
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const published = await registry.publish(bundle('signed'), { name: 'signed', sign: privateKey });
    expect(published.signedBy).toBe(keyId(publicKey));
    const rows = await asAdmin(cluster.get(), async (admin) => {
      const { rows } = await admin.query<{ key_id: string }>('SELECT key_id FROM isoplug.signature WHERE sha256 = $1', [
        published.sha256,
      ]);
      return rows;
    });
    expect(rows).toEqual([{ key_id: keyId(publicKey) }]);
    const { privateKey: rsa } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    await expect(registry.publish(bundle('x'), { name: 'signed', sign: rsa })).rejects.toMatchObject({
      code: 'ERR_PLUGIN_INVALID_OPTION',
    });
  });

  describe('roles', () => {
    it('a host-role connection cannot publish, store a bundle or change a deployment', async () => {
      await initRegistry({ db: cluster.get().url() });
      await using admin = await open();
      const a = await admin.publish(bundle('roles-a'), { name: 'roles', stable: true });
      const hostUrl = await loginRole(cluster.get(), 'host_cannot_publish', 'isoplug_host');
      await using host = await open('isoplug', hostUrl);
      // Reading is allowed.
      expect((await host.latest('roles'))?.revision).toBe(1);
      expect(await caught(host.publish(bundle('roles-evil'), { name: 'roles', stable: true }))).toMatchObject({
        code: 'ERR_FLEET_PERMISSION',
      });
      expect(await caught(host.deploy('roles', { stable: a.sha256 }))).toMatchObject({
        code: 'ERR_FLEET_PERMISSION',
      });
      await asAdmin(cluster.get(), async (client) => {
        await client.query('SET ROLE host_cannot_publish');
        for (const sql of [
          `UPDATE isoplug.deployment SET stable = stable`,
          `DELETE FROM isoplug.deployment`,
          `UPDATE isoplug.bundle SET bytes = bytes`,
        ])
          expect(await caught(client.query(sql))).toMatchObject({ code: '42501' });
      });
      expect((await admin.history('roles')).map((d) => d.revision)).toEqual([1]);
    });

    it('a publisher can publish and read hosts, and cannot rewrite history or host rows', async () => {
      await initRegistry({ db: cluster.get().url() });
      const url = await loginRole(cluster.get(), 'ci_publisher', 'isoplug_publisher');
      await using publisher = await open('isoplug', url);
      const published = await publisher.publish(bundle('pub'), { name: 'pub', stable: true });
      expect(published.deployment).toMatchObject({ revision: 1, createdBy: 'ci_publisher' });
      expect(await publisher.hosts('pub')).toEqual([]);
      await asAdmin(cluster.get(), async (client) => {
        await client.query('SET ROLE ci_publisher');
        for (const sql of [
          `UPDATE isoplug.deployment SET stable = stable`,
          `DELETE FROM isoplug.deployment`,
          `INSERT INTO isoplug.host (host_id, name, state, poll_ms, started_at) VALUES ('h', 'pub', 'ok', 1000, now())`,
        ])
          expect(await caught(client.query(sql))).toMatchObject({ code: '42501' });
      });
    });

    it('a host role writes its own status rows only (row-level security on the owner)', async () => {
      await initRegistry({ db: cluster.get().url() });
      await loginRole(cluster.get(), 'pod_a', 'isoplug_host');
      await loginRole(cluster.get(), 'pod_b', 'isoplug_host');
      const upsert = `INSERT INTO isoplug.host (host_id, name, state, poll_ms, started_at) VALUES ($1, 'rls', 'ok', 1000, now())
        ON CONFLICT (host_id, name) DO UPDATE SET state = EXCLUDED.state, last_seen = now()`;
      await asAdmin(cluster.get(), async (client) => {
        await client.query('SET ROLE pod_a');
        await client.query(upsert, ['a-1']);
        await client.query(upsert, ['a-1']);
        // Claiming another owner's row is refused.
        expect(
          await caught(
            client.query(`INSERT INTO isoplug.host (host_id, name, state, poll_ms, started_at, owner)
            VALUES ('a-2', 'rls', 'ok', 1000, now(), 'pod_b')`),
          ),
        ).toMatchObject({ code: '42501' });
        await client.query('RESET ROLE');
        await client.query('SET ROLE pod_b');
        expect(await caught(client.query(upsert, ['a-1']))).toMatchObject({ code: '42501' });
        const { rowCount } = await client.query(`UPDATE isoplug.host SET state = 'failed' WHERE host_id = 'a-1'`);
        expect(rowCount).toBe(0);
        const { rowCount: deleted } = await client.query(`DELETE FROM isoplug.host WHERE host_id = 'a-1'`);
        expect(deleted).toBe(0);
        // Every host may read every row (the status of the fleet is no secret among its hosts).
        const { rows } = await client.query<{ host_id: string; owner: string }>(
          `SELECT host_id, owner FROM isoplug.host WHERE name = 'rls'`,
        );
        expect(rows).toEqual([{ host_id: 'a-1', owner: 'pod_a' }]);
      });
    });
  });
});
