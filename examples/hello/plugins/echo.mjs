// A file plugin: one module, named by its base name ("echo").
import { threadId } from 'node:worker_threads';

export function hello(name) {
  return `echo: ${name} (from worker thread ${threadId})`;
}
