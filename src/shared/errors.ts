/**
 * Every failure isoplug reports is an instance of a class below, with a stable `code`.
 * Match on `code` (or `instanceof`), never on the message text.
 *
 * `instanceof` holds across copies of this module (the ESM and the CJS build in one process): each class
 * is branded (`brand.ts`). A subclass an application defines has no brand of its own and keeps the
 * ordinary `instanceof`.
 */

import { brand, isInstance } from './brand.js';

/** What a plugin error concerns: the version, and the method when a call failed. */
export interface PluginErrorContext {
  /** The plugin's name (see `LoadOptions.name`). */
  pluginName?: string | undefined;
  /** The version label of the plugin version concerned. */
  version?: string | undefined;
  /** The method being called, when the error concerns a call. */
  method?: string | undefined;
  /** The underlying error, when there is one. */
  cause?: unknown;
}

export type PluginErrorCode =
  | 'ERR_PLUGIN_LOAD'
  | 'ERR_PLUGIN_ENTRY'
  | 'ERR_PLUGIN_COMPILE'
  | 'ERR_PLUGIN_NO_ESBUILD'
  | 'ERR_PLUGIN_NO_METHOD'
  | 'ERR_PLUGIN_CLOSED'
  | 'ERR_PLUGIN_TERMINATED'
  | 'ERR_PLUGIN_DESTROYED'
  | 'ERR_PLUGIN_CRASHED'
  | 'ERR_PLUGIN_OOM'
  | 'ERR_PLUGIN_TIMEOUT'
  | 'ERR_PLUGIN_ABORTED'
  | 'ERR_PLUGIN_CLONE'
  | 'ERR_PLUGIN_PAYLOAD_TOO_LARGE'
  | 'ERR_PLUGIN_NON_ERROR_THROWN'
  | 'ERR_SWAP_FAILED'
  | 'ERR_SWAP_SUPERSEDED'
  | 'ERR_ROLLOUT_NO_CANARY'
  | 'ERR_ROLLOUT_ABORTED'
  | 'ERR_MANAGER_RELOAD'
  | 'ERR_MANAGER_SCAN'
  | 'ERR_MANAGER_DEPENDENCY'
  | 'ERR_MANAGER_DEPENDENCY_CYCLE'
  | 'ERR_MANAGER_NOT_RELOADABLE'
  | 'ERR_MANAGER_NO_PLUGIN'
  | 'ERR_MANAGER_CLOSED'
  | 'ERR_MANAGER_JOB_CLONE'
  | 'ERR_MANAGER_PEER_CLOSED'
  | 'ERR_MANAGER_VAULT_DENIED';

/** Base class of every error isoplug creates. */
export abstract class PluginError extends Error {
  static {
    brand(this, 'PluginError');
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isInstance(this, value);
  }
  abstract readonly code: PluginErrorCode;
  readonly pluginName: string | undefined;
  readonly version: string | undefined;
  readonly method: string | undefined;

  constructor(message: string, context: PluginErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.pluginName = context.pluginName;
    this.version = context.version;
    this.method = context.method;
    Object.defineProperty(this, 'name', { value: new.target.name, configurable: true, writable: true });
  }
}

/** The version could not be loaded: missing file, syntax error, throw at import or in `onLoad`, ready timeout, exit at import. */
export class PluginLoadError extends PluginError {
  static {
    brand(this, 'PluginLoadError');
  }
  readonly code = 'ERR_PLUGIN_LOAD' as const;
}

/** A plugin path names nothing, or a folder whose package.json (`exports`/`main`) or index file gives no entry module. */
export class PluginEntryError extends PluginError {
  static {
    brand(this, 'PluginEntryError');
  }
  readonly code = 'ERR_PLUGIN_ENTRY' as const;
}

/** esbuild could not compile a TypeScript plugin (a syntax error, an import that resolves to nothing); `cause` is esbuild's. */
export class PluginCompileError extends PluginError {
  static {
    brand(this, 'PluginCompileError');
  }
  readonly code = 'ERR_PLUGIN_COMPILE' as const;
}

/**
 * A TypeScript plugin on a Node line without type stripping needs esbuild, which is not installed. The
 * fix: `npm install esbuild`, or ship the plugin built (`isoplug build`).
 */
export class PluginNoEsbuildError extends PluginError {
  static {
    brand(this, 'PluginNoEsbuildError');
  }
  readonly code = 'ERR_PLUGIN_NO_ESBUILD' as const;
}

/** The name is not one of the module's own exported functions; the call never reached the worker. */
export class PluginNoMethodError extends PluginError {
  static {
    brand(this, 'PluginNoMethodError');
  }
  readonly code = 'ERR_PLUGIN_NO_METHOD' as const;
}

/** The version is closing or closed: new calls are refused. */
export class PluginClosedError extends PluginError {
  static {
    brand(this, 'PluginClosedError');
  }
  readonly code = 'ERR_PLUGIN_CLOSED' as const;
}

/** The call was still running when `close()` reached its deadline and terminated the worker. */
export class PluginTerminatedError extends PluginError {
  static {
    brand(this, 'PluginTerminatedError');
  }
  readonly code = 'ERR_PLUGIN_TERMINATED' as const;
}

