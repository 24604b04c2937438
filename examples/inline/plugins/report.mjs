// Depends on tally (ctx.plugins.tally) and on the host's `label` service (ctx.vault.services).
import { isMainThread, threadId } from 'node:worker_threads';

export const dependencies = ['tally'];
let ctx;

export async function onInit(c) {
  ctx = c;
}

export function where() {
  return isMainThread ? 'host thread' : `worker thread ${threadId}`;
}

export async function summary() {
  // With a debugger attached (node --inspect-brk examples/inline/run.mjs), inline mode stops here;
  // without one this statement does nothing.
  // eslint-disable-next-line no-debugger -- the point of this example: inline mode stops here under a debugger
  debugger;
  const total = await ctx.plugins.tally.count();
  return ctx.vault.services.label(total);
}
