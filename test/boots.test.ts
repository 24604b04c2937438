// Deadlines from the call and the process-wide boot queue (docs/faults.md, B rows). Loads are held in
// their import by a FIFO the module reads at top level: the test opens it for writing (a handshake: the
// open completes once the worker is reading) and closes it, and the import goes on. No assertion is about
// time: each says how a load settles, what the queue held, and whether a worker was ever started.
import { createHook } from 'node:async_hooks';
import { mkdirSync, symlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BOOT_DEFAULTS,
  bootStats,
  configureBoots,
  createHotSwap,
  loadPlugin,
  PluginManager,
  type Plugin,
} from '../src/index.js';
import { endAll } from '../src/close.js';
import type { Thread } from '../src/thread.js';
import { caught, fifo, fixture, tempDir, writePlugin } from './helpers.js';

afterEach(() =>
  configureBoots({ concurrency: BOOT_DEFAULTS.concurrency, endConcurrency: BOOT_DEFAULTS.endConcurrency }),
);

/** A plugin whose import waits until the FIFO at `path` is opened and closed by a writer. */
function blocked(dir: string, name: string, path: string): string {
  return writePlugin(
    dir,
    name,
    `import { readFile } from 'node:fs/promises';\nawait readFile(${JSON.stringify(path)});\nexport const ok = () => '${name}';\n`,
  );
}

/** Lets the reader of a FIFO go on: the open waits for the reader, the close gives it end-of-file. */
async function unblock(path: string): Promise<void> {
  await (await open(path, 'w')).close();
}

/** Waits, one event-loop turn at a time, until `ready()` holds. */
async function until(ready: () => boolean): Promise<void> {
  while (!ready()) await nextTurn();
}

/** Counts the Workers created in this thread while `fn` runs (async_hooks sees each one). */
async function workersStartedBy<T>(fn: () => Promise<T>): Promise<{ value: T; started: number }> {
  let started = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'WORKER') started++;
    },
  }).enable();
  try {
    return { value: await fn(), started };
  } finally {
    hook.disable();
  }
}

const plain = (dir: string, name: string) => writePlugin(dir, name, `export const ok = () => '${name}';\n`);

