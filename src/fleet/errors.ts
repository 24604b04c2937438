/**
 * The fleet's failures: each a class with a stable `code` (`ERR_FLEET_*`). Match on `code` (or
 * `instanceof`), never on the message text.
 */

import { brand, isInstance } from '../shared/brand.js';

export type FleetErrorCode =
  | 'ERR_FLEET_NO_PG'
  | 'ERR_FLEET_UNAVAILABLE'
  | 'ERR_FLEET_SCHEMA'
  | 'ERR_FLEET_PERMISSION'
  | 'ERR_FLEET_CONFLICT'
  | 'ERR_FLEET_NO_DEPLOYMENT'
  | 'ERR_FLEET_VERSION'
  | 'ERR_FLEET_INTEGRITY'
  | 'ERR_FLEET_SIGNATURE'
  | 'ERR_FLEET_CANARY_UNSUPPORTED'
  | 'ERR_FLEET_CLOSED';

/** What a fleet error concerns. */
export interface FleetErrorContext {
  /** The plugin (deployment) name. */
  pluginName?: string | undefined;
  /** The deployment revision concerned. */
  revision?: number | undefined;
  /** The bundle's SHA-256 (hex) concerned. */
  sha256?: string | undefined;
  cause?: unknown;
}

/** Base class of every fleet error. */
export abstract class FleetError extends Error {
  static {
    brand(this, 'FleetError');
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isInstance(this, value);
  }
  abstract readonly code: FleetErrorCode;
  readonly pluginName: string | undefined;
  readonly revision: number | undefined;
  readonly sha256: string | undefined;

  constructor(message: string, context: FleetErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.pluginName = context.pluginName;
    this.revision = context.revision;
    this.sha256 = context.sha256;
    Object.defineProperty(this, 'name', { value: new.target.name, configurable: true, writable: true });
  }
}

/** The optional peer dependency `pg` is not installed: `npm install pg`. */
export class FleetNoPgError extends FleetError {
  static {
    brand(this, 'FleetNoPgError');
  }
  readonly code = 'ERR_FLEET_NO_PG' as const;
}

/** The database cannot be reached, or the connection was lost during the operation. */
export class FleetUnavailableError extends FleetError {
  static {
    brand(this, 'FleetUnavailableError');
  }
  readonly code = 'ERR_FLEET_UNAVAILABLE' as const;
}

/** The registry's schema is missing or older than this isoplug: run `isoplug registry init`. */
export class FleetSchemaError extends FleetError {
  static {
    brand(this, 'FleetSchemaError');
  }
  readonly code = 'ERR_FLEET_SCHEMA' as const;
}

/** The database role lacks the privilege (a host role publishing, a host writing another host's row). */
export class FleetPermissionError extends FleetError {
  static {
    brand(this, 'FleetPermissionError');
  }
  readonly code = 'ERR_FLEET_PERMISSION' as const;
}

/** Another publish took the revision first (compare-and-set lost); `currentRevision` is the one that won. */
export class FleetConflictError extends FleetError {
  static {
    brand(this, 'FleetConflictError');
  }
  readonly code = 'ERR_FLEET_CONFLICT' as const;
  readonly currentRevision: number | undefined;
  constructor(message: string, context: FleetErrorContext & { currentRevision?: number | undefined }) {
    super(message, context);
    this.currentRevision = context.currentRevision;
  }
}

/** Nothing is deployed under that name (or not what the operation needs, such as a canary to promote). */
export class FleetNoDeploymentError extends FleetError {
  static {
    brand(this, 'FleetNoDeploymentError');
  }
  readonly code = 'ERR_FLEET_NO_DEPLOYMENT' as const;
}

/** A version (a SHA-256 prefix or `r<revision>`) names no bundle, or more than one. */
export class FleetVersionError extends FleetError {
  static {
    brand(this, 'FleetVersionError');
  }
  readonly code = 'ERR_FLEET_VERSION' as const;
}

/** A bundle's bytes do not hash to its SHA-256: it is never loaded. */
export class FleetIntegrityError extends FleetError {
  static {
    brand(this, 'FleetIntegrityError');
  }
  readonly code = 'ERR_FLEET_INTEGRITY' as const;
}

/** A bundle is unsigned, or no signature on it verifies with a trusted key: it is never loaded. */
export class FleetSignatureError extends FleetError {
  static {
    brand(this, 'FleetSignatureError');
  }
  readonly code = 'ERR_FLEET_SIGNATURE' as const;
}

/** A revision has a canary, and the hot swap it should be applied to has no rollout support. */
export class FleetCanaryUnsupportedError extends FleetError {
  static {
    brand(this, 'FleetCanaryUnsupportedError');
  }
  readonly code = 'ERR_FLEET_CANARY_UNSUPPORTED' as const;
}

/** The registry or follower is closed. */
export class FleetClosedError extends FleetError {
  static {
    brand(this, 'FleetClosedError');
  }
  readonly code = 'ERR_FLEET_CLOSED' as const;
}
