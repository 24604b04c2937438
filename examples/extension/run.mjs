// hotswap's WithExtensionNewer demo: the `extension()` option builds a new object for each reload, and
// each plugin version reads the one it was loaded with in onInit (ctx.vault.extension). The host's
// `services` reach the plugin as async functions (ctx.vault.services).
//
//   npm run build && node examples/extension/run.mjs
//
// The plugin is copied to a temp directory, where it is edited to make the second reload load it again.
import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginManager } from 'isoplug';

const PLUGINS = fileURLToPath(new URL('./plugins', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'isoplug-extension-'));
cpSync(PLUGINS, dir, { recursive: true });

let reloads = 0;
const manager = new PluginManager({
  dir,
  // Called once per reload that loads something; the plugin gets a copy.
  extension: () => ({ reload: ++reloads, createdAt: new Date() }),
  services: {
    log: (message) => console.log(`  host log: ${message}`),
    priceOf: (item) => ({ tea: 250, cake: 475 })[item] ?? 0,
  },
});

const show = (ext) => `{ reload: ${ext.reload}, createdAt: ${ext.createdAt.toISOString()} }`;
try {
  console.log('isoplug extension: a new extension object per reload, host services through the vault\n');
  console.log(`reload   loaded [${(await manager.reload()).loaded.join(', ')}]`);
  const first = await manager.invoke('reporter', 'report');
  console.log(`  reporter saw ${show(first)}`);

  appendFileSync(join(dir, 'reporter.mjs'), '// edited\n');
  console.log('\nedited   reporter.mjs (temp copy)');
  console.log(`reload   loaded [${(await manager.reload()).loaded.join(', ')}]`);
  const second = await manager.invoke('reporter', 'report');
  console.log(`  reporter saw ${show(second)}`);

  const priced = await manager.invoke('reporter', 'price', 'cake');
  console.log(`\nservice  reporter.price('cake') → ${priced}`);

  const differ =
    first.reload === 1 && second.reload === 2 && second.createdAt >= first.createdAt && first.createdAt instanceof Date;
  if (!differ || priced !== 'cake costs 4.75') {
    console.log('\nFAIL: expected two different extensions and a priced item');
    process.exitCode = 1;
  } else {
    console.log('\nok: extension 1 then 2, service answered');
  }
} finally {
  await manager.close();
  rmSync(dir, { recursive: true, force: true });
}
