// `npm run demo:fleet`: a fleet of 4 HTTP hosts following one deployment in a real PostgreSQL, under load
// the whole time, while a publisher rolls a new version out to 25% of users, promotes it, and rolls back.
//
// It starts a scratch PostgreSQL (scripts/pg-cluster.mjs; installs the server with apt when missing),
// creates the registry and two login roles (a publisher and a host), publishes v1, starts 4 host
// processes (host.mjs: node:http, the handler calls the followed plugin with the user as sticky key) and
// loads all 4 with autocannon. Then, step by step: v2 to 25% of users, promote, roll back. For each step
// it prints when each host applied the revision, the requests each host served per version, second by
// second, and at the 25% step which users are on v2 on every host. At the end: requests and failures.
// Exit status 0 only with 0 failed requests and every host converged after each step. The cluster, the
// hosts and the load end in every case (an error, Ctrl-C).
import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { initRegistry, openRegistry } from 'isoplug/fleet';
import { Cluster, findPgBin } from '../../scripts/pg-cluster.mjs';

const HOST = fileURLToPath(new URL('./host.mjs', import.meta.url));
const V1 = readFileSync(new URL('./versions/v1.mjs', import.meta.url));
const V2 = readFileSync(new URL('./versions/v2.mjs', import.meta.url));
const HOSTS = ['web-1', 'web-2', 'web-3', 'web-4'];
const NAME = 'greeter';
/** How long the load runs on each state before the next step (ISOPLUG_DEMO_HOLD_MS). */
const HOLD_MS = Number(process.env.ISOPLUG_DEMO_HOLD_MS ?? 3000);
/** A step whose hosts have not all applied it by then has failed. */
const STEP_TIMEOUT_MS = 30_000;
/** Users in the load, and users checked one by one at the 25% step. */
const USERS = 1000;
const PROBE_USERS = 400;
const started = Date.now();
const clock = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s`;
const say = (text) => console.log(`${clock()}  ${text}`);

/** A host process: its messages, awaited by content. */
class Host {
  constructor(id, env) {
    this.id = id;
    this.messages = [];
    this.waiters = new Set();
    this.served = {};
    this.failed = 0;
    this.proc = fork(HOST, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc.on('message', (message) => {
      this.messages.push(message);
      if (message.type === 'tick') {
        this.last = message.served;
        for (const [version, n] of Object.entries(message.served))
          this.served[version] = (this.served[version] ?? 0) + n;
        this.failed += message.failed;
      }
      for (const waiter of this.waiters) if (waiter.match(message)) waiter.resolve(message);
    });
    this.exited = new Promise((resolve) => this.proc.once('exit', resolve));
  }
  /** The first message (received already, or to come) that `match` accepts; rejects past `timeoutMs`. */
  next(match, timeoutMs) {
    const found = this.messages.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = { match, resolve: (m) => done(() => resolve(m)) };
      const timer = setTimeout(
        () => done(() => reject(new Error(`${this.id}: no answer within ${timeoutMs} ms`))),
        timeoutMs,
      );
      const gone = () => done(() => reject(new Error(`${this.id} exited`)));
      const done = (settle) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        this.proc.off('exit', gone);
        settle();
      };
      this.waiters.add(waiter);
      this.proc.once('exit', gone);
    });
  }
  async close() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    if (this.proc.connected) this.proc.send({ type: 'close' });
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** GET /?user=<user> on a host: the version that answered. */
function ask(port, user) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `/?user=${encodeURIComponent(user)}` }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? resolve(res.headers['x-version']) : reject(new Error(`HTTP ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

const cleanups = [];
let cleaning;
const cleanup = () =>
  (cleaning ??= (async () => {
    for (const fn of cleanups.reverse())
      await fn().catch((error) => console.error(`cleanup: ${error?.message ?? error}`));
  })());
for (const signal of ['SIGINT', 'SIGTERM'])
  process.once(signal, () => {
    console.error(`\n${signal}: stopping the hosts and the database`);
    void cleanup().finally(() => process.exit(130));
  });

