// The PluginManager examples (hotswap's demos) run end to end, each in a child process: exit status 0,
// its `ok:` line, and the temp copies it made are gone (each child gets a TMPDIR of its own).
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const run = promisify(execFile);

const EXAMPLES: [name: string, marker: RegExp][] = [
  ['hello', /^ok: hello reloaded only greeter$/m],
  ['extension', /^ok: extension 1 then 2, service answered$/m],
  ['livex', /^ok: live job scheduled on v1 ran on v2; its data travelled as plain data$/m],
  ['inline', /^ok: inline ran the same plugins in the host thread with the same results$/m],
  ['trine', /^ok: trine reloaded a and b with c and the chain answered$/m],
];

describe('examples (PluginManager)', () => {
  it.each(EXAMPLES)('examples/%s/run.mjs exits 0 by itself and prints its ok line', async (name, marker) => {
    const file = fileURLToPath(new URL(`../examples/${name}/run.mjs`, import.meta.url));
    const tmp = tempDir();
    // The timeout is a safety net only (a hung child fails the test instead of hanging it).
    const { stdout } = await run(process.execPath, [file], {
      env: { ...process.env, TMPDIR: tmp },
      timeout: 25_000,
      killSignal: 'SIGKILL',
    }).catch((error: { code?: unknown; signal?: unknown; stdout?: string; stderr?: string }) => {
      throw new Error(
        `examples/${name}/run.mjs failed (exit ${String(error.code)}, signal ${String(error.signal)}):\n${error.stdout}\n${error.stderr}`,
      );
    });
    expect(stdout).toMatch(marker);
    expect(stdout).not.toMatch(/^FAIL/m);
    expect(readdirSync(tmp)).toEqual([]);
  });
});
