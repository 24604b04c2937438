import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

/** Absolute path of a fixture under test/fixtures. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

const dirs: string[] = [];
const fifos: Array<() => void> = [];
afterEach(() => {
  // A reader still blocked on a FIFO (the test failed before it released it) is released before the FIFO goes.
  for (const release of fifos.splice(0)) release();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A real temporary folder (workers read real files), removed after the test. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'isoplug-test-'));
  dirs.push(dir);
  return dir;
}

/** Writes `source` to `name` in `dir` and returns the file's path. */
export function writePlugin(dir: string, name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

/**
 * A FIFO in a temporary folder: a plugin that reads it blocks its thread in a system call until the test
 * calls `release()` (a writer opens and closes it: the reader gets end-of-file). Releasing with no reader
 * left does nothing.
 */
export function fifo(): { path: string; release(): void } {
  const path = join(tempDir(), 'fifo');
  execFileSync('mkfifo', [path]);
  const release = () => {
    try {
      closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error;
    }
  };
  fifos.push(release);
  return { path, release };
}

/**
 * A gate shared with the `gate.mjs` fixture through a SharedArrayBuffer: the test waits until N calls
 * have entered the plugin, and opens the gate to let them finish, without messaging the plugin.
 */
export class Gate {
  readonly buffer = new SharedArrayBuffer(12);
  readonly #view = new Int32Array(this.buffer);

  /** Resolves once `n` calls have entered `wait()`/`forever()`. */
  async entered(n: number): Promise<void> {
    for (let seen = Atomics.load(this.#view, 1); seen < n; seen = Atomics.load(this.#view, 1)) {
      await Atomics.waitAsync(this.#view, 1, seen).value;
    }
  }

  /** Opens the gate; fixtures that understand it treat `value` 2 as "crash instead of returning". */
  open(value = 1): void {
    Atomics.store(this.#view, 0, value);
    Atomics.notify(this.#view, 0);
  }

  /** How many times the fixture's `onFree` ran. */
  get freed(): number {
    return Atomics.load(this.#view, 2);
  }
}

/** The error a promise rejects with; fails the test if it resolves. */
export async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

/**
 * esbuild keeps its service process (unref'd) for the life of the process, to reuse it; files whose
 * tests bundle (isoplug build, inline versions) stop it after each test so that it ends with no child
 * process left.
 */
export async function stopEsbuild(): Promise<void> {
  const { stop } = await import('esbuild');
  await stop();
}
