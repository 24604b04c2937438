// Cleans up a scratch PostgreSQL cluster (pg-cluster.mjs) once the process that made it is gone.
//   node pg-guard.mjs <pg_ctl> <dataDir> <baseDir> <runAsUser|''>
// It reads its stdin, a pipe from that process, until it closes: at a normal end that process has
// stopped the cluster and removed the folder already, and this finds nothing to do; after a crash or a
// kill it stops the server (-m immediate) and removes the folder.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const [pgCtl, data, base, user] = process.argv.slice(2);

process.stdin.resume();
process.stdin.on('error', () => {});
process.stdin.on('close', () => {
  if (existsSync(join(data, 'postmaster.pid'))) {
    const args = ['-D', data, '-m', 'immediate', '-w', 'stop'];
    if (user) spawnSync('runuser', ['-u', user, '--', pgCtl, ...args], { stdio: 'ignore' });
    else spawnSync(pgCtl, args, { stdio: 'ignore' });
  }
  rmSync(base, { recursive: true, force: true });
  process.exit(0);
});
