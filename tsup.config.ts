import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The host side: what users import. `isoplug/build` is buildPlugin() and watchPlugin(), the CLI's
    // build as a library; esbuild, an optional peer dependency, stays outside and is imported on use.
    // `isoplug/fleet` likewise imports pg on use, and the core by the package's own name, so the core's
    // classes are the same module for both entries. `isoplug/plugin` is what plugin code imports
    // (transfer()); it imports nothing at run time.
    entry: {
      index: 'src/index.ts',
      build: 'src/cli/build.ts',
      fleet: 'src/fleet/index.ts',
      plugin: 'src/shared/transfer.ts',
    },
    format: ['esm', 'cjs'],
    dts: true,
    external: ['esbuild', 'pg', 'isoplug'],
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
  {
    // The `isoplug` command (package.json `bin`), run by node directly.
    entry: { cli: 'src/cli/index.ts' },
    format: ['esm'],
    banner: { js: '#!/usr/bin/env node' },
    external: ['esbuild', 'pg', 'isoplug'],
    sourcemap: true,
    target: 'node20',
    platform: 'node',
  },
]);
