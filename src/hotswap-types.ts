/**
 * The public types of a hot swap: its states, the report of a swap, the events it emits. `hotswap.ts`
 * re-exports them.
 */
import type { CloseReport, Plugin, PluginStats } from './plugin.js';
import type { PluginCrashedError } from './shared/errors.js';
import type { CodeCacheStatus } from './shared/protocol.js';

export type HotSwapState = 'ready' | 'restarting' | 'failed' | 'closing' | 'closed';

/** What `swap()` resolves with, once the switch happened and the old version drained. */
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

/** Emitted at the moment traffic moves. */
export interface SwapEvent {
  readonly from: string;
  readonly to: string;
  readonly loadMs: number;
  readonly reason: 'swap' | 'restart';
}

export interface VersionInfo {
  readonly version: string;
  readonly role: 'current' | 'draining';
  readonly state: Plugin['state'];
  readonly stats: PluginStats;
}

export interface HotSwapEvents {
  swap: [event: SwapEvent];
  drained: [report: CloseReport];
  crash: [error: PluginCrashedError];
  restart: [event: { version: string; attempt: number }];
  failed: [error: PluginCrashedError];
  state: [state: HotSwapState, previous: HotSwapState];
}
