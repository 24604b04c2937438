// The smoke run both framework examples share: autocannon keeps connections busy on a route whose
// handler calls a hot-swapped plugin, swaps to the next version half-way, and counts failures.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

/**
 * Loads `url` with `requests` requests over `connections` connections; once half are answered, calls
 * `swap()`. Resolves with the figures; `failed` counts errors, timeouts and non-2xx answers.
 */
export async function smoke({ url, requests, connections, swap }) {
  const instance = autocannon({ url, connections, amount: requests, timeout: 10 });
  let answered = 0;
  let swapped;
  instance.on('response', () => {
    answered++;
    if (answered === Math.floor(requests / 2)) swapped = swap();
  });
  const result = await new Promise((resolve, reject) => {
    instance.once('done', resolve);
    instance.once('error', reject);
  });
  const report = await swapped;
  return {
    requests: result.requests.total,
    failed: result.errors + result.timeouts + result.non2xx,
    p99: result.latency.p99,
    report,
  };
}

/** A whole number from the environment, or `fallback`. */
export function bound(name, fallback) {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new RangeError(`${name} must be a positive whole number, got ${raw}`);
  return value;
}

/** True when the module at `url` is the script node was started with (not imported by a test). */
export function isMain(url) {
  return process.argv[1] !== undefined && fileURLToPath(url) === resolve(process.argv[1]);
}
