import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

/** Absolute path of a fixture under test/fixtures. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

const dirs: string[] = [];
afterEach(() => {
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
