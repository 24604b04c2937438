import type { Plugin } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * `npm run mutate` (stryker.config.mjs): the suite as StrykerJS runs it against mutated sources. Stryker's
 * vitest runner asks for the threads pool; this suite needs a process per file (its leak counters, gc(),
 * plugin workers that exit the process on purpose), so the forks pool is restored once the config is resolved.
 * Left out: tests that measure memory for minutes, spawn vitest, or only run dist/ in a child process (a
 * mutant of src/ cannot reach them), and the type tests. No dist/ freshness check: Stryker's sandbox copies
 * the tree, so every file is new there.
 */
function forks(): Plugin {
  return {
    name: 'isoplug:stryker-forks',
    configureVitest({ vitest, project }) {
      vitest.config.pool = 'forks';
      project.config.pool = 'forks';
    },
  };
}

export default defineConfig({
  plugins: [forks()],
  test: {
    include: ['test/**/*.test.ts'],
    exclude: [
      'test/leak.test.ts',
      'test/leak-check.test.ts',
      'test/matrix.test.ts',
      'test/cli.test.ts',
      'test/examples.test.ts',
      'test/examples-manager.test.ts',
    ],
    pool: 'forks',
    execArgv: ['--expose-gc'],
    setupFiles: ['test/setup/leaks.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
  },
});
