import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The host side: what users import.
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    shims: true,
    target: 'node20',
    platform: 'node',
  },
  {
    // The isolate side: booted by `new Worker()`, never imported by users. One self-contained ESM file,
    // Comlink bundled in so a plugin worker boots without resolving packages.
    entry: { 'plugin-worker': 'workers/plugin-worker.ts' },
    format: ['esm'],
    outExtension: () => ({ js: '.mjs' }),
    noExternal: ['comlink'],
    sourcemap: true,
    target: 'node20',
    platform: 'node',
  },
]);
