// hotswap's static-linking debug mode: the same plugins, the same API, run twice: first each version
// in a worker of its own (isolation: 'worker', the default), then imported into the host thread
// (isolation: 'inline'), where a debugger attached to this process stops at their breakpoints.
// Inline is for debugging only: a plugin's crash is the host's. Each inline version is bundled (esbuild)
// and evaluated in the host, so a closed version's memory comes back; stack traces point at the sources.
//
//   npm run build && node examples/inline/run.mjs
//   node --inspect-brk examples/inline/run.mjs    then attach (chrome://inspect, or VS Code "Attach"),
//                                                  set a breakpoint in examples/inline/plugins/report.mjs
import { fileURLToPath } from 'node:url';
import { PluginManager } from 'isoplug';

const dir = fileURLToPath(new URL('./plugins', import.meta.url));

async function demo(isolation) {
  const manager = new PluginManager({ dir, isolation, services: { label: (total) => `total is ${total}` } });
  try {
    const { loaded } = await manager.reload();
    const where = await manager.invokeEach('where');
    await manager.invoke('tally', 'add', 2);
    // A pending job does not keep the process alive: this script holds it while it waits for the job.
    const hold = setInterval(() => {}, 60_000);
    await manager.schedule(0, 'tally', 'live_add', 3).finally(() => clearInterval(hold));
    const summary = await manager.invoke('report', 'summary');
    console.log(
      `${isolation.padEnd(6)}   loaded [${loaded.join(', ')}]; ${where.map(({ name, value }) => `${name} in the ${value}`).join(', ')}`,
    );
    console.log(`         tally.add(2), live job tally.live_add(3), report.summary() → ${JSON.stringify(summary)}`);
    return { where: Object.fromEntries(where.map(({ name, value }) => [name, value])), summary };
  } finally {
    await manager.close();
  }
}

try {
  console.log("isoplug inline: the same plugins with isolation 'worker' (default) and 'inline' (debug)\n");
  const worker = await demo('worker');
  const inline = await demo('inline');
  console.log('\nTo debug the plugins in the host thread:');
  console.log('  node --inspect-brk examples/inline/run.mjs');
  console.log('  attach a debugger (chrome://inspect or VS Code "Attach"), set a breakpoint in');
  console.log('  examples/inline/plugins/report.mjs (or keep its `debugger;` statement), continue.');

  const ok =
    worker.summary === 'total is 5' &&
    inline.summary === 'total is 5' &&
    Object.values(worker.where).every((w) => w.startsWith('worker thread')) &&
    Object.values(inline.where).every((w) => w === 'host thread');
  if (ok) {
    console.log('\nok: inline ran the same plugins in the host thread with the same results');
  } else {
    console.log('\nFAIL: the two modes did not give the same results from the expected threads');
    process.exitCode = 1;
  }
} finally {
  // Nothing to release: the managers closed above.
}
