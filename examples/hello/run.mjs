// hotswap's "hello" demo, the isoplug way: a directory of plugins (a folder plugin and a file plugin),
// loaded as one set, called with invokeEach(); then one plugin is edited and reload() switches only it.
//
//   npm run build && node examples/hello/run.mjs
//
// The plugins are copied to a temp directory first, so the edit never touches the repository.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginManager } from 'isoplug';

const PLUGINS = fileURLToPath(new URL('./plugins', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'isoplug-hello-'));
cpSync(PLUGINS, dir, { recursive: true });

const show = ({ unchanged, loaded }) => `{ unchanged: [${unchanged.join(', ')}], loaded: [${loaded.join(', ')}] }`;
const replies = async (manager) => {
  const each = await manager.invokeEach('hello', 'Ada');
  for (const { name, value } of each) console.log(`  ${name.padEnd(8)} → ${value}`);
  return Object.fromEntries(each.map(({ name, value }) => [name, value]));
};

const manager = new PluginManager({ dir });
try {
  console.log('isoplug hello: a directory of plugins, each version in a worker of its own\n');
  const first = await manager.reload();
  console.log(`reload   ${show(first)}`);
  const before = await replies(manager);

  const file = join(dir, 'greeter', 'lib', 'phrase.js');
  writeFileSync(file, readFileSync(file, 'utf8').replace("'Hello'", "'Howdy'"));
  console.log(`\nedited   greeter/lib/phrase.js (temp copy): 'Hello' → 'Howdy'`);

  const second = await manager.reload();
  console.log(`reload   ${show(second)}`);
  const after = await replies(manager);

  const onlyGreeter = second.loaded.join() === 'greeter' && second.unchanged.join() === 'echo';
  if (
    first.loaded.join() !== 'echo,greeter' ||
    !onlyGreeter ||
    before.greeter !== 'Hello, Ada!' ||
    after.greeter !== 'Howdy, Ada!' ||
    after.echo !== before.echo
  ) {
    console.log('\nFAIL: expected only greeter to reload, with its new reply');
    process.exitCode = 1;
  } else {
    console.log('\nok: hello reloaded only greeter');
  }
} finally {
  await manager.close();
  rmSync(dir, { recursive: true, force: true });
}
