// Depends on c: ctx.plugins.c is a set of async functions on a MessageChannel straight to c's worker.
import { threadId } from 'node:worker_threads';

export const dependencies = ['c'];
const VERSION = 'b1';
let ctx;

export async function onInit(c) {
  ctx = c;
}

export function chain(path) {
  return ctx.plugins.c.chain([...path, `${VERSION}@thread${threadId}`]);
}
