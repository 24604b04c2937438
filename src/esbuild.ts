/**
 * esbuild, an optional peer dependency, imported once on first use. Shared by the build CLI
 * (`isoplug build`, `isoplug/build`), the manager's inline mode, which bundles each version, and
 * TypeScript plugins on Node lines without type stripping (typescript.ts).
 * Each caller turns a missing esbuild into its own error.
 */
export type Esbuild = typeof import('esbuild');

let esbuildModule: Promise<Esbuild> | undefined;

/** Imports esbuild once; rejects with the import's own error when it is not installed (and tries again next time). */
export function importEsbuild(): Promise<Esbuild> {
  esbuildModule ??= import('esbuild').catch((cause: unknown) => {
    esbuildModule = undefined;
    throw cause;
  });
  return esbuildModule;
}

/**
 * Bundled CommonJS code calls `require()` (for Node built-ins, or externals); an ES module has no
 * `require`, so the bundle gets one.
 */
export const REQUIRE_SHIM =
  "import { createRequire as __isoplugCreateRequire } from 'node:module';\nconst require = __isoplugCreateRequire(import.meta.url);";
