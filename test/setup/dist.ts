/**
 * Every plugin worker runs the built runtime (dist/plugin-worker.mjs), and the child-process tests run
 * dist/ itself: a run against a dist/ older than src/ or workers/ would test stale code and could pass.
 * This global setup refuses to start one (`npm test` builds first).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** The newest file under `dir`, with its modification time. */
function newest(dir: string): { file: string; mtimeMs: number } {
  let found = { file: dir, mtimeMs: 0 };
  for (const name of readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })) {
    const file = join(root, dir, name);
    const stat = statSync(file);
    if (stat.isFile() && stat.mtimeMs > found.mtimeMs) found = { file, mtimeMs: stat.mtimeMs };
  }
  return found;
}

export default function checkDist(): void {
  const built = ['plugin-worker.mjs', 'index.js', 'cli.js'].map((name) => {
    try {
      return statSync(join(root, 'dist', name)).mtimeMs;
    } catch {
      throw new Error(`dist/${name} is missing: run \`npm run build\` first (\`npm test\` does)`);
    }
  });
  const oldest = Math.min(...built);
  for (const dir of ['src', 'workers']) {
    const { file, mtimeMs } = newest(dir);
    if (mtimeMs > oldest)
      throw new Error(
        `dist/ is older than ${file.slice(root.length)}: run \`npm run build\` first (\`npm test\` does)`,
      );
  }
}
