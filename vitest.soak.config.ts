import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

/** `npm run soak`: the fault-matrix tests, each repeated, under background load (see scripts/soak.mjs). */
export default mergeConfig(
  base,
  defineConfig({
    test: {
      // Memory-slope tests are measured by `npm run bench -- leak`, not repeated here.
      exclude: ['test/leak.test.ts', 'test/matrix.test.ts', 'test/**/*.test-d.ts', 'node_modules/**'],
      runner: './test/soak/runner.ts',
      setupFiles: ['test/soak/background.ts'],
      typecheck: { enabled: false },
      // The per-scenario watchdog: a try that runs past it counts as a hang.
      testTimeout: 60_000,
    },
  }),
);
