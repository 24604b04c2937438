// The fleet commands' argument checks: each mistake is one line naming it, exit status 2, before any
// database is contacted. Uses the build in dist/ (`npm run build` first).
import { describe, expect, it } from 'vitest';
import { runCli } from './processes.js';

const noDb = { ISOPLUG_DATABASE_URL: '' };

describe('fleet commands: usage', () => {
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
    [['status', 'svc', '--schema', 'Bad-Name', '--db', 'postgres://h/d'], /--schema needs a lowercase SQL identifier/],
  ])('isoplug %j', async (args, message) => {
    const run = await runCli(args, noDb);
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.status).toBe(2);
  });

  it('a database that cannot be reached is one line with ERR_FLEET_UNAVAILABLE, exit status 1', async () => {
    const run = await runCli(['status', 'svc', '--db', 'postgres://postgres@127.0.0.1:1/postgres'], noDb);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^isoplug status: .*\(ERR_FLEET_UNAVAILABLE\)\n$/);
  });

  it('each command has its help', async () => {
    for (const command of ['publish', 'rollout', 'promote', 'rollback', 'status', 'history', 'registry']) {
      const run = await runCli([command, '--help'], noDb);
      expect(run.status, command).toBe(0);
      expect(run.stdout, command).toMatch(new RegExp(`^Usage: isoplug ${command}`));
    }
  });
});
