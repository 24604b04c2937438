/**
 * The host's side of a worker's child processes. The worker ends its children itself (its loop is the
 * one that reaps them, workers/children.ts); the host keeps the pids it reported (`Child`) and the
 * worker's OS thread id (`Tid`) for when the worker cannot: stuck in a call at the deadline, or gone.
 * Then the host SIGKILLs those pids, their descendants, and whatever /proc lists as the thread's
 * children (a `spawnSync` child), and waits until they are dead before the worker is terminated, so
 * their SIGCHLD is pending for the terminated loop's last poll, which reaps them. A child killed after
 * its worker's loop is gone stays a zombie until the host exits: that is counted as forced.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** The state letter of a process (R, S, Z, …), or '' when it is gone or /proc is missing. */
export function procState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return '';
  }
}

/** The children of one thread of this process (a worker's, by its OS thread id); empty outside Linux. */
function threadChildren(tid: number): number[] {
  try {
    return readFileSync(`/proc/${process.pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The descendants of `pid`, deepest first; empty outside Linux. */
function descendants(pid: number, into: number[] = []): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return into;
  }
  for (const tid of tasks) {
    let list: string;
    try {
      list = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const entry of list.split(' ')) {
      const child = Number(entry);
      if (child > 0) {
        descendants(child, into);
        into.push(child);
      }
    }
  }
  return into;
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** Polls /proc until every pid is dead (a zombie, or gone; `gone`: only gone), at most `ms`. */
async function untilDead(pids: readonly number[], ms: number, gone = false): Promise<void> {
  const until = performance.now() + ms;
  const dead = (pid: number): boolean => {
    const state = procState(pid);
    return state === '' || (!gone && state === 'Z');
  };
  while (performance.now() < until && !pids.every(dead)) await new Promise((resolve) => setTimeout(resolve, 2));
}

/** The children one worker reported, and what the host had to kill itself. */
export class ThreadChildren {
  /** The worker's OS thread id (0: unknown, or no /proc). */
  tid = 0;
  /** Children killed from the host (the worker could not end them). */
  forced = 0;
  /** Live children: pid → detached. */
  readonly #live = new Map<number, boolean>();

  report(pid: number, detached: boolean, alive: boolean): void {
    if (alive) this.#live.set(pid, detached);
    else this.#live.delete(pid);
  }

  /**
   * Before terminating a worker that did not end its children: descendants first (their own parent, a
   * shell, still reaps them), then the children; resolves once they are dead (at most about 150 ms).
   */
  async killBeforeTerminate(): Promise<void> {
    const pids = this.#pids(true);
    if (pids.length === 0) return;
    const below = pids.flatMap((pid) => descendants(pid));
    for (const pid of below) kill(pid);
    if (below.length > 0) await untilDead(below, 50, true);
    this.#kill(pids);
    await untilDead(pids, 100);
  }

  /** The worker is gone and some children were not seen to exit: kill them (they stay zombies). */
  killAfterExit(): void {
    this.#kill(this.#pids(false));
  }

  #pids(threadAlive: boolean): number[] {
    const pids = new Set(this.#live.keys());
    if (threadAlive && this.tid > 0) for (const pid of threadChildren(this.tid)) pids.add(pid);
    return [...pids];
  }

  #kill(pids: readonly number[]): void {
    for (const pid of pids) {
      // Gone already (reaped in the worker's last pass): nothing to force.
      if (procState(pid) === '') continue;
      for (const below of descendants(pid)) kill(below);
      if (this.#live.get(pid) === true) kill(-pid);
      kill(pid);
      this.forced++;
    }
    this.#live.clear();
  }
}
