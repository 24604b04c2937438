// What reading a plugin's sources costs: the default version label over a generated 500-module plugin
// (against reading and hashing the same files with nothing else), and a manager reload() with nothing
// changed beside a 6,000-file node_modules (against the same plugin folder without node_modules).
//
//   npm run build && node bench/sources.mjs        writes bench/results/sources.json
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PluginManager, versionLabel } from '../dist/index.js';
import { progress, progressClear } from './lib/progress.mjs';
import { ENV } from './lib/results.mjs';

const ROUNDS = 15;
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const write = (root, files) => {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
};

/** 500 modules: the entry imports 20 group modules, which import 479 leaves; 20 bare packages. */
function graphPlugin(root) {
  const files = { 'package.json': '{"type":"module"}' };
  const groups = [];
  for (let g = 0; g < 20; g++) {
    const leaves = [];
    for (let l = 0; l < (g === 0 ? 23 : 24); l++) {
      files[`lib/g${g}/leaf${l}.mjs`] =
        `// leaf ${g}.${l}\nexport const v${l} = ${g * 100 + l};\n${'// padding line\n'.repeat(40)}`;
      leaves.push(`import { v${l} } from './leaf${l}.mjs';`);
    }
    files[`lib/g${g}/index.mjs`] = `${leaves.join('\n')}\nimport 'pkg${g}';\nexport const g${g} = 1;\n`;
    files[`node_modules/pkg${g}/package.json`] = JSON.stringify({ name: `pkg${g}`, version: '1.0.0' });
    groups.push(`import { g${g} } from './lib/g${g}/index.mjs';`);
  }
  files['entry.mjs'] = `${groups.join('\n')}\nexport const all = () => 1;\n`;
  write(root, files);
  return { entry: join(root, 'entry.mjs'), modules: Object.keys(files).filter((f) => f.endsWith('.mjs')) };
}

async function timeIt(fn) {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

const root = mkdtempSync(join(tmpdir(), 'isoplug-bench-sources-'));
const figures = {};
try {
  // 1. The label over 500 modules.
  const { entry, modules } = graphPlugin(join(root, 'graph'));
  const readAll = async () => {
    const hash = createHash('sha256');
    for (const bytes of await Promise.all(modules.map((m) => readFile(join(root, 'graph', m))))) hash.update(bytes);
    return hash.digest('hex');
  };
  const label = await versionLabel(entry);
  if (label.files.length !== 500) throw new Error(`expected 500 modules, the label read ${label.files.length}`);
  const labelTimes = [];
  const rawTimes = [];
  for (let round = 0; round < ROUNDS; round++) {
    progress(`sources: label of a 500-module plugin, round ${round + 1}/${ROUNDS}`);
    // Alternate the order so neither side always runs on a warmer cache.
    const pair = round % 2 === 0 ? [() => versionLabel(entry), readAll] : [readAll, () => versionLabel(entry)];
    const [a, b] = [await timeIt(pair[0]), await timeIt(pair[1])];
    (round % 2 === 0 ? labelTimes : rawTimes).push(a);
    (round % 2 === 0 ? rawTimes : labelTimes).push(b);
  }
  figures.labelMs = median(labelTimes);
  figures.readAndHashMs = median(rawTimes);
  figures.labelRatio = figures.labelMs / figures.readAndHashMs;

  // 2. reload() with nothing changed, beside a 6,000-file node_modules, and without it.
  const reloadTimes = {};
  for (const withInstall of [true, false]) {
    const dir = join(root, withInstall ? 'with' : 'without');
    const files = {
      'shop/package.json': JSON.stringify({ name: 'shop', dependencies: { dep: '1.0.0' } }),
      'shop/package-lock.json': '{"lockfileVersion":3}',
      'shop/index.mjs': 'export const hi = () => "hi";\n',
    };
    if (withInstall) {
      files['shop/node_modules/dep/package.json'] = JSON.stringify({ name: 'dep', version: '1.0.0' });
      for (let i = 0; i < 6000; i++) files[`shop/node_modules/dep/lib/${i % 60}/f${i}.js`] = `module.exports = ${i};\n`;
    }
    progress(`sources: writing ${withInstall ? 'a 6,000-file node_modules' : 'the plugin without node_modules'}`, {
      force: true,
    });
    write(dir, files);
    const manager = new PluginManager({ dir });
    try {
      await manager.reload();
      const times = [];
      for (let round = 0; round < ROUNDS; round++) {
        progress(`sources: reload() ${withInstall ? 'with' : 'without'} node_modules, round ${round + 1}/${ROUNDS}`);
        times.push(await timeIt(() => manager.reload()));
      }
      reloadTimes[withInstall ? 'with' : 'without'] = median(times);
    } finally {
      await manager.close();
    }
  }
  figures.reloadWithNodeModulesMs = reloadTimes.with;
  figures.reloadWithoutNodeModulesMs = reloadTimes.without;
  figures.reloadRatio = reloadTimes.with / reloadTimes.without;
} finally {
  rmSync(root, { recursive: true, force: true });
}
progressClear();
const round = (n) => Math.round(n * 100) / 100;
console.log(`default label, 500 modules + 20 packages: ${round(figures.labelMs)} ms median`);
console.log(
  `  reading and hashing the same 500 files only: ${round(figures.readAndHashMs)} ms (ratio ${round(figures.labelRatio)}x)`,
);
console.log(
  `manager reload(), nothing changed, beside a 6,000-file node_modules: ${round(figures.reloadWithNodeModulesMs)} ms`,
);
console.log(
  `  the same plugin without node_modules: ${round(figures.reloadWithoutNodeModulesMs)} ms (ratio ${round(figures.reloadRatio)}x)`,
);
const out = new URL('./results/sources.json', import.meta.url);
writeFileSync(
  out,
  `${JSON.stringify({ ...ENV, date: new Date().toISOString(), rounds: ROUNDS, figures: Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, round(v)])) }, null, 2)}\n`,
);
