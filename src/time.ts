import { timerDelay } from './options.js';

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

/** A deadline shared by several waits: `race(p, late)` resolves with p's value, or `late` once the deadline passed. */
export function deadline(ms: number): { race: <T, L>(p: Promise<T>, late: L) => Promise<T | L>; cancel: () => void } {
  const timer = sleep(ms);
  let passed = false;
  const over = timer.promise.then(() => {
    passed = true;
  });
  return {
    race: <T, L>(p: Promise<T>, late: L) => (passed ? Promise.resolve(late) : Promise.race([p, over.then(() => late)])),
    cancel: timer.cancel,
  };
}
