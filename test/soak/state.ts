/**
 * Shared by the soak's runner and setup files within one test process. The runner is loaded by Node
 * and the setup files through vitest's module runner, so each gets its own instance of this module:
 * the state itself lives on a global symbol.
 */
export interface BackgroundTally {
  issued: number;
  resolved: number;
  /** Rejected with a string `code` (an accounted-for failure). */
  rejectedCoded: number;
  /** Rejected without a code: a bug. */
  rejectedUncoded: number;
}

interface SoakState {
  /** Tests whose leak check found a worker or port left behind. */
  leftovers: number;
  background: BackgroundTally | undefined;
}

const key = Symbol.for('isoplug.soak');
const scope = globalThis as { [key]?: SoakState };
export const soakState: SoakState = (scope[key] ??= { leftovers: 0, background: undefined });
