// The README's dev loop, as written: `onBuild: (next, { changed }) => changed && hs.swap(next.file)`. A
// save whose onLoad throws fails the swap: the host lives, the error reaches onError, the old version serves.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createHotSwap } from '../src/index.js';
import { BuildError, watchPlugin } from '../src/cli/build.js';
import { tempDir, writePlugin } from './helpers.js';

// esbuild keeps its service process (unref'd) for the life of the process; each test stops it.
afterEach(async () => {
  const { stop } = await import('esbuild');
  await stop();
});

describe('watchPlugin and a failing onBuild', () => {
  it('W1: the README recipe with a save whose onLoad throws: onError gets ERR_BUILD_ON_BUILD, v1 serves', async () => {
    const dir = tempDir();
    const entry = writePlugin(dir, 'greeter.mjs', `export const version = () => 'v1';\n`);
    const out = tempDir();
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {});
    let seen!: (error: BuildError) => void;
    const failed = new Promise<BuildError>((resolve) => (seen = resolve));
    let swapped!: () => void;
    const first = new Promise<void>((resolve) => (swapped = resolve));
    const hs = await createHotSwap(entry);
    hs.once('swap', () => swapped());
    const watcher = await watchPlugin(entry, out, {
      debounceMs: 10,
      onBuild: (next, { changed }) => changed && hs.swap(next.file),
      onError: (error) => {
        console.error(error.message);
        seen(error);
      },
    });
    try {
      await first; // the first build's swap (to the built file)
      writePlugin(
        dir,
        'greeter.mjs',
        `export const version = () => 'v2';\nexport function onLoad() { throw new Error('no'); }\n`,
      );
      const error = await failed;
      expect(error).toBeInstanceOf(BuildError);
      expect(error).toMatchObject({
        code: 'ERR_BUILD_ON_BUILD',
        cause: { code: 'ERR_SWAP_FAILED', cause: { code: 'ERR_PLUGIN_LOAD' } },
      });
      expect(quiet).toHaveBeenCalledOnce();
      expect(await hs.call('version')).toBe('v1');
    } finally {
      quiet.mockRestore();
      await watcher.close();
      await hs.close();
    }
  });

  it('W2: without onError, a throwing onBuild is a process warning, never an uncaught error', async () => {
    const dir = tempDir();
    const entry = writePlugin(dir, 'p.mjs', `export const x = () => 1;\n`);
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    const watcher = await watchPlugin(entry, tempDir(), {
      onBuild: () => {
        throw new TypeError('handler bug');
      },
    });
    try {
      expect(await warned).toMatchObject({ code: 'ERR_BUILD_ON_BUILD', cause: { message: 'handler bug' } });
    } finally {
      await watcher.close();
    }
  });
});
