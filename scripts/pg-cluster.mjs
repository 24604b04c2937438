/**
 * A real, throwaway PostgreSQL: `initdb` into a temporary folder, `pg_ctl start` on a free loopback port,
 * and at the end `pg_ctl stop -m immediate` and the folder removed. Used by the fleet tests (one cluster
 * per test file), `npm run bench -- fleet` and `npm run demo:fleet`; about a second to create.
 *
 * The server refuses to run as root, so as root every server command runs through `runuser -u postgres`
 * and the folder belongs to that user. A guard process (pg-guard.mjs) holds a pipe from this process: if
 * this process dies without stopping the cluster (a crash, a killed run), the guard stops it and removes
 * the folder, so nothing is left behind either way.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
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

/**
 * The folder holding `initdb` and `pg_ctl`, or why the server cannot run here.
 * @returns {{ bin: string } | { missing: string }}
 */
export function findPgBin() {
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

/** @returns {string | undefined} */
function binDir() {
  /** @param {string} dir */
  const has = (dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'));
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

/** @returns {Promise<number>} */
async function freePort() {
  const server = createServer();
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export class Cluster {
  /** @type {string} */ #bin;
  /** @type {string} */ #dir;
  /** @type {boolean} */ #asUser;
  /** @type {import('node:child_process').ChildProcess} */ #guard;
  /** @type {number} */ #maxConnections;
  #running = false;
  #removed = false;
  /** @type {number} */ port;

  /**
   * @param {string} bin @param {string} dir @param {number} port @param {boolean} asUser
   * @param {import('node:child_process').ChildProcess} guard @param {number} maxConnections
   */
  constructor(bin, dir, port, asUser, guard, maxConnections) {
    this.#bin = bin;
    this.#dir = dir;
    this.port = port;
    this.#asUser = asUser;
    this.#guard = guard;
    this.#maxConnections = maxConnections;
  }

  /**
   * Creates and starts a cluster; its superuser is `postgres`, trusted on loopback.
   * @param {{ maxConnections?: number }} [options] `max_connections` (default 120)
   * @returns {Promise<Cluster>}
   */
  static async start(options = {}) {
    const found = findPgBin();
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
    /** @type {{ unref?: () => void } | null} */ (/** @type {unknown} */ (guard.stdin))?.unref?.();
    const port = await freePort();
    const cluster = new Cluster(found.bin, dir, port, asUser, guard, options.maxConnections ?? 120);
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

  /** @param {string} tool @param {string[]} args @returns {Promise<string>} */
  async #exec(tool, args) {
    const path = join(this.#bin, tool);
    const [cmd, argv] = this.#asUser ? ['runuser', ['-u', SERVER_USER, '--', path, ...args]] : [path, args];
    try {
      const { stdout } = await run(cmd, argv, { cwd: this.#dir, encoding: 'utf8' });
      return stdout;
    } catch (error) {
      const log = join(this.#dir, 'server.log');
      const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-20).join('\n') : '';
      throw new Error(`${tool} failed: ${/** @type {Error} */ (error).message}\n${tail}`, { cause: error });
    }
  }

  /**
   * A connection string for `user` (default the superuser) to `database`.
   * @param {string} [user] @param {string} [database] @returns {string}
   */
  url(user = 'postgres', database = 'postgres') {
    return `postgres://${encodeURIComponent(user)}@127.0.0.1:${this.port}/${database}`;
  }

  /** @returns {boolean} */
  get running() {
    return this.#running;
  }

  /** Starts the server (again) on the same port and data; resolves once it accepts connections. */
  async resume() {
    const options = [
      `-p ${this.port}`,
      `-k ${this.#dir}`,
      '-c listen_addresses=127.0.0.1',
      // A scratch cluster: no flush to disk. Commits still reach the OS before they are acknowledged
      // (synchronous_commit stays on), so a stop with -m immediate, a crash of the server alone, keeps them.
      '-c fsync=off',
      `-c max_connections=${this.#maxConnections}`,
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
  async halt() {
    if (!this.#running) return;
    this.#running = false;
    await this.#exec('pg_ctl', ['-D', join(this.#dir, 'data'), '-m', 'immediate', '-w', 'stop']);
  }

  /** Stops the server and removes its folder; then lets the guard exit. Idempotent. */
  async destroy() {
    if (this.#removed) return;
    this.#removed = true;
    try {
      await this.halt();
    } finally {
      rmSync(this.#dir, { recursive: true, force: true });
      const exited = new Promise((resolve) => {
        if (this.#guard.exitCode !== null || this.#guard.signalCode !== null) resolve(undefined);
        else this.#guard.once('exit', () => resolve(undefined));
      });
      // Referenced again: with nothing else alive, an unreferenced child's exit would never be awaited.
      this.#guard.ref();
      this.#guard.stdin?.end();
      await exited;
    }
  }
}
