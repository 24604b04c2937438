// pg is an optional peer dependency: the core never loads it (nor any fleet code), and isoplug/fleet
// without it fails with ERR_FLEET_NO_PG naming the fix. Uses the build in dist/ (`npm run build` first).
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('isoplug/fleet without pg', () => {
  it('the core entry bundles no fleet code and imports no pg', () => {
    for (const file of ['index.js', 'index.cjs']) {
      const map = JSON.parse(readFileSync(join(root, 'dist', `${file}.map`), 'utf8')) as { sources: string[] };
      expect(map.sources.filter((source) => source.includes('fleet'))).toEqual([]);
      expect(readFileSync(join(root, 'dist', file), 'utf8')).not.toMatch(/(from |require\(|import\()\s*["']pg["']/);
    }
  });

  it('installed without pg: the core works, and the fleet rejects ERR_FLEET_NO_PG (ESM and CommonJS)', () => {
    // An application folder with isoplug installed (a copy of the build) and no pg anywhere above it.
    const app = tempDir();
    const pkg = join(app, 'node_modules', 'isoplug');
    mkdirSync(pkg, { recursive: true });
    cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true });
    cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
    symlinkSync(join(root, 'node_modules', 'comlink'), join(app, 'node_modules', 'comlink'));
    writeFileSync(
      join(app, 'check.mjs'),
      `import { createRequire } from 'node:module';
const core = await import('isoplug');
const fleet = await import('isoplug/fleet');
const cjs = createRequire(import.meta.url)('isoplug/fleet');
const codes = [];
for (const attempt of [
  () => fleet.openRegistry({ db: 'postgres://127.0.0.1:1/x' }),
  () => fleet.followDeployment({ db: 'postgres://127.0.0.1:1/x', name: 'x' }),
  () => fleet.initRegistry({ db: 'postgres://127.0.0.1:1/x' }),
  () => cjs.openRegistry({ db: 'postgres://127.0.0.1:1/x' }),
]) {
  try { await attempt(); codes.push('resolved'); } catch (error) { codes.push([error.code, error instanceof fleet.FleetNoPgError || error instanceof cjs.FleetNoPgError, error.message]); }
}
console.log(JSON.stringify({ core: typeof core.createHotSwap, codes }));
`,
    );
    const out = JSON.parse(execFileSync(process.execPath, ['check.mjs'], { cwd: app, encoding: 'utf8' })) as {
      core: string;
      codes: [string, boolean, string][];
    };
    expect(out.core).toBe('function');
    expect(out.codes).toHaveLength(4);
    for (const [code, isClass, message] of out.codes) {
      expect(code).toBe('ERR_FLEET_NO_PG');
      expect(isClass).toBe(true);
      expect(message).toContain('npm install pg');
    }
  });
});
