// How a host moves from what it serves to what a revision asks for, as steps on its hot swap; and how
// --wait sorts hosts. Pure functions: no database, no workers.
import { describe, expect, it } from 'vitest';
import { checkSupported, plan, served, type RolloutTarget, type Serving } from '../../src/fleet/plan.js';
import type { HostStatus } from '../../src/fleet/store.js';
import { classify } from '../../src/fleet/wait.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
const stable = (hash: string): Serving => ({ stable: hash, canary: undefined, percent: 0, salt: undefined });
const canary = (base: string, hash: string, percent: number, salt = 's1'): Serving => ({
  stable: base,
  canary: hash,
  percent,
  salt,
});

describe('plan', () => {
  it.each([
    ['nothing changes', stable(A), stable(A), []],
    ['a new stable version: swap', stable(A), stable(B), [{ kind: 'swap', sha256: B }]],
    [
      'a canary appears: rollout',
      stable(A),
      canary(A, B, 10),
      [{ kind: 'rollout', sha256: B, percent: 10, salt: 's1' }],
    ],
    [
      'the same canary at a new percent: setPercent',
      canary(A, B, 10),
      canary(A, B, 50),
      [{ kind: 'setPercent', percent: 50 }],
    ],
    ['the canary becomes stable: promote, no reload', canary(A, B, 50), stable(B), [{ kind: 'promote' }]],
    ['the canary goes away: abort', canary(A, B, 50), stable(A), [{ kind: 'abort' }]],
    [
      'another canary: abort, then rollout',
      canary(A, B, 50),
      canary(A, C, 5, 's2'),
      [{ kind: 'abort' }, { kind: 'rollout', sha256: C, percent: 5, salt: 's2' }],
    ],
    [
      'the same canary with a new salt (a new rollout of it): abort, then rollout',
      canary(A, B, 50),
      canary(A, B, 50, 's2'),
      [{ kind: 'abort' }, { kind: 'rollout', sha256: B, percent: 50, salt: 's2' }],
    ],
    [
      'a new stable while a canary runs: abort, swap',
      canary(A, B, 50),
      stable(C),
      [{ kind: 'abort' }, { kind: 'swap', sha256: C }],
    ],
    [
      'promote the canary and start the next one',
      canary(A, B, 50),
      canary(B, C, 1, 's3'),
      [{ kind: 'promote' }, { kind: 'rollout', sha256: C, percent: 1, salt: 's3' }],
    ],
  ] as const)('%s', (_title, from, to, steps) => {
    expect(plan(from, to)).toEqual(steps);
    // Doing the steps gets there.
    expect(plan(from, to).reduce(served, from)).toEqual(to);
  });

  it('a step the hot swap lacks is refused before anything runs, with ERR_FLEET_CANARY_UNSUPPORTED', () => {
    const swapOnly: RolloutTarget = { swap: () => Promise.resolve() };
    const context = { pluginName: 'p', revision: 3 };
    expect(() => checkSupported(plan(stable(A), stable(B)), swapOnly, context)).not.toThrow();
    expect(() => checkSupported(plan(stable(A), canary(A, B, 10)), swapOnly, context)).toThrow(
      expect.objectContaining({ code: 'ERR_FLEET_CANARY_UNSUPPORTED', revision: 3 }),
    );
  });
});

describe('classify (--wait)', () => {
  const host = (id: string, fields: Partial<HostStatus>): HostStatus =>
    ({ host: id, revision: 1, state: 'ok', error: undefined, stale: false, ...fields }) as HostStatus;

  it('sorts hosts into converged, failed, pending and stale for a revision', () => {
    const sorted = classify(
      [
        host('on', { revision: 5 }),
        host('ahead', { revision: 6 }),
        host('refused', { state: 'failed', error: { revision: 5, code: 'ERR_SWAP_FAILED', message: '' } }),
        host('refused-before', { state: 'failed', error: { revision: 4, code: 'ERR_SWAP_FAILED', message: '' } }),
        host('behind', { revision: 4 }),
        host('gone', { revision: 2, stale: true }),
      ],
      5,
      new Set(['gone']),
    );
    expect({
      converged: sorted.converged.map((h) => h.host),
      failed: sorted.failed.map((h) => h.host),
      pending: sorted.pending.map((h) => h.host),
      stale: sorted.stale.map((h) => h.host),
    }).toEqual({
      converged: ['on', 'ahead'],
      failed: ['refused'],
      pending: ['refused-before', 'behind'],
      stale: ['gone'],
    });
  });
});