/** `destroy()` ended the version; `cause` is the reason given to it. */
export class PluginDestroyedError extends PluginError {
  static {
    brand(this, 'PluginDestroyedError');
  }
  readonly code = 'ERR_PLUGIN_DESTROYED' as const;
}

/** Extra facts about a dead worker. */
export interface CrashContext extends PluginErrorContext {
  /** The worker's exit code, when it exited. */
  exitCode?: number | undefined;
  /** The version's state when the worker died. */
  state?: string | undefined;
}

/** The worker died (uncaught error, unhandled rejection, `process.exit()`, any exit) while the call was in flight. */
export class PluginCrashedError extends PluginError {
  static {
    brand(this, 'PluginCrashedError');
  }
  readonly code: 'ERR_PLUGIN_CRASHED' | 'ERR_PLUGIN_OOM' = 'ERR_PLUGIN_CRASHED';
  readonly exitCode: number | undefined;
  readonly state: string | undefined;
  constructor(message: string, context: CrashContext = {}) {
    super(message, context);
    this.exitCode = context.exitCode;
    this.state = context.state;
  }
}

/** The worker ran out of memory under its `resourceLimits`. A kind of crash. */
export class PluginOutOfMemoryError extends PluginCrashedError {
  static {
    brand(this, 'PluginOutOfMemoryError');
  }
  override readonly code = 'ERR_PLUGIN_OOM' as const;
}

/** The call did not settle within its timeout. The worker may still be running it. */
export class PluginTimeoutError extends PluginError {
  static {
    brand(this, 'PluginTimeoutError');
  }
  readonly code = 'ERR_PLUGIN_TIMEOUT' as const;
  readonly timeoutMs: number | undefined;
  /** For a load: true when it timed out in the boot queue, before any worker was started for it. */
  readonly queued: boolean;
  constructor(message: string, context: PluginErrorContext & { timeoutMs?: number; queued?: boolean } = {}) {
    super(message, context);
    this.timeoutMs = context.timeoutMs;
    this.queued = context.queued ?? false;
  }
}

/** The call's `AbortSignal` fired; `cause` is the signal's reason. */
export class PluginAbortedError extends PluginError {
  static {
    brand(this, 'PluginAbortedError');
  }
  readonly code = 'ERR_PLUGIN_ABORTED' as const;
}

/** An argument or a result could not be sent across the thread boundary (structured clone refused it). */
export class PluginCloneError extends PluginError {
  static {
    brand(this, 'PluginCloneError');
  }
  readonly code = 'ERR_PLUGIN_CLONE' as const;
  /** Which way the value was travelling. */
  readonly direction: 'argument' | 'result';
  constructor(message: string, context: PluginErrorContext & { direction: 'argument' | 'result' }) {
    super(message, context);
    this.direction = context.direction;
  }
}

/** An argument or a result is larger than `maxPayloadBytes`; nothing was sent. */
export class PluginPayloadTooLargeError extends PluginError {
  static {
    brand(this, 'PluginPayloadTooLargeError');
  }
  readonly code = 'ERR_PLUGIN_PAYLOAD_TOO_LARGE' as const;
  readonly direction: 'argument' | 'result';
  readonly limitBytes: number | undefined;
  constructor(
    message: string,
    context: PluginErrorContext & { direction: 'argument' | 'result'; limitBytes: number | undefined },
  ) {
    super(message, context);
    this.direction = context.direction;
    this.limitBytes = context.limitBytes;
  }
}

/** Plugin code threw (or rejected with) something that is not an Error; `value` holds it when it could be cloned. */
export class PluginNonErrorThrownError extends PluginError {
  static {
    brand(this, 'PluginNonErrorThrownError');
  }
  readonly code = 'ERR_PLUGIN_NON_ERROR_THROWN' as const;
  readonly value: unknown;
  constructor(message: string, context: PluginErrorContext & { value?: unknown }) {
    super(message, context);
    this.value = context.value;
  }
}

/** `swap()` failed: the new version did not load, its `onLoad` threw or its health check failed. The old version keeps serving. */
export class SwapFailedError extends PluginError {
  static {
    brand(this, 'SwapFailedError');
  }
  readonly code = 'ERR_SWAP_FAILED' as const;
}

/** A later `swap()` replaced this one before it could start loading. */
export class SwapSupersededError extends PluginError {
  static {
    brand(this, 'SwapSupersededError');
  }
  readonly code = 'ERR_SWAP_SUPERSEDED' as const;
}

/** `setPercent()` or `promote()` on a hot swap that has no canary (none rolled out, or it was aborted). */
export class RolloutNoCanaryError extends PluginError {
  static {
    brand(this, 'RolloutNoCanaryError');
  }
  readonly code = 'ERR_ROLLOUT_NO_CANARY' as const;
}

/** What an automatic abort saw of the canary. */
export interface RolloutAbortedContext extends PluginErrorContext {
  /** Calls the canary had settled (in the window, with `abortOn.windowMs`). */
  calls?: number | undefined;
  /** Of those, the ones that failed. */
  failures?: number | undefined;
}

