/**
 * esbuild, an optional peer dependency, imported once on first use. Shared by the build CLI
 * (`isoplug build`, `isoplug/build`) and by the manager's inline mode, which bundles each version.
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
