// Depends on b (which depends on c). A call on a goes a → b → c between workers, not through the host.
import { threadId } from 'node:worker_threads';

export const dependencies = ['b'];
const VERSION = 'a1';
let ctx;

export async function onInit(c) {
  ctx = c;
}

export function chain(path = []) {
  return ctx.plugins.b.chain([...path, `${VERSION}@thread${threadId}`]);
}
