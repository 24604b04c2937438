// Part 7 — fleet: how fast 50 followers converge after a publish, and what a publish costs the database.
//
// A real scratch PostgreSQL (scripts/pg-cluster.mjs), the registry initialised in it, and 50
// DeploymentFollowers in 5 child processes (10 each: 2 cores cannot run 50 processes fairly), each
// follower a host of its own: its own session (LISTEN), its own bundle cache, its own status row, its own
// hot swap. Rounds of two kinds alternate, the order rotated:
//   - publish: a new ~100 KB bundle is published straight to stable (one transaction: bytes, revision,
//     pg_notify). Convergence of a host = from the moment publish() was called to the moment its `ok`
//     status row for that revision was written; the `applied` event (its hot swap serving the version) is
//     shown too. The publish is timed from the call, so its own transaction counts against the fleet.
//   - direct (the peer): every follower's hot swap is told over IPC to swap to a file of the same size, no
//     database at all; the same 50 worker boots on the same 2 cores. What is left between the two is the
//     fleet's own cost: the notification, the read, the fetch and hash, the cache write, the report.
// Database load per publish: the queries the followers sent and the notifications they received
// (counted in the followers' processes), and the sessions open (pg_stat_activity).
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Cluster, findPgBin } from '../../scripts/pg-cluster.mjs';
import { makeFigure } from '../lib/results.mjs';
import { median, percentile, sleep } from '../lib/stats.mjs';
import { formatTable, num, ratio } from '../lib/table.mjs';

const CHILD = fileURLToPath(new URL('../children/fleet-child.mjs', import.meta.url));
const CHILDREN = 5;
const PER_CHILD = 10;
const HOSTS = CHILDREN * PER_CHILD;
/** Rounds of each kind. */
const ROUNDS = Number(process.env.ISOPLUG_BENCH_FLEET_ROUNDS ?? 10);
/** A round that has not converged by then is a failure of the run. */
const ROUND_TIMEOUT_MS = 60_000;
/** Quiet time after a round, so the next one starts on idle hosts (their status rows written, old workers ended). */
const SETTLE_MS = 500;
/** Polls are the safety net; the bench measures publishes, so they stay out of its window. */
const POLL_MS = 600_000;
/**
 * How long a version may take to start. 50 worker boots at once on 2 cores shared with other work can pass
 * the default 10 s; a version refused for that would measure the machine, not the fleet.
 */
const READY_TIMEOUT_MS = 60_000;
/** Bundle size: real handler bundles are 100 KB to a few MB. */
const BUNDLE_BYTES = 100 * 1024;
const NAME = 'bench';

/** A plugin of about BUNDLE_BYTES whose `version()` answers `label`. */
function bundle(label) {
  const head = `export function version() { return ${JSON.stringify(label)}; }\n`;
  const line = `// ${'x'.repeat(76)}\n`;
  return Buffer.from(head + line.repeat(Math.ceil((BUNDLE_BYTES - head.length) / line.length)));
}

