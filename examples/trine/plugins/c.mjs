// The end of the chain: a ← b ← c. No dependencies.
import { threadId } from 'node:worker_threads';

const VERSION = 'c1';

export function chain(path) {
  return [...path, `${VERSION}@thread${threadId}`];
}
