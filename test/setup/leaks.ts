/**
 * Every test ends with nothing left behind, counted independently of isoplug's own bookkeeping:
 * - an async_hooks hook sees every Worker, MessagePort and child process, and every timer, interval and
 *   immediate created from this repository's code (src/, test/; vitest's own timers are not ours);
 * - the `isoplug:call` tracing channel reports every call when it starts (`start`) and when its promise has
 *   settled (`asyncEnd`; `end` with an `error` for a call that threw before it had a promise).
 *
 * Each resource is blamed on the test that was running when it was created (before the first test: the
 * file's module scope or a `beforeAll`). After each test, from `onTestFinished` (which runs even when an
 * `afterEach` threw), we let one macrotask pass, then wait (bounded, with gc) until everything the test
 * created is gone. At the end of the file everything created since it started must be gone too: what a
 * `beforeAll`/`afterAll` made, and what a test spawned after its own check (named in the error).
 *
 * What it cannot see: anything made inside a plugin's worker or a child process (async_hooks is per thread),
 * and a closed version still referenced from memory (Node releases the worker's handle at exit; S7's heap
 * bound in leak.test.ts is what catches that). test/leak-check.test.ts plants one leak of each kind it sees.
 */
import { createHook } from 'node:async_hooks';
import { subscribe } from 'node:diagnostics_channel';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeEach, expect } from 'vitest';
import type { CallContext } from '../../src/diagnostics.js';
import { soakState } from '../soak/state.js';

type Kind = 'workers' | 'ports' | 'children' | 'timers' | 'immediates' | 'calls';
const KINDS: Record<string, Kind> = {
  WORKER: 'workers',
  MESSAGEPORT: 'ports',
  PROCESSWRAP: 'children',
  Timeout: 'timers',
  Immediate: 'immediates',
};
/** Timers are everywhere (vitest's own test timeouts among them): only those our code created count. */
const OURS_ONLY = new Set<Kind>(['timers', 'immediates']);

interface Owner {
  readonly name: string;
}
interface Resource {
  readonly kind: Kind;
  readonly owner: Owner;
}
export type Leftovers = Record<Kind, number>;

const FILE: Owner = { name: "the file's module scope or a beforeAll hook" };
let owner: Owner = FILE;
const live = new Map<number | CallContext, Resource>();
/** Set while this file creates its own timers and immediates (not counted). */
let quiet = false;

const root = fileURLToPath(new URL('../../', import.meta.url));
const self = fileURLToPath(import.meta.url);

/** True when the stack creating a resource runs through this repository's code (not node_modules, not here). */
function fromRepo(): boolean {
  const { stackTraceLimit, prepareStackTrace } = Error;
  Error.stackTraceLimit = 40;
  Error.prepareStackTrace = (_, sites) => sites;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  Error.captureStackTrace(holder, fromRepo);
  const sites = holder.stack ?? [];
  Error.prepareStackTrace = prepareStackTrace;
  Error.stackTraceLimit = stackTraceLimit;
  for (const site of sites) {
    let file = site.getFileName();
    if (file === undefined || file === null) continue;
    if (file.startsWith('file://')) file = fileURLToPath(file);
    if (file.startsWith(root) && !file.includes('/node_modules/') && file !== self) return true;
  }
  return false;
}

/** Whatever the soak's background load creates is its own, not the running test's. */
function inBackground(): boolean {
  return soakState.backgroundScope?.getStore() === true;
}

createHook({
  init(id, type) {
    const kind = KINDS[type];
    if (kind === undefined || quiet || inBackground()) return;
    if (OURS_ONLY.has(kind) && !fromRepo()) return;
    live.set(id, { kind, owner });
  },
  destroy(id) {
    live.delete(id);
  },
}).enable();

subscribe('tracing:isoplug:call:start', (call) => {
  if (!inBackground()) live.set(call as CallContext, { kind: 'calls', owner });
});
subscribe('tracing:isoplug:call:end', (call) => {
  if ((call as CallContext).error !== undefined) live.delete(call as CallContext);
});
subscribe('tracing:isoplug:call:asyncEnd', (call) => {
  live.delete(call as CallContext);
});

