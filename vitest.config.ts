import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file in its own process: leak counters and gc() stay per file.
    pool: 'forks',
    execArgv: ['--expose-gc'],
    setupFiles: ['test/setup/leaks.ts'],
    globalSetup: ['test/setup/cache-dir.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    typecheck: {
      enabled: true,
      include: ['test/**/*.test-d.ts'],
      tsconfig: './tsconfig.json',
    },
  },
});
