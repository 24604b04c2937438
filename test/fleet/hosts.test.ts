// A fleet on loopback: three host processes following one deployment in a real PostgreSQL, each with
// its own database role, and the `isoplug` command as the publisher. One story, step by step: publish
// and converge, a host that cannot start a version, rollback, bytes that do not match, the database
// stopped and started, a host's connection killed, stale hints, and two publishers racing.
// The hosts and the CLI run the build in dist/: `npm run build` first (`npm test` does).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asAdmin, bundle, loginRole, useCluster } from './helpers.js';
import { pgMissing } from './pg.js';
import { HostProcess, runCli, type CliRun } from './processes.js';

const IDS = ['h1', 'h2', 'h3'];

describe.skipIf(pgMissing !== undefined)(
  `a fleet of host processes${pgMissing ? ` (skipped: ${pgMissing})` : ''}`,
  () => {
    const cluster = useCluster();
    let dir: string;
    let hosts: HostProcess[] = [];
    let publisher: Record<string, string>;
    /** The bundles published so far, by label: their version (12 hex digits). */
    const versions = new Map<string, string>();

    const cli = (...args: string[]): Promise<CliRun> => runCli(args, publisher);
    const versionsServed = () => Promise.all(hosts.map((host) => host.version()));

    /** Publishes the tiny plugin `label` (built from TypeScript when `build`); returns the CLI's run. */
    async function publish(label: string, flags: string[], options: { failOn?: string[]; build?: boolean } = {}) {
      let file: string;
      if (options.build) {
        file = join(dir, `${label}.ts`);
        writeFileSync(file, `export function version(): string {\n  return ${JSON.stringify(label)};\n}\n`);
      } else {
        file = join(dir, `${label}.mjs`);
        writeFileSync(file, bundle(label, options.failOn));
      }
      const run = await cli(
        'publish',
        file,
        '--name',
        'svc',
        ...(options.build ? [] : ['--prebuilt']),
        '--json',
        ...flags,
      );
      const result = run.stdout ? (JSON.parse(run.stdout.split('\n')[0]!) as { version?: string }) : {};
      if (result.version) versions.set(label, result.version);
      return run;
    }

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'isoplug-fleet-'));
      const init = await runCli(['registry', 'init', '--db', cluster.get().url()]);
      expect(init).toMatchObject({ status: 0 });
      expect(init.stdout).toContain('roles: isoplug_publisher (publish), isoplug_host (follow)');
      publisher = { ISOPLUG_DATABASE_URL: await loginRole(cluster.get(), 'ci', 'isoplug_publisher') };
      expect(await publish('v1', ['--stable'], { build: true })).toMatchObject({ status: 0 });
      hosts = await Promise.all(
        IDS.map(async (id) => {
          const db = await loginRole(cluster.get(), `pod_${id}`, 'isoplug_host');
          return new HostProcess(id, {
            db,
            name: 'svc',
            cacheDir: join(dir, `cache-${id}`),
            pollMs: 60_000,
            reconnectBackoffMs: 20,
            reconnectMaxBackoffMs: 200,
          });
        }),
      );
      await Promise.all(hosts.map((host) => host.next((m) => m.type === 'ready' || m.type === 'boot-failed')));
      expect(hosts.map((host) => host.messages[0]?.type)).toEqual(['ready', 'ready', 'ready']);
    }, 120_000);

    afterAll(async () => {
      for (const host of hosts) host.kill();
      await Promise.all(hosts.map((host) => host.exited));
      rmSync(dir, { recursive: true, force: true });
    });

    it('publish --stable --wait: every host converges on the new version', async () => {
      expect(await versionsServed()).toEqual(['v1', 'v1', 'v1']);
      const run = await publish('v2', ['--stable', '--wait', '--timeout', '60']);
      expect(run.status).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({
        deployment: { revision: 2 },
        wait: { done: true, converged: IDS, failed: [], pending: [] },
      });
      expect(await versionsServed()).toEqual(['v2', 'v2', 'v2']);
    });

    it('a host that cannot start the new version reports it and serves on; the others converge', async () => {
      const run = await publish('v3', ['--stable', '--wait'], { failOn: ['h3'] });
      expect(run.status).toBe(1);
      expect(JSON.parse(run.stdout)).toMatchObject({
        deployment: { revision: 3 },
        wait: { converged: ['h1', 'h2'], failed: [{ host: 'h3', error: { revision: 3, code: 'ERR_SWAP_FAILED' } }] },
      });
      expect(await versionsServed()).toEqual(['v3', 'v3', 'v2']);
      const status = await cli('status', 'svc');
      expect(status.status).toBe(0);
      expect(status.stdout).toMatch(/^h3\s+failed\s+r2\s+\S+\s+-\s+.*r3 ERR_SWAP_FAILED/m);
      expect(status.stdout).toContain('3 hosts: 2 ok, 1 failed');
    });

    it('rollback: a new revision back to the previous version, and every host converges', async () => {
      const run = await cli('rollback', 'svc', '--wait');
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/^svc r4 {2}stable [0-9a-f]{12} .* by ci$/m);
      expect(run.stdout).toContain('converged: 3/3 hosts on r4');
      expect(await versionsServed()).toEqual(['v2', 'v2', 'v2']);
      const history = await cli('history', 'svc');
      expect(
        history.stdout
          .split('\n')
          .filter(Boolean)
          .map((line) => line.split(' ')[0]),
      ).toEqual(['r4', 'r3', 'r2', 'r1']);
    });

    it('bytes that do not match their hash: every host refuses them and serves on', async () => {
      expect(await publish('v5', [])).toMatchObject({ status: 0 });
      await asAdmin(cluster.get(), async (admin) => {
        await admin.query('ALTER TABLE isoplug.bundle DROP CONSTRAINT bundle_hash');
        await admin.query(`UPDATE isoplug.bundle SET bytes = $2 WHERE sha256 LIKE $1 || '%'`, [
          versions.get('v5'),
          bundle('ev'),
        ]);
      });
      const run = await cli('rollback', 'svc', '--to', versions.get('v5')!, '--wait', '--json');
      expect(run.status).toBe(1);
      expect(JSON.parse(run.stdout)).toMatchObject({
        deployment: { revision: 5 },
        wait: {
          converged: [],
          pending: [],
          failed: IDS.map((host) => ({ host, error: { code: 'ERR_FLEET_INTEGRITY' } })),
        },
      });
      expect(await versionsServed()).toEqual(['v2', 'v2', 'v2']);
      await asAdmin(cluster.get(), (admin) =>
        admin.query(
          `ALTER TABLE isoplug.bundle ADD CONSTRAINT bundle_hash CHECK (encode(sha256(bytes), 'hex') = sha256) NOT VALID`,
        ),
      );
    });

    it('the database stopped and started: hosts serve on, reconnect, and converge on what comes next', async () => {
      const marks = hosts.map((host) => host.mark());
      await cluster.get().halt();
      await Promise.all(hosts.map((host, i) => host.next((m) => m.type === 'disconnected', marks[i])));
      expect(await versionsServed()).toEqual(['v2', 'v2', 'v2']);
      await cluster.get().resume();
      // Published while the hosts may still be reconnecting: each gets it by notification or by reading after reconnect.
      const run = await publish('v6', ['--stable', '--wait']);
      expect(run.status).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({
        deployment: { revision: 6 },
        wait: { done: true, converged: IDS },
      });
      expect(await versionsServed()).toEqual(['v6', 'v6', 'v6']);
    });

    it("a host's connection killed: --wait reports it pending at its deadline; it catches up once back", async () => {
      const h2 = hosts[1]!;
      const mark = h2.mark();
      await asAdmin(cluster.get(), async (admin) => {
        // Kept out until after the publish below, so no notification can reach it.
        await admin.query('ALTER ROLE pod_h2 NOLOGIN');
        await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pod_h2'`);
      });
      await h2.next((m) => m.type === 'disconnected', mark);
      const run = await publish('v7', ['--stable', '--wait', '--timeout', '1']);
      expect(run.status).toBe(3);
      expect(JSON.parse(run.stdout)).toMatchObject({
        deployment: { revision: 7 },
        wait: { done: false, converged: ['h1', 'h3'], pending: ['h2'] },
      });
      expect(await versionsServed()).toEqual(['v7', 'v6', 'v7']);
      await asAdmin(cluster.get(), (admin) => admin.query('ALTER ROLE pod_h2 LOGIN'));
      await h2.applied(7);
      expect(await h2.version()).toBe('v7');
    });

    it('old and malformed hints change nothing; every host applied revisions in increasing order', async () => {
      await asAdmin(cluster.get(), async (admin) => {
        for (const payload of ['{"name":"svc","revision":1}', '{"name":"svc","revision":3}', 'not json'])
          await admin.query('SELECT pg_notify($1, $2)', ['isoplug', payload]);
      });
      const run = await publish('v8', ['--stable', '--wait']);
      expect(run.status).toBe(0);
      for (const host of hosts) {
        const log = host.appliedLog;
        expect(log.at(-1)).toBe(8);
        expect(log, host.id).toEqual([...new Set(log)].sort((a, b) => a - b));
      }
      expect(await versionsServed()).toEqual(['v8', 'v8', 'v8']);
    });

    it('two publishers racing for the next revision: one wins, the other fails ERR_FLEET_CONFLICT', async () => {
      const results = await asAdmin(cluster.get(), async (admin) => {
        await admin.query('BEGIN');
        await admin.query('LOCK TABLE isoplug.deployment IN SHARE MODE');
        const racing = [publish('v9a', ['--stable']), publish('v9b', ['--stable'])];
        // Both have read revision 8 and wait to insert revision 9.
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
      expect(results.map((r) => r.status).sort()).toEqual([0, 1]);
      const loser = results.find((r) => r.status === 1)!;
      expect(loser.stderr).toMatch(/ERR_FLEET_CONFLICT/);
      const winner = JSON.parse(results.find((r) => r.status === 0)!.stdout) as { version: string };
      await Promise.all(hosts.map((host) => host.applied(9)));
      const served = await versionsServed();
      expect(new Set(served).size).toBe(1);
      expect(versions.get(served[0]!)).toBe(winner.version);
      const history = await cli('history', 'svc', '--json');
      expect((JSON.parse(history.stdout) as { revision: number }[]).map((d) => d.revision)).toEqual([
        9, 8, 7, 6, 5, 4, 3, 2, 1,
      ]);
    });

    it('rollout of a canary: every host serves it beside the stable one; promote makes it stable everywhere', async () => {
      expect(await publish('v10', [])).toMatchObject({ status: 0 });
      const rollout = await cli('rollout', 'svc', versions.get('v10')!, '--percent', '100%', '--wait', '--json');
      expect(rollout.status).toBe(0);
      expect(JSON.parse(rollout.stdout)).toMatchObject({
        deployment: { revision: 10, percent: 100, canary: expect.stringMatching(/^[0-9a-f]{64}$/) },
        wait: { done: true, converged: IDS, failed: [] },
      });
      expect(await versionsServed()).toEqual(['v10', 'v10', 'v10']);
      const promote = await cli('promote', 'svc', '--wait');
      expect(promote.status).toBe(0);
      expect(promote.stdout).toContain('converged: 3/3 hosts on r11');
      expect(await versionsServed()).toEqual(['v10', 'v10', 'v10']);
    });

    it('status: which host runs what, and who is stale; --wait does not wait for stale hosts', async () => {
      // A host gone without a word: its row stays, last seen long ago.
      await asAdmin(cluster.get(), (admin) =>
        admin.query(`INSERT INTO isoplug.host (host_id, name, revision, state, poll_ms, started_at, last_seen)
        VALUES ('h0', 'svc', 1, 'ok', 1000, now() - interval '1 hour', now() - interval '10 minutes')`),
      );
      const run = await publish('v12', ['--stable', '--wait']);
      expect(run.status).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ wait: { done: true, converged: IDS, stale: ['h0'] } });
      const status = await cli('status', 'svc', '--json');
      const parsed = JSON.parse(status.stdout) as {
        deployment: { revision: number };
        hosts: { host: string; shown: string; revision: number; owner: string; version: string }[];
      };
      expect(parsed.deployment.revision).toBe(12);
      expect(parsed.hosts.map((h) => [h.host, h.shown, h.revision, h.owner])).toEqual([
        ['h0', 'stale', 1, 'postgres'],
        ['h1', 'ok', 12, 'pod_h1'],
        ['h2', 'ok', 12, 'pod_h2'],
        ['h3', 'ok', 12, 'pod_h3'],
      ]);
      expect(new Set(parsed.hosts.slice(1).map((h) => h.version))).toEqual(new Set([versions.get('v12')]));
      const text = await cli('status', 'svc');
      expect(text.stdout).toMatch(/^h0\s+stale\s+r1\s/m);
      expect(text.stdout).toContain('4 hosts: 1 stale, 3 ok');
      await Promise.all(hosts.map((host) => host.close()));
      expect(await Promise.all(hosts.map((host) => host.exited))).toEqual([0, 0, 0]);
    });
  },
);
