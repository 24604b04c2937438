/**
 * The registry of calls in flight (src/inflight.ts) on its own, with fake timers: the wait-group close()
 * drains, the shared default-timeout timer, one abort listener per signal, and the lane counts least-busy
 * dispatch reads. The same behaviours through real workers are in calls, timeout, close and threads tests;
 * here each rule is pinned where a change to it shows.
 */
import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InFlight, type InFlightHooks, type PendingCall } from '../src/inflight.js';

interface Recorder extends InFlightHooks {
  readonly log: string[];
}

function recorder(): Recorder {
  const log: string[] = [];
  return {
    log,
    busy: () => log.push('busy'),
    idle: () => log.push('idle'),
    expire: (call) => log.push(`expire ${call.id}`),
    abort: (call) => log.push(`abort ${call.id}`),
  };
}

function pending(id: number, over: Partial<PendingCall> = {}): PendingCall {
  return {
    id,
    method: 'm',
    lane: 0,
    seq: 0,
    resolve: () => {},
    reject: () => {},
    expiresAt: undefined,
    timer: undefined,
    signal: undefined,
    ...over,
  };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('InFlight: the wait-group', () => {
  it('calls busy on 0 → 1 and idle on 1 → 0 only, and a call leaves once', () => {
    const hooks = recorder();
    const inflight = new InFlight(hooks);
    inflight.add(pending(1));
    inflight.add(pending(2));
    expect(inflight.size).toBe(2);
    expect(inflight.get(1)?.id).toBe(1);
    expect(inflight.take(1)?.id).toBe(1);
    expect(inflight.take(1)).toBeUndefined();
    expect(inflight.get(1)).toBeUndefined();
    expect(hooks.log).toEqual(['busy']);
    expect(inflight.take(2)?.id).toBe(2);
    expect(inflight.size).toBe(0);
    inflight.add(pending(3));
    expect(hooks.log).toEqual(['busy', 'idle', 'busy']);
  });

  it('whenIdle resolves at once when empty, else once the last call leaves, and wakes each waiter once', async () => {
    const inflight = new InFlight(recorder());
    let woken = 0;
    await inflight.whenIdle();
    inflight.add(pending(1));
    inflight.add(pending(2));
    const first = inflight.whenIdle().then(() => woken++);
    const second = inflight.whenIdle().then(() => woken++);
    inflight.take(1);
    await Promise.resolve();
    expect(woken).toBe(0);
    inflight.take(2);
    await Promise.all([first, second]);
    expect(woken).toBe(2);
    // The waiters were handed over: a later idle wakes no one twice.
    inflight.add(pending(3));
    inflight.take(3);
    await Promise.resolve();
    expect(woken).toBe(2);
  });

  it('rejectAll rejects the calls `which` picks with their own error, takes them, and counts them', () => {
    const inflight = new InFlight(recorder());
    const rejected: string[] = [];
    for (const [id, lane] of [
      [1, 0],
      [2, 1],
      [3, 0],
    ] as const) {
      inflight.add(pending(id, { lane, reject: (error) => rejected.push(`${id}:${error.message}`) }));
    }
    const n = inflight.rejectAll(
      (call) => new Error(`e${call.id}`),
      (call) => call.lane === 0,
    );
    expect(n).toBe(2);
    expect(rejected).toEqual(['1:e1', '3:e3']);
    expect(inflight.size).toBe(1);
    expect(inflight.rejectAll((call) => new Error(`e${call.id}`))).toBe(1);
    expect(rejected).toEqual(['1:e1', '3:e3', '2:e2']);
    expect(inflight.size).toBe(0);
  });

  it("clears a call's own timer when it leaves", () => {
    const inflight = new InFlight(recorder());
    const fired = vi.fn();
    const timer = setTimeout(fired, 1_000);
    inflight.add(pending(1, { timer }));
    expect(vi.getTimerCount()).toBe(1);
    inflight.take(1);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(2_000);
    expect(fired).not.toHaveBeenCalled();
  });
});

describe('InFlight: lanes for least-busy dispatch', () => {
  it('picks the lane with the fewest calls and given-up work; ties go to the lowest', () => {
    const inflight = new InFlight(recorder());
    expect(inflight.leastBusy(3)).toBe(0);
    inflight.add(pending(1, { lane: 0 }));
    expect(inflight.leastBusy(3)).toBe(1);
    inflight.add(pending(2, { lane: 1 }));
    expect(inflight.leastBusy(3)).toBe(2);
    inflight.add(pending(3, { lane: 2 }));
    // 1, 1, 1: the first.
    expect(inflight.leastBusy(3)).toBe(0);
    inflight.occupy(0, 1);
    inflight.add(pending(4, { lane: 1 }));
    // 2, 2, 1
    expect(inflight.leastBusy(3)).toBe(2);
    // Only the lanes asked for count: of [0, 2), lane 0 and lane 1 tie at 2.
    expect(inflight.leastBusy(2)).toBe(0);
    inflight.take(4);
    // 2, 1, 1: the lower of the two.
    expect(inflight.leastBusy(3)).toBe(1);
    inflight.occupy(0, -2);
    // Lane 0 counts 0 now.
    expect(inflight.leastBusy(3)).toBe(0);
  });

  it('a lane never used counts as idle, and a lane idle again is chosen again', () => {
    const inflight = new InFlight(recorder());
    inflight.add(pending(1, { lane: 0 }));
    inflight.add(pending(2, { lane: 0 }));
    expect(inflight.leastBusy(2)).toBe(1);
    inflight.add(pending(3, { lane: 1 }));
    inflight.add(pending(4, { lane: 1 }));
    inflight.add(pending(5, { lane: 1 }));
    expect(inflight.leastBusy(2)).toBe(0);
    inflight.take(1);
    inflight.take(2);
    expect(inflight.leastBusy(2)).toBe(0);
    inflight.take(3);
    inflight.take(4);
    inflight.take(5);
    expect(inflight.leastBusy(2)).toBe(0);
  });
});

describe('InFlight: one abort listener per signal', () => {
  it('adds one listener for every call on a signal, removes it when the last leaves', () => {
    const inflight = new InFlight(recorder());
    const controller = new AbortController();
    const { signal } = controller;
    inflight.add(pending(1, { signal }));
    inflight.add(pending(2, { signal }));
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    inflight.take(1);
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    inflight.take(2);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    // A new call on the same signal watches it again.
    inflight.add(pending(3, { signal }));
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    inflight.take(3);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('an abort takes every call on that signal, in order, before telling the hook; others stay', () => {
    const log: string[] = [];
    const inflight: InFlight = new InFlight({
      busy: () => {},
      idle: () => log.push('idle'),
      expire: () => {},
      abort: (call) => log.push(`abort ${call.id}, in flight ${inflight.get(call.id) ? 'yes' : 'no'}`),
    });
    const controller = new AbortController();
    const other = new AbortController();
    inflight.add(pending(1, { signal: controller.signal }));
    inflight.add(pending(2, { signal: other.signal }));
    inflight.add(pending(3, { signal: controller.signal }));
    controller.abort();
    expect(log).toEqual(['abort 1, in flight no', 'abort 3, in flight no']);
    expect(inflight.size).toBe(1);
    expect(getEventListeners(other.signal, 'abort')).toHaveLength(1);
    other.abort();
    expect(log).toEqual(['abort 1, in flight no', 'abort 3, in flight no', 'idle', 'abort 2, in flight no']);
  });
});

describe('InFlight: the shared timeout timer', () => {
  it('expires calls oldest first, each at its own deadline, and re-arms for the next', () => {
    const hooks = recorder();
    const inflight = new InFlight(hooks);
    const t0 = performance.now();
    inflight.add(pending(1, { expiresAt: t0 + 100 }));
    vi.advanceTimersByTime(30);
    inflight.add(pending(2, { expiresAt: t0 + 130 }));
    inflight.add(pending(3, { expiresAt: undefined }));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(69);
    expect(hooks.log).toEqual(['busy']);
    vi.advanceTimersByTime(1);
    expect(hooks.log).toEqual(['busy', 'expire 1']);
    expect(inflight.get(1)).toBeUndefined();
    vi.advanceTimersByTime(29);
    expect(hooks.log).toEqual(['busy', 'expire 1']);
    vi.advanceTimersByTime(1);
    expect(hooks.log).toEqual(['busy', 'expire 1', 'expire 2']);
    // Call 3 has its own (no) deadline: nothing is armed for it.
    expect(inflight.size).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a timer armed for a call that left finds nothing due and re-arms for the oldest still in flight', () => {
    const hooks = recorder();
    const inflight = new InFlight(hooks);
    const t0 = performance.now();
    inflight.add(pending(1, { expiresAt: t0 + 100 }));
    vi.advanceTimersByTime(50);
    inflight.add(pending(2, { expiresAt: t0 + 150 }));
    inflight.take(1);
    vi.advanceTimersByTime(50);
    expect(hooks.log).toEqual(['busy']);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(49);
    expect(hooks.log).toEqual(['busy']);
    vi.advanceTimersByTime(1);
    // The call leaves (the registry is idle) before the hook hears of it.
    expect(hooks.log).toEqual(['busy', 'idle', 'expire 2']);
  });

  it('expires every call due at once in one firing', () => {
    const hooks = recorder();
    const inflight = new InFlight(hooks);
    const at = performance.now() + 10;
    inflight.add(pending(1, { expiresAt: at }));
    inflight.add(pending(2, { expiresAt: at }));
    vi.advanceTimersByTime(10);
    expect(hooks.log).toEqual(['busy', 'expire 1', 'idle', 'expire 2']);
    expect(inflight.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stays armed when the registry goes idle, fires once more finding nothing, and stop() clears it', () => {
    const hooks = recorder();
    const inflight = new InFlight(hooks);
    inflight.add(pending(1, { expiresAt: performance.now() + 100 }));
    inflight.take(1);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(100);
    expect(vi.getTimerCount()).toBe(0);
    expect(hooks.log).toEqual(['busy', 'idle']);

    inflight.add(pending(2, { expiresAt: performance.now() + 100 }));
    expect(vi.getTimerCount()).toBe(1);
    inflight.stop();
    expect(vi.getTimerCount()).toBe(0);
    // Stopped means disarmed, not broken: a later call with a deadline arms it again.
    inflight.take(2);
    inflight.add(pending(3, { expiresAt: performance.now() + 10 }));
    vi.advanceTimersByTime(10);
    expect(hooks.log).toEqual(['busy', 'idle', 'busy', 'idle', 'busy', 'idle', 'expire 3']);
  });

  it('arms the timer for the deadline itself, not a poll before it', () => {
    const hooks = recorder();
    const inflight = new InFlight(hooks);
    const t0 = performance.now();
    inflight.add(pending(1, { expiresAt: t0 + 100 }));
    inflight.add(pending(2, { expiresAt: t0 + 250 }));
    vi.advanceTimersToNextTimer();
    expect(performance.now() - t0).toBe(100);
    expect(hooks.log).toEqual(['busy', 'expire 1']);
    vi.advanceTimersToNextTimer();
    expect(performance.now() - t0).toBe(250);
    expect(hooks.log).toEqual(['busy', 'expire 1', 'idle', 'expire 2']);
  });

  it('a deadline already past fires on the next turn, not at a negative delay or later', () => {
    const hooks = recorder();
    const inflight = new InFlight(hooks);
    inflight.add(pending(1, { expiresAt: performance.now() - 50 }));
    vi.advanceTimersByTime(0);
    expect(hooks.log).toEqual(['busy', 'idle', 'expire 1']);
  });
});
