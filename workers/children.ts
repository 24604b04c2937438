/**
 * The child processes plugin code starts. `spawn`, `exec`, `execFile` and `fork` of `child_process` are
 * wrapped before the plugin is imported, and `syncBuiltinESMExports()` makes ESM named imports see the
 * wrappers, so every ChildProcess a plugin makes is known here and reported to the host (`Child`).
 * libuv reaps a child only through the loop that spawned it, this worker's: so children are ended, and
 * their `exit` seen, here, while the loop still runs. (`spawnSync` and friends block the thread and reap
 * their own child: not wrapped; the host finds such a child in /proc if the worker is stuck in one.)
 *
 * Ending: SIGTERM to each child's descendants first (found through /proc, so a shell can reap its
 * command before it dies), then to the child, or to its process group when it is detached; after the
 * grace, SIGKILL the same way. Outside Linux there is no /proc: only the children themselves (and
 * detached groups) are signalled.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';

const require = createRequire(import.meta.url);
const cp = require('node:child_process') as Record<string, unknown>;
// Captured before plugin code runs.
const kill = process.kill.bind(process);
const now = performance.now.bind(performance);

interface Tracked {
  readonly detached: boolean;
  readonly exited: Promise<void>;
}
const live = new Map<number, Tracked>();

/** Tells the host that a child started (`alive`) or exited. */
export type ChildReport = (pid: number, detached: boolean, alive: boolean) => void;

const WRAPPED = ['spawn', 'exec', 'execFile', 'fork'] as const;

/** Wraps `child_process` (call before any plugin code runs). */
export function trackChildren(report: ChildReport): void {
  const track = (child: ChildProcess, detached: boolean): ChildProcess => {
    const pid = child.pid;
    // Spawning failed: 'error' follows and there is nothing to end.
    if (pid === undefined) return child;
    const exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        live.delete(pid);
        report(pid, detached, false);
        resolve();
      }),
    );
    live.set(pid, { detached, exited });
    report(pid, detached, true);
    return child;
  };
  const detachedIn = (args: readonly unknown[]): boolean =>
    args.some(
      (a) =>
        a !== null && typeof a === 'object' && !Array.isArray(a) && (a as { detached?: unknown }).detached === true,
    );
  for (const name of WRAPPED) {
    const original = cp[name] as (...args: unknown[]) => ChildProcess;
    const wrapped = function (this: unknown, ...args: unknown[]): ChildProcess {
      return track(Reflect.apply(original, this, args), detachedIn(args));
    };
    // `exec`/`execFile` keep their util.promisify.custom (and `name`, `length`).
    for (const key of Reflect.ownKeys(original)) {
      if (key === 'prototype') continue;
      Object.defineProperty(wrapped, key, Object.getOwnPropertyDescriptor(original, key)!);
    }
    cp[name] = wrapped;
  }
  syncBuiltinESMExports();
}

/** This thread's OS thread id (Linux), for the host to find its children in /proc; 0 elsewhere. */
export function threadId(): number {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop()) || 0;
  } catch {
    return 0;
  }
}

/** The descendants of `pid`, deepest first (Linux: /proc/<pid>/task/<tid>/children); empty elsewhere. */
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

/** The state letter of a process (R, S, D, Z, …), or '' when it is gone. */
function procState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return '';
  }
}

function signal(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      kill(pid, sig);
    } catch {
      // gone already
    }
  }
}

/** The descendants of every live child, recorded once: once a child dies its orphans cannot be found. */
function treeOf(tree: Map<number, number[]>): Map<number, number[]> {
  for (const pid of live.keys()) if (!tree.has(pid)) tree.set(pid, descendants(pid));
  return tree;
}

/** The children themselves: a detached one is the leader of its own group, so its group goes too. */
function signalChildren(sig: NodeJS.Signals): void {
  for (const [pid, { detached }] of live) signal(detached ? [-pid, pid] : [pid], sig);
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Descendants first, given up to 250 ms to be reaped by their own parent, then the children. */
async function signalAll(sig: NodeJS.Signals, tree: Map<number, number[]>): Promise<void> {
  const below = [...treeOf(tree).values()].flat();
  signal(below, sig);
  const until = now() + 250;
  while (below.length > 0 && now() < until && below.some((pid) => procState(pid) !== '')) await pause(2);
  signalChildren(sig);
}

/**
 * Ends every live child: SIGTERM, then SIGKILL after `graceMs` (0: SIGKILL at once); resolves once
 * each one's `exit` was seen (it is reaped), or `killWaitMs` after the SIGKILL. Returns how many it ended.
 */
export async function endChildren(graceMs: number, killWaitMs = 1000): Promise<number> {
  const count = live.size;
  if (count === 0) return 0;
  const tree = new Map<number, number[]>();
  const allExited = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      void Promise.all([...live.values()].map((child) => child.exited)).then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  if (graceMs > 0) {
    await signalAll('SIGTERM', tree);
    if (await allExited(graceMs)) {
      // A descendant that ignored SIGTERM is an orphan now, no longer ours to reap: kill it anyway.
      signal([...tree.values()].flat(), 'SIGKILL');
      return count;
    }
  }
  await signalAll('SIGKILL', tree);
  await allExited(killWaitMs);
  return count;
}

/**
 * Synchronous, for `process.exit()` (the loop stops after this pass): SIGKILL the descendants and spin until
 * their own parents (a shell, still alive) reaped them, then SIGKILL the children and spin until each is dead,
 * so its SIGCHLD is pending for the loop's last poll, which reaps it. At most `ms` in all.
 */
export function killChildrenNow(ms = 100): void {
  if (live.size === 0) return;
  const until = now() + ms;
  const spin = (pids: readonly number[], dead: (state: string) => boolean, by: number): void => {
    while (now() < by && !pids.every((pid) => dead(procState(pid)))) {
      // A SIGKILLed process dies within a millisecond or two.
    }
  };
  const below = [...treeOf(new Map()).values()].flat();
  signal(below, 'SIGKILL');
  spin(below, (state) => state === '', now() + ms / 2);
  const pids = [...live.keys()];
  signalChildren('SIGKILL');
  spin(pids, (state) => state === 'Z' || state === '', until);
}
