/**
 * The leak check (test/setup/leaks.ts) on planted leaks: vitest runs test/fixtures/leaks/*.planted.ts in
 * a child process, with the same setup file, and every planted leak must fail there, blamed on the test
 * or hook that made it, while the innocent tests beside them pass.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const root = fileURLToPath(new URL('../', import.meta.url));

/** This process's environment without what vitest set for its own workers. */
function outsideVitest(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST')));
}

interface Report {
  testResults: Array<{
    name: string;
    status: string;
    message: string;
    assertionResults: Array<{ title: string; status: string; failureMessages: string[] }>;
  }>;
}

it('fails a planted timer, interval, call in flight, beforeAll worker, late worker and afterAll worker, after a throwing afterEach too, and blames no innocent test', async () => {
  const out = join(tempDir(), 'report.json');
  await new Promise<void>((resolve) => {
    execFile(
      process.execPath,
      [
        'node_modules/vitest/vitest.mjs',
        'run',
        '--config',
        'test/fixtures/leaks/vitest.config.ts',
        '--reporter=json',
        `--outputFile=${out}`,
      ],
      // Planted leaks never end: a short settle window is enough to see them.
      { cwd: root, env: { ...outsideVitest(), ISOPLUG_LEAK_SETTLE_MS: '300' } },
      () => resolve(),
    );
  });
  const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
  const files = new Map(report.testResults.map((file) => [file.name.slice(file.name.lastIndexOf('/') + 1), file]));
  const outcome = (file: string) =>
    Object.fromEntries(
      files.get(file)!.assertionResults.map((test) => [test.title, [test.status, test.failureMessages.join('\n')]]),
    );

  expect(outcome('timer.planted.ts')).toEqual({
    'leaves a timer': ['failed', expect.stringContaining('left behind by this test: 1 timers')],
    'leaves an interval': ['failed', expect.stringContaining('left behind by this test: 1 timers')],
    'is innocent': ['passed', ''],
  });
  expect(files.get('timer.planted.ts')!.message).toBe('');

  // The check runs from onTestFinished, after every afterEach, even one that threw.
  expect(outcome('after-each.planted.ts')).toEqual({
    'leaves a timer, and its afterEach throws': [
      'failed',
      expect.stringMatching(/an afterEach that throws[\s\S]*left behind by this test: 1 timers/),
    ],
  });

  expect(outcome('call.planted.ts')).toEqual({
    'leaves a call in flight': [
      'failed',
      expect.stringMatching(/left behind by this test: 1 workers, \d+ ports, 1 calls/),
    ],
    'is innocent': ['passed', ''],
  });

  expect(outcome('before-all.planted.ts')).toEqual({ 'is innocent': ['passed', ''] });
  expect(files.get('before-all.planted.ts')!.message).toMatch(
    /the file's module scope or a beforeAll hook: 1 workers, \d+ ports/,
  );

  expect(outcome('late.planted.ts')).toEqual({
    'spawns a worker one macrotask after it returns': [
      'failed',
      expect.stringMatching(/left behind by this test: 1 workers, \d+ ports/),
    ],
    'is innocent': ['passed', ''],
  });
  expect(files.get('late.planted.ts')!.message).toMatch(
    /after the check of "test\/fixtures\/leaks\/late\.planted\.ts > is innocent": that test, or a hook run after it: 1 workers/,
  );
});
