// @ts-check
/**
 * Mutation testing: `npm run mutate` (all of src/ but the CLI), or a part of it:
 * `npm run mutate -- --mutate src/time.ts`. Results in reports/mutation/ (HTML and JSON); see
 * docs/mutation.md for the score, the surviving mutants and what each fault-matrix row kills.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.stryker.config.ts', related: true },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  // The fleet's own code is mutated too: its tests need a PostgreSQL (scripts/ensure-postgres.sh).
  mutate: ['src/**/*.ts', '!src/cli/**', '!src/fleet/cli/**', '!src/index.ts'],
  coverageAnalysis: 'perTest',
  // Two cores, shared: one test runner, one checker.
  concurrency: 1,
  // The suite's own timeouts are tens of seconds; a mutant that hangs a call is a kill by timeout.
  timeoutMS: 30_000,
  // The whole suite runs once first, one file at a time, on a shared 2-core machine.
  dryRunTimeoutMinutes: 60,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
