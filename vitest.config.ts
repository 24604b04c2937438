import { defineConfig } from 'vitest/config';
import { faultMatrix } from './test/setup/matrix.js';

export default defineConfig({
  plugins: [faultMatrix()],
  test: {
    include: ['test/**/*.test.ts'],
    // Each file in its own process: leak counters and gc() stay per file.
    pool: 'forks',
    execArgv: ['--expose-gc'],
    setupFiles: ['test/setup/leaks.ts'],
    globalSetup: ['test/setup/dist.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    typecheck: {
      enabled: true,
      include: ['test/**/*.test-d.ts'],
      tsconfig: './tsconfig.json',
    },
  },
});
