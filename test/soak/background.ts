/**
 * Background load for the soak: while a test file's scenarios run, callers keep calling another
 * plugin. Every call issued is accounted for as resolved, rejected with a code, rejected without one,
 * or lost: a call still unsettled past its deadline (the call timeout plus a grace period) is counted
 * lost as soon as the deadline passes, and the tally is live in `soakState` from the start, so a hang
 * cannot hide it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { afterAll, beforeAll } from 'vitest';
import { loadPlugin, type Plugin } from '../../src/index.js';
import { fixture } from '../helpers.js';
import { soakState, type BackgroundTally } from './state.js';

/** Each call's own deadline: the plugin's call timeout, then this much grace before it counts as lost. */
const CALL_TIMEOUT_MS = 10_000;
const GRACE_MS = 5_000;

let plugin: Plugin<{ echo(value: number): number }> | undefined;
/** The background plugin loading again after a test closed every live version (`closeAll()`, E3). */
let reopening: Promise<void> | undefined;

const open = () => loadPlugin<{ echo(value: number): number }>(fixture('echo.mjs'), { callTimeoutMs: CALL_TIMEOUT_MS });
let running = false;
let callers: Promise<void>[] = [];
let watchdog: NodeJS.Timeout | undefined;
const tally: BackgroundTally = { issued: 0, resolved: 0, rejectedCoded: 0, rejectedUncoded: 0, lost: 0 };
/** Calls not settled yet: when each is due, and whether it was already counted lost. */
const pending = new Set<{ due: number; lost: boolean }>();
const scope = (soakState.backgroundScope ??= new AsyncLocalStorage<boolean>());
soakState.background = tally;

/** Counts the calls past their deadline that are still unsettled, each once. */
function countLost(now: number): void {
  for (const call of pending) {
    if (call.lost || call.due > now) continue;
    call.lost = true;
    tally.lost++;
  }
}

beforeAll(async () => {
  await scope.run(true, async () => {
    plugin = await open();
    running = true;
    watchdog = setInterval(() => countLost(performance.now()), 500);
    watchdog.unref();
    callers = Array.from({ length: 4 }, async () => {
      for (let i = 0; running; i++) {
        tally.issued++;
        const call = { due: performance.now() + CALL_TIMEOUT_MS + GRACE_MS, lost: false };
        pending.add(call);
        try {
          await plugin!.api.echo(i);
          tally.resolved++;
        } catch (error) {
          const code = (error as { code?: unknown }).code;
          if (typeof code === 'string') tally.rejectedCoded++;
          else tally.rejectedUncoded++;
          // Closed under us (closeAll): without a new plugin this loop would reject in a microtask loop
          // and starve the event loop.
          if (code === 'ERR_PLUGIN_CLOSED' && running)
            await (reopening ??= scope.run(true, open).then(
              (next) => {
                plugin = next;
                reopening = undefined;
              },
              () => {
                running = false;
              },
            ));
        } finally {
          pending.delete(call);
        }
      }
    });
  });
});

afterAll(async () => {
  running = false;
  // Every call still out gets until its deadline; one that never settles is lost, not waited for.
  const due = Math.max(0, ...[...pending].map((call) => call.due - performance.now()));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(callers), new Promise((resolve) => (timer = setTimeout(resolve, due)))]);
  clearTimeout(timer);
  clearInterval(watchdog);
  countLost(Infinity);
  await reopening;
  await plugin?.close({ timeoutMs: CALL_TIMEOUT_MS });
});
