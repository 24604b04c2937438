/** `setTimeout` cannot wait longer than this; larger finite values are clamped by us, not by Node. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The delay to hand to `setTimeout`, or undefined for no timer at all. */
export function timerDelay(ms: number): number | undefined {
  return Number.isFinite(ms) ? Math.min(ms, MAX_TIMER_MS) : undefined;
}

/** A cancellable, unref'd sleep. `Infinity` never fires. */
export function sleep(ms: number): { promise: Promise<void>; cancel: () => void } {
  const delay = timerDelay(ms);
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => {
    if (delay === undefined) return;
    timer = setTimeout(resolve, delay);
    timer.unref();
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/** A deadline shared by several waits, which can be brought forward but never pushed back. */
export interface Deadline {
  /** Resolves with p's value, or with `late` once the deadline has passed. */
  race<T, L>(p: Promise<T>, late: L): Promise<T | L>;
  /** Brings the deadline forward to `ms` from now, when that is sooner. */
  shorten(ms: number): void;
  cancel(): void;
  /** True once the deadline has passed. */
  readonly passed: boolean;
  /** Milliseconds left before the deadline (0 once passed, `Infinity` when there is none). */
  left(): number;
}

export function deadline(ms: number): Deadline {
  let at = performance.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  let passed = false;
  let fire!: () => void;
  const over = new Promise<void>((resolve) => (fire = resolve)).then(() => {
    passed = true;
  });
  const arm = (delayMs: number) => {
    clearTimeout(timer);
    const delay = timerDelay(delayMs);
    if (delay === undefined) return;
    timer = setTimeout(fire, delay);
    timer.unref();
  };
  arm(ms);
  return {
    race: <T, L>(p: Promise<T>, late: L) => (passed ? Promise.resolve(late) : Promise.race([p, over.then(() => late)])),
    shorten(next: number) {
      const nextAt = performance.now() + next;
      if (nextAt >= at) return;
      at = nextAt;
      arm(next);
    },
    cancel: () => clearTimeout(timer),
    get passed() {
      return passed;
    },
    left: () => (passed ? 0 : Math.max(0, at - performance.now())),
  };
}
