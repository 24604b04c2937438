/** What a hot swap reports: its states, the reports its operations resolve with, and its events. */
import type { CloseReport, Plugin, PluginStats } from './plugin.js';
import type { RolloutFigures } from './rollout.js';
import type { PluginCrashedError } from './shared/errors.js';
import type { CodeCacheStatus } from './shared/protocol.js';

export type HotSwapState = 'ready' | 'restarting' | 'failed' | 'closing' | 'closed';

/** What `swap()` (and `promote()`) resolves with, once the switch happened and the old version drained. */
export interface SwapReport {
  /** The version swapped from. */
  readonly from: string;
  /** The version swapped to. */
  readonly to: string;
  /** Load of the new version, `onLoad` and the health check included. */
  readonly loadMs: number;
  /** The synchronous switch itself. */
  readonly switchMs: number;
  /** The old version's drain and close. */
  readonly drainMs: number;
  /** The old version's close report. */
  readonly close: CloseReport;
  /** True when the new version runs on the standby workers (`HotSwapOptions.standby`), false when it booted its own. */
  readonly standby: boolean;
  /** How the code cache served the new version's load (`LoadOptions.codeCache`). */
  readonly codeCache: CodeCacheStatus;
}

/** Emitted at the moment traffic moves (`reason: 'promote'` when a canary became current). */
export interface SwapEvent {
  readonly from: string;
  readonly to: string;
  readonly loadMs: number;
  readonly reason: 'swap' | 'restart' | 'promote';
}

export interface VersionInfo {
  readonly version: string;
  /** `canary` while a rollout runs beside the current version; `draining` once out of service. */
  readonly role: 'current' | 'canary' | 'draining';
  /** The share of new calls it takes: 100 for the current version without a canary, 0 while draining. */
  readonly percent: number;
  readonly state: Plugin['state'];
  readonly stats: PluginStats;
  /** Calls, failures and latency since the rollout began: for the current version and the canary while one runs. */
  readonly rollout: RolloutFigures | undefined;
}

/** What `rollout()` resolves with, once the candidate serves its share. */
export interface RolloutReport {
  /** The current version, which serves the rest. */
  readonly from: string;
  /** The candidate's version label. */
  readonly version: string;
  readonly percent: number;
  /** The salt of the sticky-key hash. */
  readonly salt: string;
  /** Load of the candidate, `onLoad` and the health check included. */
  readonly loadMs: number;
  /** True when the candidate runs on the standby workers. */
  readonly standby: boolean;
}

/** Emitted when a canary starts serving. */
export interface RolloutEvent {
  readonly from: string;
  readonly to: string;
  readonly percent: number;
  readonly salt: string;
  readonly loadMs: number;
}

/** Emitted when `setPercent()` changed the canary's share. */
export interface PercentEvent {
  readonly version: string;
  readonly percent: number;
  readonly previous: number;
}

/** Emitted when a canary stopped serving without being promoted. */
export interface AbortEvent {
  /** The canary's version label. */
  readonly version: string;
  /**
   * Why: the reason given to `abort()`; a `RolloutAbortedError` (`ERR_ROLLOUT_ABORTED`) when automatic;
   * a sentence when a `swap()` or a new `rollout()` replaced the canary.
   */
  readonly reason: unknown;
  /** True for an automatic abort: `abortOn`'s failure rate passed, or the canary crashed. */
  readonly auto: boolean;
  /** Calls the canary had settled (in `abortOn.windowMs` when given) and, of those, the failures. */
  readonly calls: number;
  readonly failures: number;
  /** `failures / calls` (0 when no call settled). */
  readonly failureRate: number;
}

/** What `abort()` resolves with, once the canary drained and closed. */
export interface AbortReport {
  readonly version: string;
  readonly reason: unknown;
  readonly drainMs: number;
  readonly close: CloseReport;
}

export interface HotSwapEvents {
  swap: [event: SwapEvent];
  drained: [report: CloseReport];
  crash: [error: PluginCrashedError];
  restart: [event: { version: string; attempt: number }];
  failed: [error: PluginCrashedError];
  state: [state: HotSwapState, previous: HotSwapState];
  rollout: [event: RolloutEvent];
  percent: [event: PercentEvent];
  promote: [event: SwapEvent];
  abort: [event: AbortEvent];
}
