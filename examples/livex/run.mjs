// hotswap's "livex" demo: live functions and live data. A job is scheduled on v1 and stored as plain data
// ({ plugin, fn, data }); the plugin is reloaded to v2 before the job's time; when the job fires it is
// resolved by name on the version current then, so v2's code runs it.
//
//   npm run build && node examples/livex/run.mjs
//
// The two versions live in versions/v1 and versions/v2; they are copied in turn into a temp directory.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginManager } from 'isoplug';

const version = (v) => fileURLToPath(new URL(`./versions/${v}/mailer.mjs`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'isoplug-livex-'));
const use = (v) => copyFileSync(version(v), join(dir, 'mailer.mjs'));

const manager = new PluginManager({ dir });
// A pending job does not keep the process alive (its timer is unref'd), as an idle plugin does not. An
// application waits for jobs with its own handles open (a server); this script holds the process itself.
const hold = setInterval(() => {}, 60_000);
let failed = false;
const fail = (why) => {
  console.log(`\nFAIL: ${why}`);
  failed = true;
};

try {
  console.log('isoplug livex: live jobs are plain data, run on the version current when they fire\n');
  use('v1');
  await manager.reload();
  console.log('reload   mailer v1');

  // A job a little in the future, and the reload started at once: awaiting reload() tells whether it
  // switched before the job's time. If this machine was too slow for that, go back to v1 and try again
  // with twice the delay; the outcome is then still read from the job's result, not assumed.
  for (let delay = 300, attempt = 1; ; delay *= 2, attempt++) {
    const at = new Date(Date.now() + delay);
    let settled = false;
    const job = manager.schedule(at, 'mailer', 'live_send', { to: 'ada' });
    job.then(
      () => (settled = true),
      () => (settled = true),
    );
    console.log(`schedule mailer.live_send({ to: 'ada' }) in ${delay} ms, while v1 is current`);

    use('v2');
    const { loaded } = await manager.reload();
    const left = at.getTime() - Date.now();
    const inTime = !settled && left > 1;
    console.log(
      inTime
        ? `reload   [${loaded.join(', ')}] → mailer v2, done ${left} ms before the job's time`
        : `reload   [${loaded.join(', ')}] → mailer v2, but only after the job's time`,
    );

    const result = await job;
    console.log(`job      ran on ${result.version}: ${JSON.stringify(result.text)}`);
    if (inTime) {
      if (result.version !== 'v2') fail('the job was scheduled before the reload and fired after it, but ran on v1');
      break;
    }
    if (attempt === 5) {
      fail(`the reload never finished before the job, even with a ${delay} ms delay`);
      break;
    }
    console.log('         (this machine was slower than the delay: back to v1, trying again with twice the delay)\n');
    use('v1');
    await manager.reload();
  }

  // Live data: the job's data is copied when it is scheduled, as plain (structured-clone) data.
  class Letter {
    constructor(subject) {
      this.subject = subject;
    }
    greet() {
      return this.subject;
    }
  }
  const data = { to: 'bob', sentAt: new Date(0), tags: new Set(['welcome']), letter: new Letter('Hi') };
  const inspected = manager.schedule(0, 'mailer', 'live_inspect', data);
  data.to = 'changed after schedule()';
  const seen = await inspected;
  console.log(`\nschedule mailer.live_inspect(data), then data.to is changed on the host`);
  console.log(
    `job      ran on ${seen.version} with to: ${JSON.stringify(seen.to)}, kinds: ${JSON.stringify(seen.kinds)}, letter.greet: ${seen.greet}`,
  );

  let cloneError;
  await manager
    .schedule(0, 'mailer', 'live_send', { to: 'eve', callback: () => {} })
    .catch((error) => (cloneError = error));
  console.log(`schedule with a function in the data → ${cloneError?.code}`);

  const plain =
    seen.to === 'bob' &&
    seen.kinds.sentAt === 'Date' &&
    seen.kinds.tags === 'Set' &&
    seen.kinds.letter === 'Object' &&
    seen.greet === 'undefined';
  if (!plain) fail('the job data did not arrive as a plain copy');
  if (cloneError?.code !== 'ERR_MANAGER_JOB_CLONE') fail('uncloneable data was not refused');
  if (!failed) console.log('\nok: live job scheduled on v1 ran on v2; its data travelled as plain data');
} finally {
  await manager.close();
  clearInterval(hold);
  rmSync(dir, { recursive: true, force: true });
}
if (failed) process.exitCode = 1;
