/**
 * esbuild, the optional peer dependency: imported on first use, once per process. The build CLI
 * bundles with it, and a TypeScript plugin is compiled with it on Node lines without type stripping.
 * Callers turn a failed import into their own coded error (each names its own fix).
 */
type Esbuild = typeof import('esbuild');

let esbuildModule: Promise<Esbuild> | undefined;

/** Imports esbuild; rejects with the import's own error when it is not installed (and tries again next time). */
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
