import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadPlugin, type Plugin } from '../src/index.js';
import { fixture } from './helpers.js';

type LogApi = typeof import('./fixtures/o-log.mjs');

/** Runs o-host.mjs (a user's host on the built package): its stdout and stderr lines, and its last report. */
async function host(
  scenario: 'close' | 'call' | 'swap' | 'partial',
  options: Record<string, unknown>,
): Promise<{ out: string[]; err: string[]; report: Record<string, unknown>; peak: number }> {
  const dist = new URL('../dist/index.js', import.meta.url).href;
  const child = spawn(
    process.execPath,
    [fixture('o-host.mjs'), dist, fixture('o-log.mjs'), scenario, JSON.stringify(options)],
    // Only a safety net against a hanging child (it would then fail the status check), not a measurement.
    { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const status = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  expect(status, stderr.slice(-2000)).toBe(0);
  const out = stdout.split('\n').filter(Boolean);
  const last = out.pop()!;
  expect(last.startsWith('REPORT ')).toBe(true);
  const { report, peak } = JSON.parse(last.slice('REPORT '.length)) as {
    report: Record<string, unknown>;
    peak: number;
  };
  return { out, err: stderr.split('\n').filter(Boolean), report, peak };
}

/** `stream 0 …` to `stream n-1 …`, in order. */
function expectLines(lines: readonly string[], stream: string, n: number, prefix = ''): void {
  expect(lines).toHaveLength(n);
  lines.forEach((line, i) => {
    if (!line.startsWith(`${prefix}${stream} ${i} `)) expect.fail(`line ${i}: ${line.slice(0, 80)}`);
  });
}

/** Everything a Readable yields until it ends, as text. */
async function readAll(stream: NodeJS.ReadableStream | undefined): Promise<string> {
  expect(stream).toBeDefined();
  let text = '';
  for await (const chunk of stream!) text += String(chunk);
  return text;
}

describe('a version’s output', () => {
  it('O1: 1,000 lines logged in onFree on stdout and on stderr all reach the host’s streams before close() resolves', async () => {
    // 1 KB lines: 1 MB per stream, past the 256 KiB the worker posts ahead of the host's acknowledgement, so
    // most of it is still waiting in the plugin's streams when onFree returns (close must flush it).
    const { out, err, report } = await host('close', { data: { streams: ['stdout', 'stderr'], width: 1000 } });
    expectLines(out, 'stdout', 1000);
    expectLines(err, 'stderr', 1000);
    expect(report).toMatchObject({ outcome: 'closed', onFree: 'ok' });
  });

  it('O2: 1,000 lines logged by the old version’s onFree during a swap all arrive', async () => {
    // 1 KB lines, past the window (see O1): the drain's close must flush what waits in the old version.
    const { out, report } = await host('swap', { data: { streams: ['stdout'], width: 1000 } });
    expectLines(out, 'stdout', 1000);
    expect(report).toMatchObject({ outcome: 'closed', onFree: 'ok' });
  });

  it('O3: 20 MB logged, then close(): every line arrives, in order; the host heap stays bounded', async () => {
    const { out, peak } = await host('call', { data: { inOnFree: false }, lines: 20_480, width: 1000 });
    expectLines(out, 'stdout', 20_480);
    // The worker posts at most 256 KiB per stream ahead of the host's acknowledgement: the host never holds
    // the 20 MB (Node's own worker stdio posts it as one message: a 76 MB peak was measured).
    expect(peak).toBeLessThan(40 * 2 ** 20);
  });

  it('O4: output "label" prefixes every line with [name@version], a partial last line included', async () => {
    const { out, err } = await host('partial', {
      output: 'label',
      name: 'logger',
      version: '1.2.3',
      data: { streams: ['stderr'] },
      lines: 1000,
      width: 0,
    });
    // The partial line is written when the version ends.
    expect(out.pop()).toBe('[logger@1.2.3] no newline yet');
    expectLines(out, 'stdout', 1000, '[logger@1.2.3] ');
    expectLines(err, 'stderr', 1000, '[logger@1.2.3] ');
  });

  it('O5: output "pipe": plugin.stdout and plugin.stderr carry every line and end with the version', async () => {
    const plugin: Plugin<LogApi> = await loadPlugin<LogApi>(fixture('o-log.mjs'), {
      output: 'pipe',
      data: { streams: ['stdout', 'stderr'], lines: 1000 },
    });
    const out = readAll(plugin.stdout);
    const err = readAll(plugin.stderr);
    await plugin.api.logNow(5000, 100, 'stdout');
    await plugin.close();
    const outLines = (await out).split('\n').filter(Boolean);
    expect(outLines.slice(0, 5000).every((line, i) => line.startsWith(`stdout ${i} `))).toBe(true);
    expectLines(outLines.slice(5000), 'stdout', 1000);
    expectLines((await err).split('\n').filter(Boolean), 'stderr', 1000);
  });

  it('O6: what a version logged right before it crashed arrives, and the crash carries the thrown error', async () => {
    const plugin = await loadPlugin<LogApi>(fixture('o-log.mjs'), { output: 'pipe', data: { inOnFree: false } });
    const out = readAll(plugin.stdout);
    const crashed = new Promise<Error>((resolve) => plugin.once('crash', resolve));
    await plugin.api.logThenCrash(1000);
    const crash = await crashed;
    expect(crash).toMatchObject({ code: 'ERR_PLUGIN_CRASHED', exitCode: 1 });
    expect(crash.cause).toBeInstanceOf(Error);
    expect((crash.cause as Error).message).toBe('o-log crashed');
    expectLines((await out).split('\n').filter(Boolean), 'stdout', 1000);
    await plugin.close();
  });

  it('O7: destroy() right after 1,000 lines were logged: every line arrives', async () => {
    const plugin = await loadPlugin<LogApi>(fixture('o-log.mjs'), { output: 'pipe', data: { inOnFree: false } });
    const out = readAll(plugin.stdout);
    // 1 KB lines (1 MB): past the 256 KiB posted ahead of acknowledgement, so most of it still waits in the
    // plugin's stream when the call returns (destroy must flush it).
    await plugin.api.logNow(1000, 1000);
    await plugin.destroy();
    expectLines((await out).split('\n').filter(Boolean), 'stdout', 1000);
  });

  it.each([
    [{ output: 'json' }, 'ERR_PLUGIN_INVALID_OPTION', RangeError, 'options.output'],
    [{ output: 1 }, 'ERR_PLUGIN_INVALID_OPTION', TypeError, 'options.output'],
    [{ childKillGraceMs: -1 }, 'ERR_PLUGIN_INVALID_OPTION', RangeError, 'options.childKillGraceMs'],
    [{ childKillGraceMs: Infinity }, 'ERR_PLUGIN_INVALID_OPTION', RangeError, 'options.childKillGraceMs'],
    [{ childKillGraceMs: '5' }, 'ERR_PLUGIN_INVALID_OPTION', TypeError, 'options.childKillGraceMs'],
  ])('bad option %o rejects, naming the option', async (options, code, kind, option) => {
    const error = await loadPlugin(fixture('o-log.mjs'), options as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(kind);
    expect(error).toMatchObject({ code, option });
  });
});
