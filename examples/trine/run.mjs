// hotswap's "trine" demo: three plugins that depend on each other, a → b → c (export const dependencies).
// A call on a travels to b and on to c on MessageChannels between their workers. Reloading a plugin
// reloads its dependents with it (they need channels to its new version); its dependencies stay.
//
//   npm run build && node examples/trine/run.mjs
//
// The plugins are copied to a temp directory, where b and then c are edited.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginManager } from 'isoplug';

const PLUGINS = fileURLToPath(new URL('./plugins', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'isoplug-trine-'));
cpSync(PLUGINS, dir, { recursive: true });

const bump = (name, from, to) => {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, readFileSync(file, 'utf8').replace(`'${from}'`, `'${to}'`));
  console.log(`\nedited   ${name}.mjs (temp copy): ${from} → ${to}`);
};
const list = (names) => `[${names.join(', ')}]`;
const show = ({ unchanged, loaded }) => `loaded ${list(loaded)}, unchanged ${list(unchanged)}`;
const call = async (manager) => {
  const path = await manager.invoke('a', 'chain');
  console.log(`  a.chain() → ${path.join(' → ')}`);
  return path.map((hop) => hop.split('@')[0]);
};

const manager = new PluginManager({ dir });
let failed = false;
const expect = (what, actual, wanted) => {
  if (JSON.stringify(actual) === JSON.stringify(wanted)) return;
  console.log(`  FAIL: ${what} was ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`);
  failed = true;
};

try {
  console.log('isoplug trine: a → b → c, calls between workers, dependents reload with their dependency\n');
  const first = await manager.reload();
  console.log(`reload   ${show(first)}; order ${list(manager.plugins)}`);
  expect('the order', manager.plugins, ['c', 'b', 'a']);
  expect('the chain', await call(manager), ['a1', 'b1', 'c1']);

  bump('b', 'b1', 'b2');
  const second = await manager.reload();
  console.log(`reload   ${show(second)}`);
  expect(
    'the reload',
    { loaded: second.loaded, unchanged: second.unchanged },
    { loaded: ['a', 'b'], unchanged: ['c'] },
  );
  expect('the chain', await call(manager), ['a1', 'b2', 'c1']);

  bump('c', 'c1', 'c2');
  const third = await manager.reload();
  console.log(`reload   ${show(third)}`);
  expect(
    'the reload',
    { loaded: third.loaded, unchanged: third.unchanged },
    { loaded: ['a', 'b', 'c'], unchanged: [] },
  );
  expect('the chain', await call(manager), ['a1', 'b2', 'c2']);

  console.log(failed ? '\nFAIL: see above' : '\nok: trine reloaded a and b with c and the chain answered');
} finally {
  await manager.close();
  rmSync(dir, { recursive: true, force: true });
}
if (failed) process.exitCode = 1;
