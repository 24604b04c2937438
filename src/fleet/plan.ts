/**
 * How a host moves from what it serves to what a revision asks for: a short list of steps on its hot swap.
 *
 * The stable half is `swap()`. The canary half is the gradual-rollout contract of the hot swap
 * (`rollout(specifier, { percent, … })`, `setPercent(n)`, `promote()`, `abort(reason?)`, and sticky keys
 * through `with({ key })`). The follower drives whatever object it is given through `RolloutTarget`, so a
 * hot swap without the rollout half still applies stable-only revisions, and refuses a canary with
 * `ERR_FLEET_CANARY_UNSUPPORTED` before changing anything.
 */
import type { SwapOptions } from 'isoplug';
import { FleetCanaryUnsupportedError } from './errors.js';

/** The parts of a hot swap a follower uses. `swap` is required; the rest is the rollout half. */
export interface RolloutTarget {
  swap(specifier: string, options?: SwapOptions): Promise<unknown>;
  /** Loads a candidate beside the current version and routes `percent`% of calls to it (sticky keys hashed with `salt`). */
  rollout?(specifier: string, options: SwapOptions & { percent: number; salt: string }): Promise<unknown>;
  /** Changes the candidate's share for calls that start from now on. */
  setPercent?(percent: number): void;
  /** The candidate becomes current; the previous current drains. */
  promote?(): Promise<unknown>;
  /** The candidate drains and closes; the current takes every call again. */
  abort?(reason?: unknown): Promise<unknown>;
}

/** What a host serves, in bundle hashes. */
export interface Serving {
  readonly stable: string;
  readonly canary: string | undefined;
  readonly percent: number;
  readonly salt: string | undefined;
}

export type Step =
  | { readonly kind: 'swap'; readonly sha256: string }
  | { readonly kind: 'rollout'; readonly sha256: string; readonly percent: number; readonly salt: string }
  | { readonly kind: 'setPercent'; readonly percent: number }
  | { readonly kind: 'promote' }
  | { readonly kind: 'abort' };

/** The steps from `from` to `to`; empty when nothing changes. */
export function plan(from: Serving, to: Serving): Step[] {
  const steps: Step[] = [];
  let canary = from.canary;
  let salt = from.salt;
  if (to.stable !== from.stable) {
    if (canary === to.stable) {
      // The canary under test becomes the stable version without loading it again.
      steps.push({ kind: 'promote' });
    } else {
      if (canary !== undefined) steps.push({ kind: 'abort' });
      steps.push({ kind: 'swap', sha256: to.stable });
    }
    canary = undefined;
    salt = undefined;
  }
  if (to.canary === undefined) {
    if (canary !== undefined) steps.push({ kind: 'abort' });
  } else if (canary === to.canary && salt === to.salt) {
    if (from.percent !== to.percent) steps.push({ kind: 'setPercent', percent: to.percent });
  } else {
    if (canary !== undefined) steps.push({ kind: 'abort' });
    steps.push({ kind: 'rollout', sha256: to.canary, percent: to.percent, salt: to.salt ?? '' });
  }
  return steps;
}

/** Throws `ERR_FLEET_CANARY_UNSUPPORTED` when a step needs a method `target` lacks. */
export function checkSupported(
  steps: readonly Step[],
  target: RolloutTarget,
  context: { pluginName: string; revision: number },
): void {
  for (const step of steps) {
    if (step.kind !== 'swap' && typeof target[step.kind] !== 'function')
      throw new FleetCanaryUnsupportedError(
        `revision ${context.revision} of ${context.pluginName} has a canary, and this hot swap has no ${step.kind}()`,
        context,
      );
  }
}

/** What serves once `step` is done. */
export function served(from: Serving, step: Step): Serving {
  switch (step.kind) {
    case 'swap':
      return { stable: step.sha256, canary: from.canary, percent: from.percent, salt: from.salt };
    case 'rollout':
      return { stable: from.stable, canary: step.sha256, percent: step.percent, salt: step.salt };
    case 'setPercent':
      return { ...from, percent: step.percent };
    case 'promote':
      return { stable: from.canary ?? from.stable, canary: undefined, percent: 0, salt: undefined };
    case 'abort':
      return { stable: from.stable, canary: undefined, percent: 0, salt: undefined };
  }
}

/** Runs one step; `file(sha256)` gives the cached file of a bundle. A version's label is its hash's first 12 digits. */
export async function runStep(step: Step, target: RolloutTarget, file: (sha256: string) => string): Promise<void> {
  switch (step.kind) {
    case 'swap':
      await target.swap(file(step.sha256), { version: step.sha256.slice(0, 12) });
      return;
    case 'rollout':
      await target.rollout!(file(step.sha256), {
        version: step.sha256.slice(0, 12),
        percent: step.percent,
        salt: step.salt,
      });
      return;
    case 'setPercent':
      target.setPercent!(step.percent);
      return;
    case 'promote':
      await target.promote!();
      return;
    case 'abort':
      await target.abort!('the deployment no longer has this canary');
      return;
  }
}