describe('the boot queue', () => {
  it('B1: loads boot in call order, at most `concurrency` at once; the slot is freed at import', async () => {
    configureBoots({ concurrency: 1 });
    const dir = tempDir();
    const gateA = fifo();
    const onLoadA = fifo();
    const gateB = fifo();
    // A's import waits on gateA, then its onLoad on onLoadA: it holds the slot only until it is imported.
    const sourceA =
      `import { readFile } from 'node:fs/promises';\nawait readFile(${JSON.stringify(gateA.path)});\n` +
      `export async function onLoad() { await readFile(${JSON.stringify(onLoadA.path)}); }\nexport const ok = () => 'a.mjs';\n`;
    // A's own deadline bounds the wait below should B never be admitted while A's onLoad runs.
    const a = loadPlugin(writePlugin(dir, 'a.mjs', sourceA), { readyTimeoutMs: 30_000 });
    const b = loadPlugin(blocked(dir, 'b.mjs', gateB.path));
    const c = loadPlugin(plain(dir, 'c.mjs'));
    expect(bootStats()).toMatchObject({ concurrency: 1, booting: 1, queued: 2 });
    await unblock(gateA.path);
    // Opening gateB for writing completes once B's worker reads it: B booted while A's onLoad still waits
    // (A cannot be ready before onLoadA is released below), and C, behind B, still waits its turn.
    const bBooting = open(gateB.path, 'w');
    const first = await Promise.race([
      bBooting.then(() => 'B booting'),
      a.then(
        () => 'A ready',
        () => 'A failed',
      ),
    ]);
    expect(first).toBe('B booting');
    expect(bootStats()).toMatchObject({ booting: 1, queued: 1 });
    await (await bBooting).close();
    await unblock(onLoadA.path);
    const plugins: Plugin[] = await Promise.all([a, b, c]);
    expect(bootStats()).toMatchObject({ booting: 0, queued: 0 });
    expect(await Promise.all(plugins.map((p) => p.call('ok')))).toEqual(['a.mjs', 'b.mjs', 'c.mjs']);
    await Promise.all(plugins.map((p) => p.close()));
  });

  it("B13: a hot swap's standby boots through the queue: it waits behind a booting load, then serves the swap", async () => {
    configureBoots({ concurrency: 1 });
    const dir = tempDir();
    const inOnLoad = fifo();
    const gate = fifo();
    const file = writePlugin(
      dir,
      'hs.mjs',
      `import { readFile } from 'node:fs/promises';\nexport async function onLoad() { await readFile(${JSON.stringify(inOnLoad.path)}); }\nexport const ok = () => 'hs';\n`,
    );
    const creating = createHotSwap(file, { standby: true });
    // The open completes once onLoad reads: the first version is imported, and its slot is freed once
    // the host has read that (its message may come after the open).
    const writer = await open(inOnLoad.path, 'w');
    await until(() => bootStats().booting === 0);
    const holder = loadPlugin(blocked(dir, 'holder.mjs', gate.path));
    expect(bootStats()).toMatchObject({ booting: 1, queued: 0 });
    // Open once the holder's worker reads its FIFO: it has spawned, and holds the slot in its import.
    const holding = await open(gate.path, 'w');
    const { value: hs, started } = await workersStartedBy(async () => {
      await writer.close();
      return creating;
    });
    // The standby waits for the slot the holder has, and has started no worker.
    expect(bootStats()).toMatchObject({ booting: 1, queued: 1 });
    expect(started).toBe(0);
    await holding.close();
    const plugin = await holder;
    await until(() => bootStats().booting === 0 && bootStats().queued === 0);
    const report = await hs.swap(plain(dir, 'next.mjs'));
    expect(report.standby).toBe(true);
    expect(await hs.call('ok')).toBe('next.mjs');
    await Promise.all([hs.close(), plugin.close()]);
  });

  it('B2: a load whose deadline passes while queued rejects ERR_PLUGIN_LOAD (queued) and never starts a worker', async () => {
    configureBoots({ concurrency: 1 });
    const dir = tempDir();
    const gate = fifo();
    const holder = loadPlugin(blocked(dir, 'holder.mjs', gate.path));
    await nextTurn(); // the holder has spawned its worker
    const { value: error, started } = await workersStartedBy(() =>
      caught(loadPlugin(plain(dir, 'late.mjs'), { readyTimeoutMs: 50 })),
    );
    expect(error).toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
      cause: { code: 'ERR_PLUGIN_TIMEOUT', queued: true, timeoutMs: 50 },
    });
    expect(started).toBe(0);
    // It left the queue: only the holder is there.
    expect(bootStats()).toMatchObject({ booting: 1, queued: 0 });
    await unblock(gate.path);
    await (await holder).close();
  });

  it('B3: a load timing out while booting rejects at the deadline; its worker ends in the background', async () => {
    const dir = tempDir();
    const gate = fifo();
    const error = await caught(loadPlugin(blocked(dir, 'stuck.mjs', gate.path), { readyTimeoutMs: 100 }));
    expect(error).toMatchObject({
      code: 'ERR_PLUGIN_LOAD',
      cause: { code: 'ERR_PLUGIN_TIMEOUT', queued: false, timeoutMs: 100 },
    });
    // Rejected before the termination finished: it is still in flight.
    expect(bootStats().ending).toBe(1);
    expect(bootStats().booting).toBe(0);
    await until(() => bootStats().ending === 0);
  });

  it('B4: readyTimeoutMs counts from the call: a read of the module file that never ends still fails in time', async () => {
    // A FIFO nobody writes, where the host reads the version of a package the module imports (its
    // package.json, for the label): the read blocks a pool thread until released. (A FIFO as the module
    // path itself is refused before any read: it is neither a file nor a folder.)
    const gate = fifo();
    const dir = tempDir();
    mkdirSync(join(dir, 'node_modules', 'gated'), { recursive: true });
    symlinkSync(gate.path, join(dir, 'node_modules', 'gated', 'package.json'));
    const path = writePlugin(dir, 'gated.mjs', "import 'gated';\nexport const ok = () => 1;\n");
    const error = await caught(loadPlugin(path, { readyTimeoutMs: 100 }));
    expect(error).toMatchObject({ code: 'ERR_PLUGIN_LOAD', cause: { code: 'ERR_PLUGIN_TIMEOUT', queued: false } });
    gate.release();
    await until(() => bootStats().ending === 0 && bootStats().booting === 0);
  });

  it('B5: swap() loads through the same queue and deadline', async () => {
    const dir = tempDir();
    const hs = await createHotSwap(plain(dir, 'v1.mjs'));
    configureBoots({ concurrency: 1 });
    const gate = fifo();
    const holder = loadPlugin(blocked(dir, 'holder.mjs', gate.path));
    await nextTurn(); // the holder has spawned its worker
    const { value: error, started } = await workersStartedBy(() =>
      caught(hs.swap(plain(dir, 'v2.mjs'), { readyTimeoutMs: 50 })),
    );
    expect(error).toMatchObject({
      code: 'ERR_SWAP_FAILED',
      cause: { code: 'ERR_PLUGIN_LOAD', cause: { code: 'ERR_PLUGIN_TIMEOUT', queued: true } },
    });
    expect(started).toBe(0);
    expect(await hs.call('ok')).toBe('v1.mjs');
    await unblock(gate.path);
    await (await holder).close();
    await hs.close();
  });

  it('B12: loads timing out together with the one booting start no worker as each freed slot admits the next', async () => {
    configureBoots({ concurrency: 1 });
    const dir = tempDir();
    const gate = fifo();
    const late = plain(dir, 'late.mjs');
    const { value: errors, started } = await workersStartedBy(() =>
      Promise.all([
        caught(loadPlugin(blocked(dir, 'holder.mjs', gate.path), { readyTimeoutMs: 100 })),
        ...[1, 2, 3, 4, 5].map(() => caught(loadPlugin(late, { readyTimeoutMs: 100 }))),
      ]),
    );
    const queued = errors.map((e) => (e as { cause: { queued: boolean } }).cause.queued);
    // The holder timed out booting. A load whose deadline passed while it waited never starts a worker,
    // even as the freed slot passes down the line; one whose timer was created a millisecond later may
    // still be admitted with time left, and then starts one (on a loaded machine, several may: the
    // loads' timers are created over several milliseconds). Admitting loads with no time left would
    // start a worker for every one of them, and leave none queued.
    expect(queued[0]).toBe(false);
    expect(queued.filter(Boolean).length).toBeGreaterThanOrEqual(1);
    expect(started).toBe(queued.filter((q) => !q).length);
    await until(() => bootStats().ending === 0 && bootStats().queued === 0);
  });

  it('B6: terminations in flight are bounded by endConcurrency', async () => {
    configureBoots({ endConcurrency: 1 });
    const dir = tempDir();
    const plugins = await Promise.all([1, 2, 3].map((i) => loadPlugin(plain(dir, `e${i}.mjs`))));
    const seen: number[] = [];
    for (const plugin of plugins) plugin.on('exit', () => seen.push(bootStats().ending));
    const reports = await Promise.all(plugins.map((p) => p.close()));
    expect(reports.map((r) => r.terminated)).toEqual([true, true, true]);
    // Each worker exits holding the one slot: never more in flight, and never ended outside the bound.
    expect(seen).toEqual([1, 1, 1]);
  });

  it('B6: End handshakes take an ending slot: the next version is asked only when one is free', async () => {
    configureBoots({ endConcurrency: 1 });
    // Stand-ins for two versions' workers whose End is answered when the test says so.
    const answer: Array<(n: number) => void> = [];
    const asked: string[] = [];
    const thread = (name: string) =>
      ({
        gone: false,
        end: () => {
          asked.push(name);
          return new Promise<number>((resolve) => answer.push(resolve));
        },
      }) as unknown as Thread;
    const first = endAll([thread('a')], 0, 10_000);
    const second = endAll([thread('b')], 0, 10_000);
    await until(() => asked.length === 1);
    expect(bootStats()).toMatchObject({ ending: 1 });
    await nextTurn();
    expect(asked).toEqual(['a']);
    answer[0]!(2);
    await expect(first).resolves.toBe(2);
    await until(() => asked.length === 2);
    expect(asked).toEqual(['a', 'b']);
    answer[1]!(0);
    await expect(second).resolves.toBe(0);
    await until(() => bootStats().ending === 0);
  });

  it('B7: configureBoots validates its options, naming the bad one', () => {
    expect(() => configureBoots({ concurrency: 0 })).toThrow(RangeError);
    expect(() => configureBoots({ concurrency: 0 })).toThrow(
      expect.objectContaining({ message: expect.stringContaining('options.concurrency') }),
    );
    expect(() => configureBoots({ endConcurrency: 1.5 })).toThrow(
      expect.objectContaining({ message: expect.stringContaining('options.endConcurrency') }),
    );
    expect(() => configureBoots({ concurrency: '2' as unknown as number })).toThrow(TypeError);
    expect(() => configureBoots({ conccurrency: 2 } as never)).toThrow(TypeError);
    expect(() => configureBoots(null as never)).toThrow(TypeError);
    // A good option beside a bad one is not applied either.
    expect(() => configureBoots({ concurrency: BOOT_DEFAULTS.concurrency + 1, endConcurrency: 0 })).toThrow(
      expect.objectContaining({ message: expect.stringContaining('options.endConcurrency') }),
    );
    expect(bootStats()).toEqual({
      concurrency: BOOT_DEFAULTS.concurrency,
      queued: 0,
      booting: 0,
      ending: 0,
    });
  });
});

