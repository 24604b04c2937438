/**
 * A real, throwaway PostgreSQL for the fleet tests: `initdb` into a temporary folder, `pg_ctl start` on a
 * free loopback port, and at the end `pg_ctl stop -m immediate` and the folder removed. One cluster per
 * test file (about a second to create); tests stop and start it to play outages.
 *
 * The server refuses to run as root, so as root every server command runs through `runuser -u postgres`
 * and the folder belongs to that user. A guard process (pg-guard.mjs) holds a pipe from this process: if
 * this process dies without stopping the cluster (a crash, a killed test run), the guard stops it and
 * removes the folder, so nothing is left behind either way.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const GUARD = fileURLToPath(new URL('./pg-guard.mjs', import.meta.url));
/** The unprivileged user the server runs as when this process is root (Debian's package creates it). */
const SERVER_USER = 'postgres';

/** The folder holding `initdb` and `pg_ctl`, or why the server cannot run here. */
export function findPgBin(): { bin: string } | { missing: string } {
  const bin = binDir();
  if (bin === undefined)
    return { missing: 'PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql' };
  if (process.getuid?.() === 0) {
    try {
      execFileSync('id', ['-u', SERVER_USER], { stdio: 'ignore' });
    } catch {
      return { missing: `running as root and there is no user ${SERVER_USER} to run the server as` };
    }
  }
  return { bin };
}

function binDir(): string | undefined {
  const has = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'));
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    if (has(dir.trim())) return dir.trim();
  } catch {
    // pg_config comes with the client package; the server may be there without it.
  }
  // Debian and Ubuntu keep each major under /usr/lib/postgresql/<major>/bin: take the newest.
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const majors = readdirSync(root)
      .filter((name) => /^\d+$/.test(name) && has(join(root, name, 'bin')))
      .sort((a, b) => Number(b) - Number(a));
    if (majors[0] !== undefined) return join(root, majors[0], 'bin');
  }
  return (process.env.PATH ?? '').split(':').find((dir) => dir !== '' && has(dir));
}

/** Set by CI once PostgreSQL is installed: a missing server is then a failure, not a skip. */
export const PG_REQUIRED = process.env.ISOPLUG_REQUIRE_PG === '1';

const found = findPgBin();
/** Why the PostgreSQL tests cannot run here, or undefined when they can. */
export const pgMissing: string | undefined = 'missing' in found && !PG_REQUIRED ? found.missing : undefined;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export class Cluster {
  readonly #bin: string;
  readonly #dir: string;
  readonly #asUser: boolean;
  readonly #guard: ChildProcess;
  #running = false;
  #removed = false;
  readonly port: number;

  private constructor(bin: string, dir: string, port: number, asUser: boolean, guard: ChildProcess) {
    this.#bin = bin;
    this.#dir = dir;
    this.port = port;
    this.#asUser = asUser;
    this.#guard = guard;
  }

  /** Creates and starts a cluster; its superuser is `postgres`, trusted on loopback. */
  static async start(): Promise<Cluster> {
    if ('missing' in found) throw new Error(found.missing);
    const asUser = process.getuid?.() === 0;
    const dir = mkdtempSync(join(tmpdir(), 'isoplug-pg-'));
    if (asUser) {
      const uid = Number(execFileSync('id', ['-u', SERVER_USER], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', SERVER_USER], { encoding: 'utf8' }).trim());
      chownSync(dir, uid, gid);
    }
    const data = join(dir, 'data');
    const guard = spawn(process.execPath, [GUARD, join(found.bin, 'pg_ctl'), data, dir, asUser ? SERVER_USER : ''], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
    // The guard waits for this process to end; it must not keep this process alive.
    guard.unref();
    (guard.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    const port = await freePort();
    const cluster = new Cluster(found.bin, dir, port, asUser, guard);
    try {
      await cluster.#exec('initdb', [
        '-D',
        data,
        '--no-sync',
        '--auth=trust',
        '--username=postgres',
        '--encoding=UTF8',
        '--locale=C',
      ]);
      await cluster.resume();
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
    return cluster;
  }

  async #exec(tool: string, args: string[]): Promise<string> {
    const path = join(this.#bin, tool);
    const [cmd, argv] = this.#asUser ? ['runuser', ['-u', SERVER_USER, '--', path, ...args]] : [path, args];
    try {
      const { stdout } = await run(cmd, argv, { cwd: this.#dir, encoding: 'utf8' });
      return stdout;
    } catch (error) {
      const log = join(this.#dir, 'server.log');
      const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-20).join('\n') : '';
      throw new Error(`${tool} failed: ${(error as Error).message}\n${tail}`, { cause: error });
    }
  }

  /** A connection string for `user` (default the superuser) to `database`. */
  url(user = 'postgres', database = 'postgres'): string {
    return `postgres://${encodeURIComponent(user)}@127.0.0.1:${this.port}/${database}`;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Starts the server (again) on the same port and data; resolves once it accepts connections. */
  async resume(): Promise<void> {
    const options = [
      `-p ${this.port}`,
      `-k ${this.#dir}`,
      '-c listen_addresses=127.0.0.1',
      // A scratch cluster: no flush to disk. Commits still reach the OS before they are acknowledged
      // (synchronous_commit stays on), so a stop with -m immediate, a crash of the server alone, keeps them.
      '-c fsync=off',
      '-c max_connections=120',
    ].join(' ');
    await this.#exec('pg_ctl', [
      '-D',
      join(this.#dir, 'data'),
      '-l',
      join(this.#dir, 'server.log'),
      '-w',
      '-o',
      options,
      'start',
    ]);
    this.#running = true;
  }

  /** Stops the server at once, as a crash would (`-m immediate`): every session is cut. */
  async halt(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    await this.#exec('pg_ctl', ['-D', join(this.#dir, 'data'), '-m', 'immediate', '-w', 'stop']);
  }

  /** Stops the server and removes its folder; then lets the guard exit. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#removed) return;
    this.#removed = true;
    try {
      await this.halt();
    } finally {
      rmSync(this.#dir, { recursive: true, force: true });
      const exited = new Promise<void>((resolve) => {
        if (this.#guard.exitCode !== null || this.#guard.signalCode !== null) resolve();
        else this.#guard.once('exit', () => resolve());
      });
      this.#guard.stdin?.end();
      await exited;
    }
  }
}
