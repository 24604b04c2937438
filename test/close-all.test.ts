// closeAll(): every live version's onFree runs before the process exits, on SIGTERM and on beforeExit.
// In a child process with the built package (run `npm run build` first; `npm test` does).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { closeAll, loadPlugin } from '../src/index.js';
import { fixture, tempDir, writePlugin } from './helpers.js';

const dist = pathToFileURL(fixture('../../dist/index.js')).href;

async function host(
  mode: 'signal' | 'beforeExit',
): Promise<{ status: number | null; marks: string[]; stderr: string }> {
  const dir = tempDir();
  const marks = join(dir, 'marks.txt');
  const child = spawn(process.execPath, [fixture('e-close-all-host.mjs'), dist, mode, dir, marks], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Only a safety net against a hanging child (it would then fail the status check), not a measurement.
    timeout: 30_000,
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    if (mode === 'signal' && chunk.includes('ready')) child.kill('SIGTERM');
  });
  const status = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  let text = '';
  try {
    text = readFileSync(marks, 'utf8');
  } catch {
    // no onFree ran
  }
  return { status, marks: text.split('\n').filter(Boolean).sort(), stderr };
}

describe('closeAll()', () => {
  it('E1: on SIGTERM, closes every live version (plugin, hot swap, manager): each onFree runs, exit 0', async () => {
    const { status, marks, stderr } = await host('signal');
    expect(status, stderr).toBe(0);
    expect(marks).toEqual(['hot swap closed', 'managed', 'manager closed', 'plain', 'swapped']);
  });

  it('E2: on beforeExit, the same, and the process then exits by itself (a pending live job does not hold it)', async () => {
    const { status, marks, stderr } = await host('beforeExit');
    expect(status, stderr).toBe(0);
    expect(marks).toEqual(['managed', 'plain', 'swapped']);
  });

  it('E3: in process: a version already closed is not closed again; a bad option is refused', async () => {
    const dir = tempDir();
    const a = await loadPlugin(writePlugin(dir, 'a.mjs', 'export const x = () => 1;\n'));
    const b = await loadPlugin(writePlugin(dir, 'b.mjs', 'export const x = () => 2;\n'));
    const closed: string[] = [];
    a.on('close', () => closed.push('a'));
    b.on('close', () => closed.push('b'));
    await b.close();
    await closeAll();
    expect(closed.sort()).toEqual(['a', 'b']);
    expect([a.state, b.state]).toEqual(['closed', 'closed']);
    await expect(closeAll({ timeoutMs: -1 })).rejects.toBeInstanceOf(RangeError);
  });
});
