// The framework examples run end to end, each in a child process: a Fastify app and an Express app
// whose route calls a hot-swapped plugin, under an autocannon run with a swap half-way. Exit status 0
// means 0 failed requests and a quote from the new rule after the swap.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('examples (frameworks)', () => {
  it.each(['fastify', 'express'])(
    'examples/frameworks/%s.mjs serves through a swap under load with 0 failed requests',
    async (name) => {
      const file = fileURLToPath(new URL(`../examples/frameworks/${name}.mjs`, import.meta.url));
      // The timeout is a safety net only (a hung child fails the test instead of hanging it).
      const { stdout } = await run(process.execPath, [file], {
        env: { ...process.env, ISOPLUG_EXAMPLE_REQUESTS: '4000' },
        timeout: 30_000,
        killSignal: 'SIGKILL',
      }).catch((error: { code?: unknown; signal?: unknown; stdout?: string; stderr?: string }) => {
        throw new Error(
          `examples/frameworks/${name}.mjs failed (exit ${String(error.code)}, signal ${String(error.signal)}):\n${error.stdout}\n${error.stderr}`,
        );
      });
      expect(stdout).toMatch(/^swap {5}v1 → v2 under load/m);
      expect(stdout).toMatch(/^summary {2}4000 requests, 0 failed,/m);
      expect(stdout).toMatch(/^after {4}quote for 12 tea: 108 /m);
    },
  );
});