async function main() {
  // 1. A scratch PostgreSQL; the server package is installed when the machine lacks it.
  if ('missing' in findPgBin()) {
    say('PostgreSQL is not installed: installing it (scripts/ensure-postgres.sh)');
    execFileSync('bash', [fileURLToPath(new URL('../../scripts/ensure-postgres.sh', import.meta.url))], {
      stdio: 'inherit',
    });
  }
  const cluster = await Cluster.start();
  cleanups.push(() => cluster.destroy());
  const scratch = mkdtempSync(join(tmpdir(), 'isoplug-demo-fleet-'));
  cleanups.push(async () => rmSync(scratch, { recursive: true, force: true }));
  say(`PostgreSQL on 127.0.0.1:${cluster.port} (a scratch cluster, removed at the end)`);

  // 2. The registry, a publisher role and a host role (as `isoplug registry init` and two CREATE ROLEs).
  await initRegistry({ db: cluster.url() });
  const admin = new pg.Client({ connectionString: cluster.url() });
  await admin.connect();
  await admin.query('CREATE ROLE ci LOGIN IN ROLE isoplug_publisher');
  await admin.query('CREATE ROLE web LOGIN IN ROLE isoplug_host');
  await admin.end();
  const registry = await openRegistry({ db: cluster.url('ci') });
  cleanups.push(() => registry.close());

  // 3. v1 is the stable version; the hosts boot on it.
  const v1 = await registry.publish(V1, { name: NAME, stable: true, message: 'v1' });
  say(`published v1 = ${v1.version}: r${v1.deployment.revision}, stable`);
  const hosts = HOSTS.map(
    (id) =>
      new Host(id, {
        ...process.env,
        DEMO_DB: cluster.url('web'),
        DEMO_HOST: id,
        DEMO_CACHE: join(scratch, id),
      }),
  );
  cleanups.push(() => Promise.all(hosts.map((h) => h.close())));
  const ready = await Promise.all(hosts.map((h) => h.next((m) => m.type === 'ready', STEP_TIMEOUT_MS)));
  const canary = ready.every((m) => m.canary);
  for (const [i, h] of hosts.entries()) h.port = ready[i].port;
  say(`${hosts.length} hosts serving v1 on ports ${hosts.map((h) => h.port).join(', ')}`);

  // 4. Load on every host for the whole run: 4 connections each, users drawn at random.
  const loads = hosts.map((h) => {
    const instance = autocannon({
      url: `http://127.0.0.1:${h.port}`,
      connections: 4,
      duration: 3600,
      timeout: 10,
      requests: [{ setupRequest: (req) => ({ ...req, path: `/?user=u${Math.floor(Math.random() * USERS)}` }) }],
    });
    const done = new Promise((resolve, reject) => {
      instance.once('done', resolve);
      instance.once('error', reject);
    });
    return { host: h, instance, done };
  });
  let stopped = false;
  const stopLoad = async () => {
    if (!stopped) for (const l of loads) l.instance.stop();
    stopped = true;
    return Promise.all(loads.map((l) => l.done));
  };
  cleanups.push(() => stopLoad());
  say(`load: autocannon on every host, 4 connections each, ${USERS} users`);

  // The requests each host served per version, once a second.
  const ticker = setInterval(() => {
    const line = hosts
      .map((h) => {
        const served = h.last ?? {};
        const parts = Object.keys(served)
          .sort()
          .map((v) => `${v} ${String(served[v]).padStart(4)}`);
        return `${h.id} ${parts.join(' ') || '-'}`.padEnd(26);
      })
      .join(' ');
    say(`  ${line}`);
  }, 1000);
  cleanups.push(async () => clearInterval(ticker));
  await new Promise((resolve) => setTimeout(resolve, HOLD_MS));

  // 5. The steps.
  const v2 = await registry.publish(V2, { name: NAME, message: 'v2 (uploaded, not deployed)' });
  say(`uploaded v2 = ${v2.version} (no revision yet: hosts are not told)`);
  const steps = [
    { title: 'rollout v2 to 25%', write: () => registry.rollout(NAME, v2.version, { percent: 25 }) },
    { title: 'promote v2', write: () => registry.promote(NAME) },
    { title: 'roll back to v1', write: () => registry.rollback(NAME) },
  ];
  const report = [];
  for (const step of steps) {
    const t0 = Date.now();
    const deployment = await step.write();
    const revision = deployment.revision;
    say(
      `${step.title}: r${revision} written (stable ${deployment.stable.slice(0, 12)}${deployment.canary ? `, canary ${deployment.canary.slice(0, 12)} at ${deployment.percent}%` : ''})`,
    );
    const outcomes = await Promise.all(
      hosts.map((h) =>
        h
          .next(
            (m) =>
              (m.type === 'applied' && m.revision >= revision) || (m.type === 'rejected' && m.revision === revision),
            STEP_TIMEOUT_MS,
          )
          .then(
            (m) => ({ host: h.id, type: m.type, ms: m.at - t0, code: m.error?.code }),
            (error) => ({ host: h.id, type: 'timeout', code: error.message }),
          ),
      ),
    );
    // The registry's view: every host's status row says so too.
    const convergence = await registry.waitFor(NAME, revision, { timeoutMs: STEP_TIMEOUT_MS, intervalMs: 100 });
    for (const o of outcomes)
      say(
        `  ${o.host}: ${o.type === 'applied' ? `applied r${revision} after ${o.ms} ms` : `${o.type} ${o.code ?? ''}`}`,
      );
    const applied = outcomes.filter((o) => o.type === 'applied');
    const refusedForCanary =
      !canary && step.title.startsWith('rollout') && outcomes.every((o) => o.code === 'ERR_FLEET_CANARY_UNSUPPORTED');
    const converged =
      applied.length === hosts.length && convergence.done && convergence.converged.length === hosts.length;
    if (refusedForCanary)
      say('  every host refused it ERR_FLEET_CANARY_UNSUPPORTED (this build has no gradual rollout) and serves v1 on');
    report.push({
      step: step.title,
      revision,
      converged: converged || refusedForCanary,
      outcome: refusedForCanary ? 'refused (no rollout)' : converged ? 'yes' : 'NO',
      slowestMs: applied.length ? Math.max(...applied.map((o) => o.ms)) : undefined,
    });
    if (canary && step.title.startsWith('rollout')) {
      // Sticky keys: each user answered by the same version on every host, about 25% of them on v2.
      const onV2 = new Set();
      let split = 0;
      for (let u = 0; u < PROBE_USERS; u++) {
        const user = `probe-${u}`;
        const versions = await Promise.all(hosts.map((h) => ask(h.port, user)));
        if (new Set(versions).size !== 1) split++;
        if (versions[0] === 'v2') onV2.add(user);
      }
      say(
        `  sticky users: ${onV2.size} of ${PROBE_USERS} on v2 (${((100 * onV2.size) / PROBE_USERS).toFixed(1)}%), ${split === 0 ? 'each on the same version on every host' : `${split} answered differently by different hosts`}`,
      );
      report.at(-1).sticky = { onCanary: onV2.size, users: PROBE_USERS, split };
    }
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS));
  }

  // 6. The end: stop the load, count.
  clearInterval(ticker);
  const results = await stopLoad();
  await Promise.all(hosts.map((h) => h.close()));
  console.log('');
  console.log('step                      revision  every host applied    slowest host');
  for (const r of report)
    console.log(
      `${r.step.padEnd(26)}${`r${r.revision}`.padEnd(10)}${r.outcome.padEnd(22)}${r.slowestMs === undefined ? '-' : `${r.slowestMs} ms`}`,
    );
  console.log('');
  console.log('host    requests  failed  served by version');
  let requests = 0;
  let failed = 0;
  for (const [i, l] of loads.entries()) {
    const r = results[i];
    const h = l.host;
    const hostFailed = r.errors + r.timeouts + r.non2xx + h.failed;
    requests += r.requests.total;
    failed += hostFailed;
    const versions = Object.keys(h.served)
      .sort()
      .map((v) => `${v} ${h.served[v]}`)
      .join(', ');
    console.log(
      `${h.id.padEnd(8)}${String(r.requests.total).padStart(8)}${String(hostFailed).padStart(8)}  ${versions}`,
    );
  }
  const allConverged = report.every((r) => r.converged);
  // Each user on one version everywhere, and the share on v2 within 5 standard deviations of 25%
  // (binomial, 400 users: 100 ± 43).
  const spread = 5 * Math.sqrt(PROBE_USERS * 0.25 * 0.75);
  const stickyOk = report.every(
    (r) =>
      r.sticky === undefined || (r.sticky.split === 0 && Math.abs(r.sticky.onCanary - PROBE_USERS * 0.25) <= spread),
  );
  console.log('');
  console.log(
    `summary  ${requests} requests, ${failed} failed; ${allConverged ? 'every host converged after each step' : 'a host did NOT converge'}${canary ? '' : ' (no gradual rollout in this build: the 25% step was refused)'}`,
  );
  return failed === 0 && allConverged && stickyOk && requests > 0 ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  console.error(`demo failed: ${error?.stack ?? error}`);
} finally {
  await cleanup();
}
process.exitCode = code;