/** A child process and its messages, awaited by type. */
class Child {
  constructor(index, env) {
    this.index = index;
    this.waiters = [];
    this.rejected = [];
    this.proc = fork(CHILD, [String(index), String(PER_CHILD)], {
      env,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.proc.on('message', (message) => {
      if (message.type === 'rejected') this.rejected.push(message);
      const at = this.waiters.findIndex((w) => w.type === message.type);
      if (at >= 0) this.waiters.splice(at, 1)[0].resolve(message);
      else if (message.type === 'result' && message.fatal) this.fatal = message.fatal;
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', resolve));
    this.exited.then((code) => {
      for (const w of this.waiters.splice(0))
        w.reject(new Error(`fleet child ${index} exited (${code}): ${this.fatal ?? 'no reason given'}`));
    });
  }
  next(type) {
    return new Promise((resolve, reject) => {
      if (this.proc.exitCode !== null) return reject(new Error(`fleet child ${this.index} has exited`));
      this.waiters.push({ type, resolve, reject });
    });
  }
  ask(message, reply) {
    const answer = this.next(reply);
    this.proc.send(message);
    return answer;
  }
  kill() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

export async function runFleet({ iso: _iso, progress }) {
  const found = findPgBin();
  if ('missing' in found) return { figures: [], tables: [], notes: [`skipped: ${found.missing}`] };
  const fleet = await import('../../dist/fleet.js');
  progress('fleet: starting a scratch PostgreSQL…', { force: true });
  const cluster = await Cluster.start({ maxConnections: HOSTS + 50 });
  const scratch = mkdtempSync(join(tmpdir(), 'isoplug-bench-fleet-'));
  const children = [];
  let registry;
  const admin = new pg.Client({ connectionString: cluster.url() });
  admin.on('error', () => {});
  try {
    await fleet.initRegistry({ db: cluster.url() });
    await admin.connect();
    await admin.query('CREATE ROLE bench_host LOGIN IN ROLE isoplug_host');
    await admin.query('CREATE ROLE bench_publisher LOGIN IN ROLE isoplug_publisher');
    registry = await fleet.openRegistry({ db: cluster.url('bench_publisher') });
    await registry.publish(bundle('v0'), { name: NAME, stable: true });

    progress(`fleet: booting ${HOSTS} followers in ${CHILDREN} processes…`, { force: true });
    const env = {
      ...process.env,
      ISOPLUG_BENCH_FLEET: JSON.stringify({
        db: cluster.url('bench_host'),
        name: NAME,
        cacheRoot: join(scratch, 'caches'),
        pollMs: POLL_MS,
        readyTimeoutMs: READY_TIMEOUT_MS,
      }),
    };
    for (let i = 0; i < CHILDREN; i++) children.push(new Child(i, env));
    await Promise.all(children.map((c) => c.next('ready')));
    const take = async () => {
      const taken = await Promise.all(children.map((c) => c.ask({ type: 'take' }, 'taken')));
      return {
        applied: taken.flatMap((t) => t.applied),
        reported: taken.flatMap((t) => t.reported),
        notified: taken.flatMap((t) => t.notified),
        queries: taken.reduce((sum, t) => sum + t.counts.queries, 0),
        notifications: taken.reduce((sum, t) => sum + t.counts.notifications, 0),
      };
    };
    const { rows: sessions } = await admin.query(
      `SELECT application_name, count(*)::int AS n FROM pg_stat_activity
        WHERE datname IS NOT NULL GROUP BY 1 ORDER BY 1`,
    );
    await take();

    const publishes = []; // per round: { revision, publishMs, reportedMs[], appliedMs[], queries, notifications }
    const directs = []; // per round: { swappedMs[] }
    const problems = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? ['publish', 'direct'] : ['direct', 'publish'];
      for (const kind of order) {
        progress(`fleet: round ${round + 1}/${ROUNDS}, ${kind}…`, { force: true });
        if (kind === 'publish') {
          const before = await take();
          const bytes = bundle(`p${round}`);
          const t0 = performance.timeOrigin + performance.now();
          const { deployment } = await registry.publish(bytes, { name: NAME, stable: true });
          const publishMs = performance.timeOrigin + performance.now() - t0;
          const revision = deployment.revision;
          const seen = new Map();
          const appliedAt = new Map();
          const notifiedMs = [];
          const deadline = performance.now() + ROUND_TIMEOUT_MS;
          let after = before;
          while (seen.size < HOSTS && performance.now() < deadline) {
            await sleep(50);
            after = await take();
            for (const r of after.reported)
              if (r.revision === revision && !seen.has(r.host)) seen.set(r.host, r.at - t0);
            for (const a of after.applied) if (a.revision === revision) appliedAt.set(a.host, a.at - t0);
            for (const at of after.notified) notifiedMs.push(at - t0);
          }
          if (seen.size < HOSTS) problems.push(`r${revision}: ${HOSTS - seen.size} host(s) did not converge`);
          await sleep(SETTLE_MS);
          after = await take();
          for (const a of after.applied) if (a.revision === revision) appliedAt.set(a.host, a.at - t0);
          publishes.push({
            revision,
            publishMs,
            reportedMs: [...seen.values()],
            appliedMs: [...appliedAt.values()],
            notifiedMs,
            queries: after.queries - before.queries,
            notifications: after.notifications - before.notifications,
          });
        } else {
          const file = join(scratch, `direct-${round}.mjs`);
          writeFileSync(file, bundle(`d${round}`));
          const t0 = performance.timeOrigin + performance.now();
          const answers = await Promise.all(
            children.map((c) => c.ask({ type: 'swap', file, label: `direct-${round}` }, 'swapped')),
          );
          const swapped = answers.flatMap((a) => a.swapped);
          for (const s of swapped) if (s.error) problems.push(`direct round ${round}: ${s.host} ${s.error}`);
          directs.push({ swappedMs: swapped.filter((s) => !s.error).map((s) => s.at - t0) });
          await sleep(SETTLE_MS);
        }
      }
    }
    const rejected = children.flatMap((c) => c.rejected);
    for (const r of rejected)
      problems.push(`${r.host} refused r${r.revision}: ${r.error?.code} ${String(r.error?.message).slice(0, 300)}`);

    progress('fleet: closing the followers…', { force: true });
    await Promise.all(children.map((c) => c.ask({ type: 'close' }, 'result')));
    await Promise.all(children.map((c) => c.exited));

    // Figures.
    const conv = publishes.flatMap((p) => p.reportedMs);
    const appl = publishes.flatMap((p) => p.appliedMs);
    const noti = publishes.flatMap((p) => p.notifiedMs);
    const dir = directs.flatMap((d) => d.swappedMs);
    const lastHost = publishes.map((p) => Math.max(...p.reportedMs));
    const lastDirect = directs.map((d) => Math.max(...d.swappedMs));
    const c50 = percentile(conv, 50);
    const c99 = percentile(conv, 99);
    const d50 = percentile(dir, 50);
    const d99 = percentile(dir, 99);
    const queriesPer = median(publishes.map((p) => p.queries));
    const notificationsPer = median(publishes.map((p) => p.notifications));
    const hostSessions = sessions.find((s) => s.application_name === 'isoplug host')?.n ?? 0;
    const publishMs = median(publishes.map((p) => p.publishMs));

    const tables = [
      formatTable(
        ['after a publish, 50 hosts', 'p50', 'p99', 'max', 'direct swap p50', 'direct p99', 'ratio p50', 'ratio p99'],
        [
          [
            'host status ok (the registry sees it)',
            `${num(c50)} ms`,
            `${num(c99)} ms`,
            `${num(Math.max(...conv))} ms`,
            `${num(d50)} ms`,
            `${num(d99)} ms`,
            ratio(c50 / d50),
            ratio(c99 / d99),
          ],
          [
            'hot swap serving it (applied event)',
            `${num(percentile(appl, 50))} ms`,
            `${num(percentile(appl, 99))} ms`,
            `${num(Math.max(...appl))} ms`,
            '',
            '',
            ratio(percentile(appl, 50) / d50),
            ratio(percentile(appl, 99) / d99),
          ],
          [
            'notification reached its session',
            `${num(percentile(noti, 50))} ms`,
            `${num(percentile(noti, 99))} ms`,
            `${num(Math.max(...noti))} ms`,
            '',
            '',
            '',
            '',
          ],
          [
            'last of the 50 hosts (median over rounds)',
            `${num(median(lastHost))} ms`,
            '',
            '',
            `${num(median(lastDirect))} ms`,
            '',
            ratio(median(lastHost) / median(lastDirect)),
            '',
          ],
        ],
        {
          title: `FLEET — ${HOSTS} followers in ${CHILDREN} processes, ${ROUNDS} publishes of a ${BUNDLE_BYTES / 1024} KB bundle vs ${ROUNDS} direct swaps (IPC, no database)`,
        },
      ),
      formatTable(
        ['database load', 'value'],
        [
          ['publish() (one transaction: bytes, revision, notify)', `${num(publishMs)} ms (median)`],
          ['notifications received per publish (all hosts)', num(notificationsPer)],
          [
            'queries sent by the hosts per publish (all hosts)',
            `${num(queriesPer)} (${num(queriesPer / HOSTS)} per host)`,
          ],
          [
            'sessions open while following',
            sessions.map((s) => `${s.application_name || '(other)'}: ${s.n}`).join(', '),
          ],
        ],
      ),
    ];
    const notes = [
      `convergence = publish() called → the host's ok status row for the revision written; ${conv.length} samples (${publishes.length} publishes × ${HOSTS} hosts)`,
      `readyTimeoutMs ${READY_TIMEOUT_MS} (default 10,000): 50 worker boots at once on a shared 2-core machine can take longer`,
      `each host's queries per publish: read the latest revision, fetch the bundle, report 'applying', report 'ok'; pollMs ${POLL_MS} keeps the safety-net polls out of the window (each poll is 2 queries per host)`,
      'the direct peer swaps the same 50 hot swaps from a file over IPC: the cost of 50 worker boots on this machine, without the database',
      ...problems,
    ];
    const figures = [
      makeFigure({
        part: 'fleet',
        key: 'fleet.converge.p50',
        name: `convergence after a publish, ${HOSTS} hosts, p50`,
        value: c50,
        unit: 'ms',
        better: 'lower',
        peers: { directSwap: d50 },
        baseline: 'directSwap',
        note: notes[0],
      }),
      makeFigure({
        part: 'fleet',
        key: 'fleet.converge.p99',
        name: `convergence after a publish, ${HOSTS} hosts, p99`,
        value: c99,
        unit: 'ms',
        better: 'lower',
        peers: { directSwap: d99 },
        baseline: 'directSwap',
      }),
      makeFigure({
        part: 'fleet',
        key: 'fleet.notified.p99',
        name: `publish() called → notification at each of ${HOSTS} sessions, p99`,
        value: percentile(noti, 99),
        unit: 'ms',
        better: 'lower',
        note: `p50 ${num(percentile(noti, 50))} ms; ${noti.length} notifications`,
      }),
      makeFigure({
        part: 'fleet',
        key: 'fleet.queries.per.publish',
        name: `queries per publish, ${HOSTS} hosts`,
        value: queriesPer,
        unit: 'queries',
        better: 'lower',
        note: `${num(notificationsPer)} notifications received per publish; ${hostSessions} host sessions open`,
      }),
      makeFigure({
        part: 'fleet',
        key: 'fleet.failures',
        name: 'hosts that did not converge or refused a revision',
        value: problems.length,
        unit: 'hosts',
        better: 'lower',
        bar: { op: '<=', limit: 0 },
      }),
    ];
    return { figures, tables, notes };
  } finally {
    for (const c of children) c.kill();
    await Promise.all(children.map((c) => c.exited));
    await registry?.close().catch(() => {});
    await admin.end().catch(() => {});
    await cluster.destroy();
    rmSync(scratch, { recursive: true, force: true });
  }
}
