// Runs in its own process, driven by parts/fleet.mjs over IPC: `fleet-child.mjs <index> <followers>`
// follows one deployment with <followers> DeploymentFollowers, each a host of its own (its own session,
// its own bundle cache), and reports:
//   - per follower and revision, when its `applied` event fired and when its `ok` status row for that
//     revision was written (the UPSERT resolved): the host's "applied" status as the registry sees it;
//   - the queries its sessions sent and the notifications they received (node-postgres patched below, so
//     the counts are exact and include every query the followers make);
//   - for the peer, a direct swap: on `{ type: 'swap' }` every follower's hot swap swaps to a file now,
//     no database involved, and the time each one served it is reported.
// Configuration comes as JSON in ISOPLUG_BENCH_FLEET: { db, name, cacheRoot, pollMs }.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { followDeployment } from 'isoplug/fleet';

const [indexArg, countArg] = process.argv.slice(2);
const index = Number(indexArg);
const count = Number(countArg);
const config = JSON.parse(process.env.ISOPLUG_BENCH_FLEET ?? '{}');
const now = () => performance.timeOrigin + performance.now();
const send = (message) => new Promise((resolve) => process.send(message, resolve));

// Exact client-side counts: every query any follower's session sends, every notification it receives (and
// when), and the moment each host's `ok` row for a revision was written.
const counts = { queries: 0, notifications: 0 };
const reported = [];
/** When each notification reached a session (the hint, before any query). */
const notified = [];
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (text, values, ...rest) {
  counts.queries++;
  const result = query.call(this, text, values, ...rest);
  const sql = typeof text === 'string' ? text : '';
  // report(): (host_id, name, revision, …, state at $8): an `ok` row names the revision applied.
  if (sql.includes('.host') && sql.trimStart().startsWith('INSERT') && Array.isArray(values) && values[7] === 'ok') {
    const [host, , revision] = values;
    result?.then?.(
      () => reported.push({ host, revision: Number(revision), at: now() }),
      () => {},
    );
  }
  return result;
};
const emit = pg.Client.prototype.emit;
pg.Client.prototype.emit = function (event, ...args) {
  if (event === 'notification') {
    counts.notifications++;
    notified.push(now());
  }
  return emit.call(this, event, ...args);
};

const followers = [];
const applied = [];
const caches = [];
try {
  const booting = [];
  for (let i = 0; i < count; i++) {
    const host = `bench-${index}-${i}`;
    const cacheDir = join(config.cacheRoot, host);
    mkdirSync(cacheDir, { recursive: true });
    caches.push(cacheDir);
    booting.push(
      followDeployment({
        db: config.db,
        name: config.name,
        host,
        cacheDir,
        pollMs: config.pollMs,
        // 50 workers booting at once on 2 shared cores can take longer than the default 10 s to start.
        readyTimeoutMs: config.readyTimeoutMs,
      }).then((f) => {
        f.on('applied', ({ revision }) => applied.push({ host, revision, at: now() }));
        f.on('rejected', ({ revision, error }) => void send({ type: 'rejected', host, revision, error }));
        followers.push({ host, follower: f });
      }),
    );
  }
  await Promise.all(booting);
} catch (error) {
  await Promise.allSettled(followers.map(({ follower }) => follower.close()));
  await send({ type: 'result', fatal: String(error?.stack ?? error) });
  process.exit(1);
}

process.on('message', (message) => {
  void (async () => {
    if (message.type === 'take') {
      // Everything recorded since the last take, and the running counts.
      await send({
        type: 'taken',
        applied: applied.splice(0),
        reported: reported.splice(0),
        notified: notified.splice(0),
        counts: { ...counts },
      });
    } else if (message.type === 'swap') {
      const swapped = await Promise.all(
        followers.map(async ({ host, follower }) => {
          try {
            await follower.hotSwap.swap(message.file, { version: message.label });
            return { host, at: now() };
          } catch (error) {
            return { host, error: error?.code ?? String(error) };
          }
        }),
      );
      await send({ type: 'swapped', swapped });
    } else if (message.type === 'close') {
      await Promise.all(followers.map(({ follower }) => follower.close()));
      for (const dir of caches) rmSync(dir, { recursive: true, force: true });
      await send({ type: 'result', counts });
      process.disconnect();
    }
  })();
});
await send({ type: 'ready', followers: followers.length });
