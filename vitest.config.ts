import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { faultMatrix } from './test/setup/matrix.js';

export default defineConfig({
  plugins: [faultMatrix()],
  // `isoplug/fleet` imports the core by the package's name (so its build shares the core's module): the source here.
  resolve: { alias: [{ find: /^isoplug$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) }] },
  test: {
    include: ['test/**/*.test.ts'],
    // Each file in its own process: leak counters and gc() stay per file.
    pool: 'forks',
    execArgv: ['--expose-gc'],
    setupFiles: ['test/setup/leaks.ts'],
    globalSetup: ['test/setup/dist.ts', 'test/setup/cache-dir.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    typecheck: {
      enabled: true,
      include: ['test/**/*.test-d.ts'],
      tsconfig: './tsconfig.json',
    },
  },
});
