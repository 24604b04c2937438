/** Host processes (host.mjs) and CLI runs for the fleet tests; both use the build in dist/. */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HOST = fileURLToPath(new URL('./host.mjs', import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface HostMessage {
  type: string;
  [key: string]: unknown;
}

interface Waiter {
  readonly from: number;
  readonly match: (message: HostMessage) => boolean;
  resolve(message: HostMessage): void;
  reject(error: Error): void;
}

/** A host process; every message it sends is kept, in order, so a test can await one by content. */
export class HostProcess {
  readonly messages: HostMessage[] = [];
  readonly #child: ChildProcess;
  readonly #waiters = new Set<Waiter>();
  readonly exited: Promise<number | null>;
  #calls = 0;

  constructor(
    readonly id: string,
    options: Record<string, unknown>,
  ) {
    this.#child = fork(HOST, [], {
      env: { ...process.env, HOST_ID: id, ISOPLUG_TEST_HOST: JSON.stringify({ host: id, ...options }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#child.on('message', (message: HostMessage) => {
      this.messages.push(message);
      for (const waiter of this.#waiters) this.#offer(waiter, this.messages.length - 1);
    });
    this.exited = new Promise((resolve) => {
      this.#child.on('exit', (code) => {
        for (const waiter of this.#waiters)
          waiter.reject(new Error(`host ${id} exited (${code}) while a test waited for a message`));
        this.#waiters.clear();
        resolve(code);
      });
    });
  }

  #offer(waiter: Waiter, index: number): boolean {
    const message = this.messages[index]!;
    if (index < waiter.from || !waiter.match(message)) return false;
    this.#waiters.delete(waiter);
    waiter.resolve(message);
    return true;
  }

  /** The index the next message will have: pass it to `next()` to see only what comes after now. */
  mark(): number {
    return this.messages.length;
  }

  /** The first message from index `from` on that `match` accepts (one already received, or the next). */
  next(match: (message: HostMessage) => boolean, from = 0): Promise<HostMessage> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { from, match, resolve, reject };
      for (let index = from; index < this.messages.length; index++) if (this.#offer(waiter, index)) return;
      if (this.#child.exitCode !== null || this.#child.signalCode !== null)
        return reject(new Error(`host ${this.id} has exited`));
      this.#waiters.add(waiter);
    });
  }

  /** Resolves once revision `revision` is applied (now or earlier). */
  applied(revision: number): Promise<HostMessage> {
    return this.next((m) => m.type === 'applied' && m.revision === revision);
  }

  /** The revisions it applied, in order. */
  get appliedLog(): number[] {
    return this.messages.filter((m) => m.type === 'applied').map((m) => m.revision as number);
  }

  /** Calls `version()` on the plugin it serves, with `key` as the call's sticky key when given. */
  async version(key?: string): Promise<string> {
    const id = ++this.#calls;
    const reply = this.next((m) => m.type === 'result' && m.id === id);
    this.#child.send(key === undefined ? { type: 'call', id } : { type: 'call', id, key });
    const message = await reply;
    if (message.error !== undefined) throw new Error(`call failed on ${this.id}: ${JSON.stringify(message.error)}`);
    return message.value as string;
  }

  /** Closes the follower (its versions drain) and waits for the process to end. */
  async close(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null && this.#child.connected)
      this.#child.send({ type: 'close' });
    await this.exited;
  }

  /** Ends the process now (cleanup after a failed test). */
  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }
}

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `isoplug` command to its end. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
