/**
 * What isoplug publishes on `node:diagnostics_channel`, the place Node's libraries (undici, `http`) report
 * work done on someone's behalf and where APM and OpenTelemetry instrumentations hook in:
 *
 * - `tracingChannel('isoplug:call')`: every call to a version (accepted or refused), `start`/`end` around
 *   sending it, `asyncStart`/`asyncEnd` when its promise settles, `error` before them when it rejects.
 * - `tracingChannel('isoplug:load')`: loading one version (by `loadPlugin`, a hot swap or a restart).
 * - `tracingChannel('isoplug:swap')`: one swap, rollout or restart of a hot swap, from its request to its report.
 * - `tracingChannel('isoplug:close')`: closing one version, from `close()` to its report.
 * - `channel('isoplug:crash')`: a version crashed (a worker exited on its own).
 *
 * Each is checked with `hasSubscribers` first: without a subscriber nothing is allocated or published.
 * A traced operation's context object is the same for all its events, so a subscriber can keep its span on it.
 */
import { channel, tracingChannel, type TracingChannel } from 'node:diagnostics_channel';
import type { PluginCrashedError } from './shared/errors.js';

/** The context of `isoplug:call`. */
export interface CallContext {
  readonly pluginName: string;
  /** The version label. */
  readonly version: string;
  readonly method: string;
  /** What the call resolved with (set before `asyncStart`). */
  result?: unknown;
  /** Why it rejected (set before `error`). */
  error?: unknown;
}

/** The context of `isoplug:load`. */
export interface LoadContext {
  /** The module as given (a path, or a `file:` URL), as a string. */
  readonly specifier: string;
  /** The plugin's name and version label, once the module is read (before `asyncEnd`; at `start` only if given as options). */
  pluginName: string | undefined;
  version: string | undefined;
  /** Workers the version runs on. */
  readonly threads: number;
  /** The loaded version (a `Plugin`), set before `asyncStart`. */
  result?: unknown;
  error?: unknown;
}

/** The context of `isoplug:swap`. */
export interface SwapContext {
  /** The plugin's name as the hot swap knows it (its current version's). */
  readonly pluginName: string;
  /** `swap` for `hs.swap()`, `rollout` for `hs.rollout()` (a canary), `restart` for a restart after a crash. */
  readonly reason: 'swap' | 'rollout' | 'restart';
  /** The module the new version loads from, as a string. */
  readonly specifier: string;
  /** The version serving when the swap was requested. */
  readonly from: string | undefined;
  /** The `SwapReport`, set before `asyncStart`. */
  result?: unknown;
  error?: unknown;
}

/** The context of `isoplug:close`. */
export interface CloseContext {
  readonly pluginName: string;
  readonly version: string;
  /** The drain deadline. */
  readonly timeoutMs: number;
  /** The `CloseReport`, set before `asyncStart`. */
  result?: unknown;
  error?: unknown;
}

/** What `isoplug:crash` publishes. */
export interface CrashMessage {
  readonly pluginName: string;
  readonly version: string;
  /** The crashed worker's exit code. */
  readonly exitCode: number;
  /** The state it crashed in (`ready` or `closing`). */
  readonly state: string;
  /** The same error as the version's `crash` event. */
  readonly error: PluginCrashedError;
}

export const callTrace: TracingChannel<unknown, CallContext> = tracingChannel('isoplug:call');
export const loadTrace: TracingChannel<unknown, LoadContext> = tracingChannel('isoplug:load');
export const swapTrace: TracingChannel<unknown, SwapContext> = tracingChannel('isoplug:swap');
export const closeTrace: TracingChannel<unknown, CloseContext> = tracingChannel('isoplug:close');
export const crashChannel = channel('isoplug:crash');

/** `run()`, traced on `trace` with `context` while it has a subscriber. */
export function traced<C extends object, R>(
  trace: TracingChannel<unknown, C>,
  context: () => C,
  run: () => Promise<R>,
): Promise<R> {
  return trace.hasSubscribers ? trace.tracePromise(run, context()) : run();
}

/** The context of a swap from `current` to the module `specifier`, made only when someone subscribes. */
export function swapContext(
  current: { readonly name: string; readonly version: string },
  specifier: unknown,
  reason: SwapContext['reason'],
): () => SwapContext {
  const { name, version } = current;
  return () => ({ pluginName: name, reason, specifier: String(specifier), from: version });
}
