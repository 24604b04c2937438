import { existsSync } from 'node:fs';

let cached: URL | undefined;

/**
 * The built worker runtime. Beside this module in the published package (`dist/`); from the sources
 * (tests run `src/` directly) it is the build's output, so `npm run build` must have run.
 */
export function workerUrl(): URL {
  if (cached) return cached;
  const candidates = [
    new URL('./plugin-worker.mjs', import.meta.url),
    new URL('../dist/plugin-worker.mjs', import.meta.url),
  ];
  const found = candidates.find((url) => existsSync(url));
  if (!found)
    throw new Error(
      `isoplug: worker runtime not found (looked for ${candidates.map((u) => u.pathname).join(', ')}); run the build first`,
    );
  cached = found;
  return found;
}
