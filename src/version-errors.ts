/**
 * Every error a version (and the hot swap routing to it) reports, built in one place with the same
 * context: the plugin's name, the version label, the method, the cause. Plugin, its boot, close path
 * and dispatch, and HotSwap each hold a `VersionErrors` for the version concerned instead of spelling
 * `{ pluginName, version, method, cause }` out at each throw. Richer envelopes (a call id, timings) would
 * be added here once, for every error at once.
 */
import { unpack, type Pack } from './shared/envelope.js';
import {
  PluginAbortedError,
  PluginCloneError,
  PluginClosedError,
  PluginCrashedError,
  PluginDestroyedError,
  PluginLoadError,
  PluginNoMethodError,
  PluginNonErrorThrownError,
  PluginOutOfMemoryError,
  PluginPayloadTooLargeError,
  PluginTerminatedError,
  PluginTimeoutError,
  SwapFailedError,
  SwapSupersededError,
  RolloutAbortedError,
  RolloutNoCanaryError,
  type PluginErrorContext,
} from './shared/errors.js';

export class VersionErrors {
  readonly #label: string;

  constructor(
    readonly name: string,
    readonly version: string,
  ) {
    this.#label = `${name}@${version}`;
  }

  context(method?: string, cause?: unknown): PluginErrorContext {
    return { pluginName: this.name, version: this.version, method, cause };
  }

  // Refusals: the version is not serving.

  closed(method: string, state: string): PluginClosedError {
    return new PluginClosedError(`plugin ${this.#label} is ${state}; ${method}() refused`, this.context(method));
  }

  crashedRefusal(method: string, crash: unknown, exitCode: number | undefined): PluginCrashedError {
    return new PluginCrashedError(`plugin ${this.#label} crashed; ${method}() refused`, {
      ...this.context(method, crash),
      exitCode,
      state: 'crashed',
    });
  }

  destroyedRefusal(method: string, reason: unknown): PluginDestroyedError {
    return new PluginDestroyedError(
      `plugin ${this.#label} was destroyed; ${method}() refused`,
      this.context(method, reason),
    );
  }

  noMethod(method: string): PluginNoMethodError {
    return new PluginNoMethodError(`plugin ${this.#label} has no method ${method}`, this.context(method));
  }

  // A call's own end: aborted, timed out, too large, not cloneable.

  abortedBeforeStart(method: string, reason: unknown): PluginAbortedError {
    return new PluginAbortedError(`${method}() aborted before it started`, this.context(method, reason));
  }

  aborted(method: string, reason: unknown, during = ''): PluginAbortedError {
    return new PluginAbortedError(`${method}() aborted${during}`, this.context(method, reason));
  }

  timeout(method: string, timeoutMs: number, during = ''): PluginTimeoutError {
    return new PluginTimeoutError(`${method}() timed out after ${timeoutMs} ms${during}`, {
      ...this.context(method),
      timeoutMs,
    });
  }

  argumentTooLarge(method: string, limitBytes: number): PluginPayloadTooLargeError {
    return new PluginPayloadTooLargeError(
      `${method}(): the arguments are larger than maxPayloadBytes (${limitBytes})`,
      { ...this.context(method), direction: 'argument', limitBytes },
    );
  }

  resultTooLarge(method: string, limitBytes: number | undefined): PluginPayloadTooLargeError {
    return new PluginPayloadTooLargeError(`${method}(): the result is larger than maxPayloadBytes`, {
      ...this.context(method),
      direction: 'result',
      limitBytes,
    });
  }

  argumentUnsendable(method: string, cause: unknown): PluginCloneError {
    return new PluginCloneError(`${method}(): an argument cannot be sent to the plugin`, {
      ...this.context(method, cause),
      direction: 'argument',
    });
  }

  /** The worker could not read the message that carried the call. */
  argumentLost(method: string): PluginCloneError {
    const cause = Object.assign(new RangeError('the plugin could not read the message that carried this call'), {
      code: 'ERR_PLUGIN_MESSAGE_LOST',
    });
    return new PluginCloneError(`${method}(): the plugin could not read an argument (the message was lost)`, {
      ...this.context(method, cause),
      direction: 'argument',
    });
  }

  resultUnsendable(method: string, error: Pack): PluginCloneError {
    return new PluginCloneError(`${method}(): the result cannot be sent to the host`, {
      ...this.context(method, this.remote(error, method)),
      direction: 'result',
    });
  }

  /** Rebuilds what plugin code threw, tagged with where it came from (`error.plugin`). */
  remote(pack: Pack, method: string | undefined): Error {
    const error = unpack(
      pack,
      (value) =>
        new PluginNonErrorThrownError(`${method ?? 'plugin'} threw a non-Error value: ${value.text}`, {
          ...this.context(method),
          value: value.value,
        }),
    );
    if (!(error instanceof PluginNonErrorThrownError)) {
      Object.defineProperty(error, 'plugin', {
        value: { name: this.name, version: this.version, method },
        configurable: true,
      });
    }
    return error;
  }

