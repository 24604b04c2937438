// The examples run end to end, each in a child process: the http-server load demo (kept short) and
// its dev loop (save a handler source, the server answers with the new code, Ctrl-C closes it).
import { spawn } from 'node:child_process';
import { cpSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir, writePlugin } from './helpers.js';

const DEMO = fileURLToPath(new URL('../examples/http-server/demo.mjs', import.meta.url));
const HANDLERS = fileURLToPath(new URL('../examples/http-server/handlers', import.meta.url));

/** A child process whose stdout lines can be awaited one pattern at a time. */
function run(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [DEMO, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const lines: string[] = [];
  let waiter: { pattern: RegExp; resolve(match: RegExpExecArray): void } | undefined;
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const take = (): void => {
    if (!waiter) return;
    for (let i = 0; i < lines.length; i++) {
      const match = waiter.pattern.exec(lines[i]!);
      if (!match) continue;
      lines.splice(0, i + 1);
      const { resolve } = waiter;
      waiter = undefined;
      resolve(match);
      return;
    }
  };
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdout += `${line}\n`;
    lines.push(line);
    take();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return {
    exited,
    output: () => ({ stdout, stderr }),
    next: (pattern: RegExp): Promise<RegExpExecArray> =>
      new Promise((resolve, reject) => {
        waiter = { pattern, resolve };
        void exited.then((status) =>
          reject(new Error(`exited (${status}) before printing ${pattern}:\n${stdout}${stderr}`)),
        );
        take();
      }),
    interrupt: () => child.kill('SIGINT'),
  };
}

/** GET on a connection of its own (nothing kept alive). */
function fetchText(url: string): Promise<{ status: number | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

describe('examples/http-server', () => {
  it('the load demo swaps under load with 0 failed requests and exits 0 by itself', async () => {
    const demo = run([], { ISOPLUG_DEMO_REQUESTS: '2000', ISOPLUG_DEMO_SWAPS: '3' });
    const status = await demo.exited;
    const { stdout, stderr } = demo.output();
    expect(status, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/^ {2}failed +0 /m);
    const swaps = /^ {2}swaps +(\d+):/m.exec(stdout);
    expect(Number(swaps?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(/^ {2}requests +([\d,]+)/m.exec(stdout)?.[1]?.replaceAll(',', ''))).toBeGreaterThan(0);
  });

  it('the dev loop swaps on save and closes on Ctrl-C', async () => {
    const dir = tempDir();
    cpSync(HANDLERS, dir, { recursive: true });
    const dev = run(['--watch', '--handler', join(dir, 'hello.ts')]);
    try {
      const [, url] = await dev.next(/^listening on (http:\/\/\S+)/);
      expect(await fetchText(`${url}/?name=Ada`)).toMatchObject({
        status: 200,
        body: expect.stringContaining('Hello, Ada!'),
      });

      const swapped = dev.next(/^swapped to ([0-9a-f]{8}) in /);
      writePlugin(
        dir,
        'greeting.ts',
        `export function greeting(name: string) {\n  return { text: \`Howdy, \${name}!\`, name };\n}\n`,
      );
      await swapped;
      expect(await fetchText(`${url}/?name=Ada`)).toMatchObject({
        status: 200,
        body: expect.stringContaining('Howdy, Ada!'),
      });
    } finally {
      dev.interrupt();
    }
    expect(await dev.exited).toBe(0);
    expect(dev.output().stdout).toMatch(/served \d+ requests \(0 failed\)/);
  });
});
