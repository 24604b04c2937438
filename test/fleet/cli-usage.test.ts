// The fleet commands' argument checks: each mistake is one line naming it, exit status 2, before any
// database is contacted. The command line's own entry (main), in this process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';

async function run(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: Io = { out: (text) => void (stdout += `${text}\n`), err: (text) => void (stderr += `${text}\n`) };
  const status = await main(args, io);
  return { status, stdout, stderr };
}

describe('fleet commands: usage', () => {
  const saved = process.env.ISOPLUG_DATABASE_URL;
  beforeAll(() => void delete process.env.ISOPLUG_DATABASE_URL);
  afterAll(() => {
    if (saved !== undefined) process.env.ISOPLUG_DATABASE_URL = saved;
  });

  it.each([
    [['publish', 'x.mjs'], /option --name is required/],
    [['publish', 'x.mjs', '--name', 'svc'], /no database: pass --db <url> or set ISOPLUG_DATABASE_URL/],
    [
      ['rollout', 'svc', 'abcdef12', '--percent', '101', '--db', 'postgres://h/d'],
      /--percent needs a number from 0 to 100/,
    ],
    [['rollout', 'svc', 'abcdef12', '--db', 'postgres://h/d'], /--percent needs a number/],
    [['rollout', 'svc'], /missing argument <version>/],
    [['promote', 'svc', '--expect-revision', 'x', '--db', 'postgres://h/d'], /--expect-revision needs an integer/],
    [
      ['rollback', 'svc', '--timeout', 'soon', '--wait', '--db', 'postgres://h/d'],
      /--timeout needs a number of seconds/,
    ],
    [['status'], /missing argument <name>/],
    [['history', 'svc', '--limit', '0', '--db', 'postgres://h/d'], /--limit needs an integer ≥ 1/],
    [['registry', 'drop', '--db', 'postgres://h/d'], /unknown registry command "drop"/],
    [['registry', 'gc', '--keep', '0', '--db', 'postgres://h/d'], /--keep needs an integer ≥ 1/],
    [['registry', 'gc', '--min-age', 'old', '--db', 'postgres://h/d'], /--min-age needs a number of seconds/],
    [['status', 'svc', '--schema', 'Bad-Name', '--db', 'postgres://h/d'], /--schema needs a lowercase SQL identifier/],
  ])('isoplug %j', async (args, message) => {
    const result = await run(args);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.status).toBe(2);
  });

  it('a database that cannot be reached is one line with ERR_FLEET_UNAVAILABLE, exit status 1', async () => {
    const result = await run(['status', 'svc', '--db', 'postgres://postgres@127.0.0.1:1/postgres']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^isoplug status: .*\(ERR_FLEET_UNAVAILABLE\)\n$/);
  });

  it('each command has its help', async () => {
    for (const command of ['publish', 'rollout', 'promote', 'rollback', 'status', 'history', 'registry']) {
      const result = await run([command, '--help']);
      expect(result.status, command).toBe(0);
      expect(result.stdout, command).toMatch(new RegExp(`^Usage: isoplug ${command}`));
    }
  });
});
