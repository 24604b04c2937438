import { Worker } from 'node:worker_threads';

const ECHO = new URL('../workers/raw-echo.mjs', import.meta.url);

/** The raw peer: postMessage a numeric id, the worker echoes it, a Map settles the caller's promise. */
export class RawEcho {
  #worker = new Worker(ECHO);
  #pending = new Map();
  #next = 0;
  exited = new Promise((resolve) => this.#worker.once('exit', resolve));

  constructor() {
    this.#worker.on('message', (id) => {
      const resolve = this.#pending.get(id);
      this.#pending.delete(id);
      resolve(id);
    });
  }

  call() {
    const id = ++this.#next;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#worker.postMessage(id);
    });
  }

  async close() {
    await this.#worker.terminate();
    await this.exited;
  }
}

/** A bare `new Worker` boot to its first reply, in ms; the worker is terminated afterwards. */
export async function bareBoot() {
  const started = performance.now();
  const worker = new Worker(ECHO);
  const reply = new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  worker.postMessage(1);
  await reply;
  const ms = performance.now() - started;
  await worker.terminate();
  return ms;
}

export { ECHO as RAW_ECHO_URL };
