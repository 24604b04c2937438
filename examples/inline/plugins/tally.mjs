// Counts what it is told to add. Its state lives in its module: in a worker, or in the host thread inline.
import { isMainThread, threadId } from 'node:worker_threads';

let total = 0;

export function where() {
  return isMainThread ? 'host thread' : `worker thread ${threadId}`;
}

export function add(n) {
  total += n;
  return total;
}

export function count() {
  return total;
}

export async function live_add(n) {
  return add(n);
}
