/** Shared by the soak's runner and setup files within one test process. */
export interface BackgroundTally {
  issued: number;
  resolved: number;
  /** Rejected with a string `code` (an accounted-for failure). */
  rejectedCoded: number;
  /** Rejected without a code: a bug. */
  rejectedUncoded: number;
}

export const soakState = {
  /** Tests whose leak check found a worker or port left behind. */
  leftovers: 0,
  background: undefined as BackgroundTally | undefined,
};
