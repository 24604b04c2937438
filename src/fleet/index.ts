/**
 * `isoplug/fleet`: publish a plugin version once, and every host following the deployment converges on
 * it. The registry is a schema in your PostgreSQL; `pg` is an optional peer dependency, imported on first
 * use (`ERR_FLEET_NO_PG` without it).
 */
export { followDeployment, DeploymentFollower } from './follow.js';
export type { FollowerStatus, FollowerEvents, AppliedEvent } from './follow.js';
export { FOLLOW_DEFAULTS } from './follow-options.js';
export type { FollowDeploymentOptions } from './follow-options.js';
export { openRegistry, initRegistry, Registry } from './registry.js';
export type {
  RegistryOptions,
  InitOptions,
  DeploymentSpec,
  WriteOptions,
  PublishOptions,
  PublishResult,
} from './registry.js';
export { gcRegistry, GC_DEFAULTS } from './gc.js';
export type { GcOptions, GcResult } from './gc.js';
export type { Deployment, HostStatus, HostError } from './store.js';
export type { Convergence, WaitOptions } from './wait.js';
export type { RolloutTarget } from './plan.js';
export type { Database } from './pg.js';
export type { RegistryRoles } from './schema.js';
export { grants as registryGrants, SCHEMA_VERSION } from './schema.js';
export { keyId } from './sign.js';
export type { KeyLike } from './sign.js';
export * from './errors.js';
