// The OpenTelemetry example runs end to end in a child process: the diagnostics channels become spans
// of an in-memory exporter, and the example checks the spans it printed (its `ok:` line).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const run = promisify(execFile);

it('examples/otel/run.mjs turns calls, loads, a swap, closes and a crash into spans', async () => {
  const file = fileURLToPath(new URL('../examples/otel/run.mjs', import.meta.url));
  // The timeout is a safety net only (a hung child fails the test instead of hanging it).
  const { stdout } = await run(process.execPath, [file], { timeout: 25_000, killSignal: 'SIGKILL' }).catch(
    (error: { code?: unknown; stdout?: string; stderr?: string }) => {
      throw new Error(`examples/otel/run.mjs failed (exit ${String(error.code)}):\n${error.stdout}\n${error.stderr}`);
    },
  );
  expect(stdout).toMatch(/^ok: otel recorded \d+ spans for calls, loads, a swap, closes and a crash$/m);
  expect(stdout).toMatch(/^ {2}isoplug call validate +ERROR invalid input/m);
  expect(stdout).toMatch(/^ {2}isoplug swap +ok .*isoplug\.from=v1 isoplug\.to=v2$/m);
  expect(stdout).not.toMatch(/^FAIL/m);
});