function count(which: (resource: Resource) => boolean): Leftovers {
  const left: Leftovers = { workers: 0, ports: 0, children: 0, timers: 0, immediates: 0, calls: 0 };
  for (const resource of live.values()) if (which(resource)) left[resource.kind]++;
  return left;
}

const nothing = (left: Leftovers) => Object.values(left).every((n) => n === 0);

/** Live Workers and MessagePorts created since the current test started. */
export function leftovers(): { workers: number; ports: number } {
  const { workers, ports } = count((r) => r.owner === owner);
  return { workers, ports };
}

/**
 * How long a check waits for what is still alive to end (workers exiting, ports collected, short timers
 * firing). Anything still there after it is left behind.
 */
const SETTLE_MS = Number(process.env['ISOPLUG_LEAK_SETTLE_MS'] ?? 5_000);

/** One macrotask, then gc+timer turns until nothing `which` picks is alive, or `done` (at most `ms`). */
async function settle(
  which: (resource: Resource) => boolean,
  ms = SETTLE_MS,
  done: (left: Leftovers) => boolean = nothing,
): Promise<Leftovers> {
  await pause((resolve) => setImmediate(resolve));
  const until = performance.now() + ms;
  let left = count(which);
  while (!done(left) && performance.now() < until) {
    globalThis.gc?.();
    await pause((resolve) => setTimeout(resolve, 10));
    left = count(which);
  }
  return left;
}

function pause(schedule: (resolve: () => void) => void): Promise<void> {
  quiet = true;
  try {
    return new Promise(schedule);
  } finally {
    quiet = false;
  }
}

/** Waits (bounded) until no Worker or MessagePort created since the test started is alive. */
export async function settleLeftovers(): Promise<{ workers: number; ports: number }> {
  return settleUntil(({ workers, ports }) => workers === 0 && ports === 0);
}

/** Waits (bounded) until the live Workers and MessagePorts created since the test started satisfy `done`. */
export async function settleUntil(
  done: (left: { workers: number; ports: number }) => boolean,
): Promise<{ workers: number; ports: number }> {
  const current = owner;
  const mine = (r: Resource) => r.owner === current && (r.kind === 'workers' || r.kind === 'ports');
  const { workers, ports } = await settle(mine, SETTLE_MS, (left) => done(left));
  return { workers, ports };
}

/** Forgets what was reported, so that it is reported once. */
function forget(which: (resource: Resource) => boolean): void {
  for (const [key, resource] of live) if (which(resource)) live.delete(key);
}

function describeLeft(left: Leftovers): string {
  return Object.entries(left)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${n} ${kind}`)
    .join(', ');
}

beforeEach((context) => {
  const test: Owner = { name: context.task.fullName };
  owner = test;
  context.onTestFinished(async () => {
    const mine = (r: Resource) => r.owner === test;
    const left = await settle(mine);
    forget(mine);
    if (!nothing(left)) soakState.leftovers++;
    expect(left, `left behind by this test: ${describeLeft(left)}`).toEqual(count(() => false));
  });
});

afterAll(async () => {
  const left = await settle(() => true);
  if (nothing(left)) return;
  const byOwner = new Map<Owner, Resource[]>();
  for (const resource of live.values()) byOwner.set(resource.owner, [...(byOwner.get(resource.owner) ?? []), resource]);
  const lines = [...byOwner].map(([who, resources]) => {
    const counts = count((r) => resources.includes(r));
    soakState.lateLeftovers.push({ owner: who.name, left: describeLeft(counts) });
    const blamed = who === FILE ? who.name : `after the check of "${who.name}": that test, or a hook run after it`;
    return `${blamed}: ${describeLeft(counts)}`;
  });
  forget(() => true);
  expect.fail(`left behind at the end of the file:\n${lines.join('\n')}`);
});
