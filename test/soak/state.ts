/**
 * Shared by the soak's runner and setup files within one test process. The runner is loaded by Node
 * and the setup files through vitest's module runner, so each gets its own instance of this module:
 * the state itself lives on a global symbol.
 */
import type { AsyncLocalStorage } from 'node:async_hooks';

export interface BackgroundTally {
  issued: number;
  resolved: number;
  /** Rejected with a string `code` (an accounted-for failure). */
  rejectedCoded: number;
  /** Rejected without a code: a bug. */
  rejectedUncoded: number;
  /** Not settled by its deadline (the call timeout plus a grace period), counted while it is still unsettled. */
  lost: number;
}

interface SoakState {
  /** Tests whose leak check found something left behind. */
  leftovers: number;
  /** What the end-of-file check found, by the test (or the file's hooks) that created it. */
  lateLeftovers: Array<{ owner: string; left: string }>;
  background: BackgroundTally | undefined;
  /** The async context of the background load: the leak check does not count what it creates. */
  backgroundScope: AsyncLocalStorage<boolean> | undefined;
}

const key = Symbol.for('isoplug.soak');
const scope = globalThis as { [key]?: SoakState };
export const soakState: SoakState = (scope[key] ??= {
  leftovers: 0,
  lateLeftovers: [],
  background: undefined,
  backgroundScope: undefined,
});
