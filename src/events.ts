import type { EventEmitter } from 'node:events';

/**
 * Emits without letting a listener's exception unwind our state machine: a throwing listener must not
 * leave a swap unsettled or a worker unretired. The exception is rethrown on the next tick, where it
 * surfaces as Node surfaces any listener error outside a caller's stack (an uncaught exception).
 */
export function emitSafely(emitter: EventEmitter, event: string, ...args: unknown[]): void {
  try {
    emitter.emit(event, ...args);
  } catch (error) {
    process.nextTick(() => {
      throw error;
    });
  }
}