describe('the manager: readyTimeoutMs from admission, reloadTimeoutMs for the whole reload', () => {
  it('B8: a reload counts each readyTimeoutMs from admission, not from reload()', { timeout: 30_000 }, async () => {
    configureBoots({ concurrency: 1 });
    const dir = tempDir();
    plain(dir, 'alpha.mjs');
    const gate = fifo();
    const holder = loadPlugin(blocked(tempDir(), 'holder.mjs', gate.path));
    // Long enough for a boot on a busy machine once admitted; the control below waits it out in the queue.
    const manager = new PluginManager({ dir, load: { readyTimeoutMs: 1500 } });
    const reloading = manager.reload();
    await until(() => bootStats().queued === 1);
    // A load called after the manager's queued one, with the same readyTimeoutMs, times out in the queue ...
    expect(await caught(loadPlugin(plain(tempDir(), 'control.mjs'), { readyTimeoutMs: 1500 }))).toMatchObject({
      cause: { code: 'ERR_PLUGIN_TIMEOUT', queued: true },
    });
    await unblock(gate.path);
    // ... while the manager's, counted from its admission, loads.
    expect(await reloading).toMatchObject({ loaded: ['alpha'] });
    expect(await manager.invoke('alpha', 'ok')).toBe('alpha.mjs');
    await (await holder).close();
    await manager.close();
  });

  it(
    'B9: reloadTimeoutMs bounds the whole reload; the loads still queued or booting fail, the old set serves',
    {
      timeout: 30_000,
    },
    async () => {
      const dir = tempDir();
      plain(dir, 'alpha.mjs');
      // Long enough for the first reload on a busy machine; the second one waits it out. Each load's own
      // readyTimeoutMs lies far past this test's timeout: only reloadTimeoutMs can end the second reload.
      const manager = new PluginManager({ dir, reloadTimeoutMs: 2000, load: { readyTimeoutMs: 600_000 } });
      await manager.reload();
      const gate = fifo();
      blocked(dir, 'alpha.mjs', gate.path);
      const error = await caught(manager.reload());
      expect(error).toMatchObject({
        code: 'ERR_MANAGER_RELOAD',
        failures: [
          {
            name: 'alpha',
            error: { code: 'ERR_PLUGIN_LOAD', cause: { code: 'ERR_PLUGIN_TIMEOUT', timeoutMs: 2000 } },
          },
        ],
      });
      expect(await manager.invoke('alpha', 'ok')).toBe('alpha.mjs');
      await manager.close();
      await until(() => bootStats().ending === 0);
    },
  );

  it('B10: reloadTimeoutMs bounds the scan too', async () => {
    const dir = tempDir();
    const never = new Promise<never>(() => {});
    const fs = { readdir: () => never, stat: () => never, readFile: () => never };
    const manager = new PluginManager({ dir, fs, reloadTimeoutMs: 50 });
    expect(await caught(manager.reload())).toMatchObject({
      code: 'ERR_MANAGER_RELOAD',
      failures: [{ name: '', error: { code: 'ERR_PLUGIN_TIMEOUT', timeoutMs: 50 } }],
    });
    await manager.close();
  });

  it('B11: reloadTimeoutMs is validated', () => {
    expect(() => new PluginManager({ dir: fixture('.'), reloadTimeoutMs: -1 })).toThrow(
      expect.objectContaining({ message: expect.stringContaining('options.reloadTimeoutMs') }),
    );
  });
});
