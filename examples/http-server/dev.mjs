// The dev loop (`node examples/http-server/demo.mjs --watch`): serve the handler, watch its sources,
// and on each save rebuild it and swap the server to the new version, without a restart: the
// server, its connections and its state stay; requests in flight finish on the version they began on.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { createHotSwap } from 'isoplug';
import { watchPlugin } from 'isoplug/build';
import { close, createHandlerServer, listen } from './server.mjs';

const ms = (value) => `${Math.round(value)} ms`;
const shortPath = (path) => {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel;
};

/** Runs until SIGINT/SIGTERM; resolves with the exit status. */
export async function devLoop({ handler, port }) {
  const outDir = mkdtempSync(join(tmpdir(), 'isoplug-dev-'));
  let hs;
  let firstServed;
  const ready = new Promise((resolve) => (firstServed = resolve));
  const switchedAt = new Map();

  /** Each successful build with new output: the first one starts the HotSwap, the others swap. */
  const onBuild = async (built, info) => {
    if (!info.changed) return;
    const version = built.hash;
    if (!hs) {
      const first = createHotSwap(built.file, { name: 'hello', version, drainTimeoutMs: 10_000, standby: true });
      hs = first;
      try {
        const swap = await first;
        swap.on('swap', (event) => switchedAt.set(event.to, performance.now()));
        firstServed(swap);
      } catch (error) {
        if (hs === first) hs = undefined;
        console.error(
          `cannot load ${built.file}: ${error.code}: ${error.cause?.message ?? error.message}; fix it and save`,
        );
      }
      return;
    }
    const pending = hs;
    const current = await pending.catch(() => undefined);
    if (!current) {
      // The first version failed to load: this build becomes the first.
      if (hs === pending) hs = undefined;
      return onBuild(built, info);
    }
    try {
      const report = await current.swap(built.file, { name: 'hello', version });
      const total = (switchedAt.get(report.to) ?? performance.now()) - info.triggeredAt;
      console.log(
        `swapped to ${report.to} in ${ms(total)} (build ${ms(built.durationMs)}, load ${ms(report.loadMs)}${report.standby ? ' on the standby' : ''}, old version drained in ${ms(report.drainMs)})`,
      );
    } catch (error) {
      if (error.code === 'ERR_SWAP_SUPERSEDED') return; // a later save won
      console.error(
        `swap to ${version} failed: ${error.cause?.message ?? error.message} (${error.code}); still serving ${current.version}`,
      );
    }
  };

  let watcher;
  let server;
  let stats;
  try {
    watcher = await watchPlugin(handler, outDir, {
      name: 'hello',
      onBuild: (built, info) => void onBuild(built, info),
      onError: (error) =>
        console.error(`build failed: ${error.message}${hs ? '; still serving the last good version' : ''}`),
    });
    const stopped = new Promise((resolve) => {
      const stop = (signal) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        // A second Ctrl-C while closing ends the process at once.
        process.once('SIGINT', () => process.exit(130));
        resolve(signal);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    const swap = await Promise.race([ready, stopped.then(() => undefined)]);
    if (!swap) return 0;
    ({ server, stats } = createHandlerServer(swap));
    const url = await listen(server, port);
    console.log(
      `listening on ${url} with ${shortPath(handler)} (version ${swap.version}); try: curl '${url}/?name=Ada'`,
    );
    console.log(`watching ${shortPath(dirname(handler))}: edit a handler source and save; Ctrl-C to stop`);
    await stopped;
    console.log(`\nclosing: served ${stats.requests} requests (${stats.failed} failed), now on ${swap.version}`);
    return 0;
  } catch (error) {
    console.error(`dev loop: ${error.message}${error.code ? ` (${error.code})` : ''}`);
    return 1;
  } finally {
    await watcher?.close();
    if (server) await close(server);
    await (await hs?.catch(() => undefined))?.close();
    rmSync(outDir, { recursive: true, force: true });
  }
}
