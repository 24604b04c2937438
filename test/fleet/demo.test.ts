// `npm run demo:fleet` end to end, in a child process: four HTTP hosts under autocannon follow a rollout
// in a real PostgreSQL (the demo starts its own scratch cluster). Exit status 0 means 0 failed requests
// and every host converged after each step; the demo ends its cluster and hosts in every case.
// It runs the build in dist/: `npm run build` first (`npm test` does).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { pgMissing } from './pg.js';

const run = promisify(execFile);
const DEMO = fileURLToPath(new URL('../../examples/fleet/demo.mjs', import.meta.url));

describe.skipIf(pgMissing !== undefined)(`npm run demo:fleet${pgMissing ? ` (skipped: ${pgMissing})` : ''}`, () => {
  it('rolls out to 25% (sticky users split alike on every host), promotes, rolls back; 0 failed requests', async () => {
    // The timeout is a safety net only (a hung demo fails the test instead of hanging it).
    const { stdout } = await run(process.execPath, [DEMO], {
      env: { ...process.env, ISOPLUG_DEMO_HOLD_MS: '1000' },
      timeout: 150_000,
      killSignal: 'SIGKILL',
    }).catch((error: { code?: unknown; signal?: unknown; stdout?: string; stderr?: string }) => {
      throw new Error(
        `examples/fleet/demo.mjs failed (exit ${String(error.code)}, signal ${String(error.signal)}):\n${error.stdout}\n${error.stderr}`,
      );
    });
    expect(stdout).toMatch(/^summary {2}[1-9]\d* requests, 0 failed; every host converged after each step/m);
    for (const step of ['rollout v2 to 25%', 'promote v2', 'roll back to v1'])
      expect(stdout).toMatch(new RegExp(`^${step} +r\\d+ +yes `, 'm'));
    // The 25% step: every probed user answered by the same version on every host.
    expect(stdout).toMatch(/sticky users: \d+ of 400 on v2 \([\d.]+%\), each on the same version on every host/);
  }, 180_000);
});