/**
 * A canary was aborted automatically: its failure rate passed `abortOn.failureRate`, or it crashed
 * (then `cause` is the crash). The reason of an automatic `abort` event; `version` is the canary's.
 */
export class RolloutAbortedError extends PluginError {
  static {
    brand(this, 'RolloutAbortedError');
  }
  readonly code = 'ERR_ROLLOUT_ABORTED' as const;
  readonly calls: number | undefined;
  readonly failures: number | undefined;
  constructor(message: string, context: RolloutAbortedContext = {}) {
    super(message, context);
    this.calls = context.calls;
    this.failures = context.failures;
  }
}

/** One plugin's failure in a reload. */
export interface ReloadFailure {
  readonly name: string;
  readonly error: unknown;
}

/** `manager.reload()` failed: nothing switched, the old set keeps serving. `failures` holds each failing plugin's cause. */
export class ManagerReloadError extends PluginError {
  static {
    brand(this, 'ManagerReloadError');
  }
  readonly code = 'ERR_MANAGER_RELOAD' as const;
  readonly failures: readonly ReloadFailure[];
  constructor(message: string, failures: readonly ReloadFailure[]) {
    super(message, { cause: failures[0]?.error });
    this.failures = failures;
  }
}

/** The plugin directory could not be read, two files claim one plugin name, or a folder has no entry module. */
export class ManagerScanError extends PluginError {
  static {
    brand(this, 'ManagerScanError');
  }
  readonly code = 'ERR_MANAGER_SCAN' as const;
}

/** A plugin depends on a plugin that is not there. `dependency` names it. */
export class ManagerDependencyError extends PluginError {
  static {
    brand(this, 'ManagerDependencyError');
  }
  readonly code = 'ERR_MANAGER_DEPENDENCY' as const;
  readonly dependency: string;
  constructor(message: string, context: PluginErrorContext & { dependency: string }) {
    super(message, context);
    this.dependency = context.dependency;
  }
}

/** The plugins' dependencies form a cycle; `cycle` lists it (first name repeated at the end). */
export class ManagerDependencyCycleError extends PluginError {
  static {
    brand(this, 'ManagerDependencyCycleError');
  }
  readonly code = 'ERR_MANAGER_DEPENDENCY_CYCLE' as const;
  readonly cycle: readonly string[];
  constructor(message: string, context: PluginErrorContext & { cycle: readonly string[] }) {
    super(message, context);
    this.cycle = context.cycle;
  }
}

/** A plugin must reload with a changed dependency, but its current version says `reloadable()` false. */
export class ManagerNotReloadableError extends PluginError {
  static {
    brand(this, 'ManagerNotReloadableError');
  }
  readonly code = 'ERR_MANAGER_NOT_RELOADABLE' as const;
}

/** No plugin of that name is loaded. */
export class ManagerNoPluginError extends PluginError {
  static {
    brand(this, 'ManagerNoPluginError');
  }
  readonly code = 'ERR_MANAGER_NO_PLUGIN' as const;
}

/** The manager is closing or closed (calls, reloads, and pending live jobs). */
export class ManagerClosedError extends PluginError {
  static {
    brand(this, 'ManagerClosedError');
  }
  readonly code = 'ERR_MANAGER_CLOSED' as const;
}

/** A live job's data cannot be cloned; nothing was scheduled. */
export class ManagerJobCloneError extends PluginError {
  static {
    brand(this, 'ManagerJobCloneError');
  }
  readonly code = 'ERR_MANAGER_JOB_CLONE' as const;
}

/** A dependency's channel closed (its version ended or its worker died): its pending and later calls reject. */
export class ManagerPeerClosedError extends PluginError {
  static {
    brand(this, 'ManagerPeerClosedError');
  }
  readonly code = 'ERR_MANAGER_PEER_CLOSED' as const;
}

/** A plugin asked the vault for something it does not offer (an unlisted service, an unknown operation). */
export class ManagerVaultDeniedError extends PluginError {
  static {
    brand(this, 'ManagerVaultDeniedError');
  }
  readonly code = 'ERR_MANAGER_VAULT_DENIED' as const;
}

/** Bad options or arguments. `code` is `ERR_PLUGIN_INVALID_OPTION`; `option` names it. */
export class PluginOptionTypeError extends TypeError {
  static {
    brand(this, 'PluginOptionTypeError');
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isInstance(this, value);
  }
  readonly code = 'ERR_PLUGIN_INVALID_OPTION' as const;
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
    Object.defineProperty(this, 'name', { value: 'PluginOptionTypeError', configurable: true, writable: true });
  }
}

/** A numeric option out of range. `code` is `ERR_PLUGIN_INVALID_OPTION`; `option` names it. */
export class PluginOptionRangeError extends RangeError {
  static {
    brand(this, 'PluginOptionRangeError');
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isInstance(this, value);
  }
  readonly code = 'ERR_PLUGIN_INVALID_OPTION' as const;
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}`);
    Object.defineProperty(this, 'name', { value: 'PluginOptionRangeError', configurable: true, writable: true });
  }
}
