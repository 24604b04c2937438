// Results that move: transfer() in a plugin's result (worker, built bundle, inline) and in a host
// callback's result; a bad transfer list fails only its call, with ERR_PLUGIN_CLONE.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MessagePort } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPlugin, PluginManager, proxy, transfer, type Plugin } from '../src/index.js';
import { buildPlugin } from '../src/cli/build.js';
import { caught, fixture, tempDir, stopEsbuild } from './helpers.js';
import { install } from './manager-helpers.js';

// Inline versions are bundled by esbuild: its service process ends after each test.
afterEach(stopEsbuild);

interface Moving {
  buffer(n: number): ArrayBuffer;
  nested(n: number): { meta: { n: number }; parts: [Map<string, Uint8Array>]; port: MessagePort };
  lastLength(): number;
  twice(): ArrayBuffer;
  detached(): unknown;
  missing(): unknown;
  kind(): unknown;
  fromHost(fn: () => unknown): number;
}
type Call = (method: string, ...args: unknown[]) => Promise<unknown>;

const MISUSE = [
  ['twice', 'duplicate'],
  ['detached', 'detached'],
  ['missing', 'missing'],
  ['kind', 'kind'],
] as const;

/** The checks every way of running the plugin must pass. */
async function movesResults(call: Call): Promise<void> {
  const buffer = (await call('buffer', 1 << 20)) as ArrayBuffer;
  expect(buffer).toBeInstanceOf(ArrayBuffer);
  expect(buffer.byteLength).toBe(1 << 20);
  expect(new Uint8Array(buffer)[12345]).toBe(7);
  // Moved, not copied: the plugin's own buffer is detached.
  expect(await call('lastLength')).toBe(0);
}

async function refusesMisuse(call: Call): Promise<void> {
  for (const [method, reason] of MISUSE) {
    const error = (await caught(call(method))) as { code: string; direction: string; method: string; cause: object };
    expect(error, method).toMatchObject({ code: 'ERR_PLUGIN_CLONE', direction: 'result', method });
    expect(error.cause, method).toMatchObject({ code: 'ERR_TRANSFER_LIST', reason });
    // The version keeps serving.
    expect(((await call('buffer', 8)) as ArrayBuffer).byteLength).toBe(8);
  }
}

async function withPlugin(file: string, run: (plugin: Plugin<Moving>) => Promise<void>): Promise<void> {
  const plugin = await loadPlugin<Moving>(file);
  try {
    await run(plugin);
  } finally {
    await plugin.close();
  }
}

const callOf = (plugin: Plugin<Moving>): Call => plugin.call as unknown as Call;

describe('transfer() in a result', () => {
  it('moves an ArrayBuffer result instead of copying it', async () => {
    await withPlugin(fixture('t-transfer.mjs'), (plugin) => movesResults(callOf(plugin)));
  });

  it('moves a result marked by the CommonJS build of isoplug/plugin', async () => {
    await withPlugin(fixture('t-transfer.cjs'), (plugin) => movesResults(callOf(plugin)));
  });

  it('moves a view buffer and a MessagePort nested in the result', async () => {
    await withPlugin(fixture('t-transfer.mjs'), async (plugin) => {
      const { meta, parts, port } = await plugin.api.nested(4096);
      try {
        expect(meta).toEqual({ n: 4096 });
        const data = parts[0].get('data')!;
        expect(data.byteLength).toBe(4096);
        expect(data[4095]).toBe(9);
        expect(await plugin.api.lastLength()).toBe(0);
        // The port works across the move: the plugin's end answers.
        const answer = new Promise((resolve) => port.once('message', resolve));
        port.postMessage(21);
        expect(await answer).toBe(42);
      } finally {
        port.close();
      }
    });
  });

  it('F15: fails only the call with a bad transfer list, each with its reason; the version keeps serving', async () => {
    await withPlugin(fixture('t-transfer.mjs'), (plugin) => refusesMisuse(callOf(plugin)));
  });

  it('works in a plugin bundled by isoplug build (its own copy of transfer)', async () => {
    const built = await buildPlugin(fixture('t-transfer.mjs'), join(tempDir(), 'out'));
    await withPlugin(built.file, async (plugin) => {
      await movesResults(callOf(plugin));
      await refusesMisuse(callOf(plugin));
    });
  });

  it('moves a host callback result to the plugin, and refuses a bad list there', async () => {
    await withPlugin(fixture('t-transfer.mjs'), async (plugin) => {
      const host = new ArrayBuffer(1024);
      expect(await plugin.api.fromHost(proxy(() => transfer(host, [host])))).toBe(1024);
      expect(host.byteLength).toBe(0);
      const bad = new ArrayBuffer(4);
      const error = await caught(plugin.api.fromHost(proxy(() => transfer(bad, [bad, bad]))));
      // Comlink carries the callback's TypeError to the plugin (name and message; not its code).
      expect(error).toBeInstanceOf(TypeError);
      expect(bad.byteLength).toBe(4);
      expect(await plugin.api.fromHost(proxy(() => 1))).toBe(-1);
    });
  });
});

describe('transfer() inline', () => {
  it('checks and moves the result within the host thread', async () => {
    const dir = tempDir();
    // A plugin outside the package: it imports the built entry by URL.
    install(dir, 't-transfer.mjs', 'moving.mjs', {});
    const source = join(dir, 'moving.mjs');
    const entry = pathToFileURL(join(process.cwd(), 'dist', 'plugin.js')).href;
    writeFileSync(source, readFileSync(source, 'utf8').replace("'isoplug/plugin'", JSON.stringify(entry)));
    const manager = new PluginManager({ dir, isolation: 'inline' });
    try {
      await manager.reload();
      const call: Call = (method, ...args) => manager.invoke('moving', method, ...args);
      await movesResults(call);
      await refusesMisuse(call);
    } finally {
      await manager.close();
    }
  });
});