  // The version's end: a crash, a terminate, a destroy.

  /** A worker exited on its own in `state`; out of memory when its cause says so. */
  crashed(exitCode: number, state: string, cause: unknown, method?: string): PluginCrashedError {
    const causeCode = (cause as { code?: unknown } | undefined)?.code;
    const oom = causeCode === 'ERR_WORKER_OUT_OF_MEMORY' || causeCode === 'ERR_PLUGIN_ARRAYBUFFER_LIMIT';
    const what = oom ? 'ran out of memory' : `exited with code ${exitCode}`;
    const running = method ? ` while running ${method}()` : '';
    const message = `plugin ${this.#label} ${what} during ${state} state${running}`;
    const context = { ...this.context(method, cause), exitCode, state };
    return oom ? new PluginOutOfMemoryError(message, context) : new PluginCrashedError(message, context);
  }

  terminated(method: string): PluginTerminatedError {
    return new PluginTerminatedError(`${method}() was running when plugin ${this.#label} ended`, this.context(method));
  }

  terminatedAtDeadline(method: string, timeoutMs: number): PluginTerminatedError {
    return new PluginTerminatedError(
      `${method}() was still running at the close deadline (${timeoutMs} ms)`,
      this.context(method),
    );
  }

  destroyed(method: string, reason: unknown): PluginDestroyedError {
    return new PluginDestroyedError(
      `${method}() ended: plugin ${this.#label} was destroyed`,
      this.context(method, reason),
    );
  }

  // Load.

  load(url: string, stage: string | undefined, cause: unknown): PluginLoadError {
    const at = stage === undefined ? '' : ` (${stage})`;
    return new PluginLoadError(`cannot load plugin ${this.name} from ${url}${at}`, this.context(undefined, cause));
  }

  readyTimeout(timeoutMs: number): PluginTimeoutError {
    return new PluginTimeoutError(`not ready within ${timeoutMs} ms`, { ...this.context(), timeoutMs });
  }

  dataUnsendable(cause: unknown): PluginCloneError {
    return new PluginCloneError('options.data cannot be sent to the plugin', {
      ...this.context(undefined, cause),
      direction: 'argument',
    });
  }

  exitedWhileLoading(exitCode: number | undefined): PluginCrashedError {
    return new PluginCrashedError(`the worker exited with code ${exitCode} while loading`, {
      ...this.context(),
      exitCode,
      state: 'loading',
    });
  }

  // The hot swap routing to this version.

  failedRefusal(method: string, lastCrash: PluginCrashedError | undefined): PluginCrashedError {
    return new PluginCrashedError(`plugin ${this.name} failed; ${method}() refused`, {
      ...this.context(method, lastCrash),
      exitCode: lastCrash?.exitCode,
      state: 'failed',
    });
  }

  /** The hot swap is closing or closed: a call or a swap refused, or a swap ended by the close. */
  hotSwapClosed(message: string, method?: string): PluginClosedError {
    return new PluginClosedError(message, this.context(method));
  }

  superseded(message: string): SwapSupersededError {
    return new SwapSupersededError(message, this.context());
  }

  swapFailed(message: string, cause: unknown): SwapFailedError {
    return new SwapFailedError(`swap failed: ${message}`, this.context(undefined, cause));
  }

  /** `setPercent()`/`promote()` with no canary serving. */
  noCanary(operation: string): RolloutNoCanaryError {
    return new RolloutNoCanaryError(`${operation}: plugin ${this.name} has no canary`, this.context());
  }

  /** The canary (this version) was aborted automatically. */
  rolloutAborted(message: string, cause: unknown, calls?: number, failures?: number): RolloutAbortedError {
    return new RolloutAbortedError(`canary ${this.#label} aborted: ${message}`, {
      ...this.context(undefined, cause),
      calls,
      failures,
    });
  }

  healthCheckTimeout(timeoutMs: number): PluginTimeoutError {
    return new PluginTimeoutError(`health check did not settle within ${timeoutMs} ms`, {
      ...this.context(),
      timeoutMs,
    });
  }
}

/** The ArrayBuffer guard's cause (F7): a worker's isolate holds more ArrayBuffer memory than allowed. */
export function arrayBufferLimit(bytes: number, limit: number): RangeError {
  return Object.assign(
    new RangeError(`the worker holds ${bytes} bytes of ArrayBuffers, over maxArrayBufferMb (${limit} bytes)`),
    { code: 'ERR_PLUGIN_ARRAYBUFFER_LIMIT', bytes, limit },
  );
}
