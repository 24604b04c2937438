// Run by packed.test.ts with the packed isoplug installed beside it: prints one JSON line of what it saw.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadPlugin } from 'isoplug';

const root = process.argv[2];
const write = (files) => {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
};
const dep = (version) =>
  write({
    'node_modules/dep/package.json': JSON.stringify({ name: 'dep', version, type: 'module', exports: './i.js' }),
    'node_modules/dep/i.js': `export const v = () => '${version}';`,
  });
const seen = {};
try {
  write({
    'package.json': JSON.stringify({ type: 'module' }),
    'plugin.ts':
      "import { twice } from './math.ts';\nimport { v } from 'dep';\nexport const run = (n: number): string => `${v()}:${twice(n)}`;\n",
    'math.ts': 'export const twice = (n: number): number => n * 2;\n',
    'folder/package.json': JSON.stringify({ name: 'folder', main: 'lib/main.mjs' }),
    'folder/lib/main.mjs': 'export const hi = () => "folder";\n',
  });
  dep('1.0.0');
  const load = async (path) => {
    const plugin = await loadPlugin(join(root, path));
    try {
      return { name: plugin.name, version: plugin.version, out: await plugin.api[path === 'folder' ? 'hi' : 'run'](2) };
    } finally {
      await plugin.close();
    }
  };
  seen.ts = await load('plugin.ts');
  seen.folder = await load('folder');
  write({ 'math.ts': 'export const twice = (n: number): number => n * 20;\n' });
  seen.edited = await load('plugin.ts');
  dep('2.0.0');
  seen.upgraded = await load('plugin.ts');
} catch (error) {
  seen.error = { code: error.code, message: error.message };
}
console.log(JSON.stringify(seen));
