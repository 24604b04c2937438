/** What a following host knows and tells about itself, and how its failures are described. */
import { isConnectionError } from './pg.js';
import type { HostError } from './store.js';

/** What a following host knows about itself. */
export interface FollowerStatus {
  readonly host: string;
  readonly name: string;
  /** `ok`: the newest revision seen is applied (or refused before); `failed`: the last one tried was refused; `applying`. */
  readonly state: 'ok' | 'failed' | 'applying';
  /** The revision applied in full; undefined when the first one served came with a part that was refused. */
  readonly revision: number | undefined;
  /** The newest revision read from the registry. */
  readonly latestRevision: number | undefined;
  /** SHA-256 of the stable bundle serving. */
  readonly stable: string;
  readonly canary: string | undefined;
  readonly percent: number;
  /** The hot swap's current version label. */
  readonly version: string;
  /** Why the last revision tried was refused (`state` `failed`). */
  readonly error: HostError | undefined;
  /** Connected to the database (listening). While not, the host serves what it has and keeps trying. */
  readonly connected: boolean;
  /** Since when it is disconnected. */
  readonly disconnectedSince: Date | undefined;
  /** The last operational failure (connection, status report), cleared by the next success. */
  readonly lastError: HostError | undefined;
  /**
   * Serving the revision the local cache held at boot (the database was unreachable then); false once
   * the database has been read.
   */
  readonly fromCache: boolean;
}

export interface AppliedEvent {
  readonly revision: number;
  readonly stable: string;
  readonly canary: string | undefined;
  readonly percent: number;
  readonly version: string;
}

export interface FollowerEvents {
  /** A revision is applied in full. */
  applied: [event: AppliedEvent];
  /** A revision was refused; the previous version keeps serving. */
  rejected: [event: { revision: number; error: HostError }];
  connected: [];
  disconnected: [error: Error];
}

/** Errors that a later try may not meet (the database, the disk); the others refuse the revision for good. */
export function transient(error: unknown): boolean {
  if (isConnectionError(error)) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

/** A failure as the host reports it: its code, and its message followed by its causes' (the root cause last). */
export function describe(error: unknown, revision?: number): HostError {
  const code = (error as { code?: unknown } | null)?.code;
  let message = error instanceof Error ? error.message : String(error);
  let cause = (error as { cause?: unknown } | null)?.cause;
  for (let depth = 0; cause instanceof Error && depth < 5; depth++, cause = cause.cause) {
    if (!message.includes(cause.message)) message += `: ${cause.message}`;
  }
  return {
    ...(revision === undefined ? {} : { revision }),
    code: typeof code === 'string' ? code : 'ERR_UNKNOWN',
    message: message.length > 1000 ? `${message.slice(0, 999)}…` : message,
  };
}
