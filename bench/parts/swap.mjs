// Part 2 — swap: how fast a swap puts the new version in service, compared with booting a bare
// worker; and what a swap storm does to the latency of 64 callers calling continuously, against the
// same callers without swaps. A third kind of window, a storm of bare `new Worker` boots with no swap
// at all, is a control: it shows how much of the storm's cost is just a thread booting on a small
// machine, whatever the library does. A second series measures the same swap on a hot swap of its own
// with `standby: true`, whose new version runs on a worker booted ahead of the swap.
import { fileURLToPath } from 'node:url';
import { makeFigure } from '../lib/results.mjs';
import { bareBoot } from '../lib/raw.mjs';
import { percentile, percentileSorted, median, Samples, sleep } from '../lib/stats.mjs';
import { formatTable, num, ratio } from '../lib/table.mjs';

const A = fileURLToPath(new URL('../plugins/echo-a.mjs', import.meta.url));
const B = fileURLToPath(new URL('../plugins/echo-b.mjs', import.meta.url));

const WARMUP = 3;
const SAMPLES = 100;
const CALLERS = 64;
const ROUNDS = 3;
const WINDOW_MS = 2_500;
const DRAIN_TIMEOUT_MS = 10_000;
/**
 * After each standby swap, a quiet pause before the next measurement: the next standby boots in the
 * background after a swap took the previous one, and it must neither be waited for by the next standby
 * swap nor land in the next bare boot or plain swap. A few boot times (a boot is ~30–45 ms here).
 */
const STANDBY_SETTLE_MS = 150;

export async function runSwap({ iso, progress }) {
  progress('swap: loading the first version…', { force: true });
  const hs = await iso.createHotSwap(A, { data: { label: 'v0' }, drainTimeoutMs: DRAIN_TIMEOUT_MS });
  // Its own hot swap for the standby series (labels s1, s2…).
  const hsStandby = await iso
    .createHotSwap(A, { data: { label: 's0' }, drainTimeoutMs: DRAIN_TIMEOUT_MS, standby: true })
    .catch(async (error) => {
      await hs.close();
      throw error;
    });
  const failures = [];
  let failedCalls = 0;
  const fail = (phase, error) => {
    failedCalls++;
    if (failures.length < 20)
      failures.push(`[${phase}] ${error?.code ?? error?.name ?? 'Error'}: ${error?.message ?? error}`);
  };
  const swapIssues = [];
  const checkReport = (report) => {
    const c = report.close;
    if (c.outcome !== 'closed' || !c.drained || c.terminatedCalls || !c.terminated) {
      swapIssues.push(
        `${report.from}→${report.to}: close outcome=${c.outcome} drained=${c.drained} terminatedCalls=${c.terminatedCalls} terminated=${c.terminated}`,
      );
    }
  };
  /** The next version of a hot swap: the other file, labelled `${prefix}${n}`. */
  const sequence = (prefix) => {
    let seq = 0;
    return () => {
      seq++;
      const b = seq % 2 === 1;
      return { file: b ? B : A, label: `${prefix}${seq}`, expect: `${b ? 'b' : 'a'}:${prefix}${seq}` };
    };
  };
  const next = sequence('v');
  const nextStandby = sequence('s');

  /** One swap of `target`, timed: swap() → 'swap' event, and swap() → first reply from the new version. */
  const timedSwap = async (target = hs, nextOf = next) => {
    const t = nextOf();
    let switchedAt;
    let probe;
    const onSwap = () => {
      switchedAt = performance.now();
      // The first call after the switch must be served by the new version.
      probe = target.call('whoami').then(
        (value) => ({ value, at: performance.now() }),
        (error) => ({ error, at: performance.now() }),
      );
    };
    target.once('swap', onSwap);
    const started = performance.now();
    let report;
    try {
      report = await target.swap(t.file, { data: { label: t.label } });
    } finally {
      target.off('swap', onSwap);
    }
    checkReport(report);
    const noEvent = probe === undefined;
    if (noEvent)
      probe = target.call('whoami').then(
        (value) => ({ value, at: performance.now() }),
        (error) => ({ error, at: performance.now() }),
      );
    const served = await probe;
    if (served.error) fail('probe', served.error);
    return {
      eventMs: noEvent ? NaN : switchedAt - started,
      serveMs: served.at - started,
      stale: !served.error && served.value !== t.expect ? `${served.value} answered, ${t.expect} expected` : undefined,
      noEvent,
      report,
    };
  };

  const boot = [];
  const event = [];
  const serve = [];
  const loadMs = [];
  const drainMs = [];
  const stale = [];
  let noEvents = 0;
  const standbyServe = [];
  const standbyLoadMs = [];
  /** Standby swaps measured, and those whose report said they booted their own worker instead. */
  let standbySwaps = 0;
  let standbyMissed = 0;
  try {
    // 1. Swap to serving vs bare worker boot to first reply, and the standby swap,
    // alternated (the order rotated every sample).
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      progress(
        `swap: swap, standby swap vs bare worker boot ${Math.max(0, i - WARMUP + 1)}/${SAMPLES}${i < WARMUP ? ' (warm-up)' : ''}…`,
      );
      const measureBoot = async () => {
        const ms = await bareBoot();
        if (i >= WARMUP) boot.push(ms);
      };
      const measureSwap = async () => {
        const r = await timedSwap();
        if (r.stale) stale.push(r.stale);
        if (r.noEvent) noEvents++;
        if (i >= WARMUP) {
          event.push(r.eventMs);
          serve.push(r.serveMs);
          loadMs.push(r.report.loadMs);
          drainMs.push(r.report.drainMs);
        }
      };
      const measureStandby = async () => {
        const r = await timedSwap(hsStandby, nextStandby);
        if (r.stale) stale.push(`(standby) ${r.stale}`);
        if (r.noEvent) noEvents++;
        if (i >= WARMUP) {
          standbySwaps++;
          if (r.report.standby !== true) standbyMissed++;
          standbyServe.push(r.serveMs);
          standbyLoadMs.push(r.report.loadMs);
        }
        await sleep(STANDBY_SETTLE_MS);
      };
      const measures = [measureSwap, measureBoot, measureStandby];
      for (let m = 0; m < measures.length; m++) await measures[(m + i) % measures.length]();
    }

    // 2. 64 callers calling continuously; windows without swaps alternate with swap-storm windows.
    const latency = { warm: new Samples(), quiet: new Samples(), storm: new Samples(), boots: new Samples() };
    let phase = 'warm';
    let running = true;
    const caller = async (c) => {
      let x = c * 1e9;
      while (running) {
        const p = phase;
        const value = x++;
        const t0 = performance.now();
        try {
          const answer = await hs.api.echo(value);
          if (answer !== value) throw new Error(`wrong answer: ${answer} for ${value}`);
          latency[p].push(performance.now() - t0);
        } catch (error) {
          fail(p, error);
        }
      }
    };
    const callers = Array.from({ length: CALLERS }, (_, c) => caller(c));
    let stormSwaps = 0;
    let bootStormBoots = 0;
    const windows = {
      quiet: () => sleep(WINDOW_MS),
      storm: async () => {
        const end = performance.now() + WINDOW_MS;
        while (performance.now() < end) {
          const t = next();
          checkReport(await hs.swap(t.file, { data: { label: t.label } }));
          stormSwaps++;
        }
      },
      boots: async () => {
        const end = performance.now() + WINDOW_MS;
        while (performance.now() < end) {
          await bareBoot();
          bootStormBoots++;
        }
      },
    };
    const label = { quiet: 'no swaps', storm: 'swap storm', boots: 'bare-worker boot storm (control)' };
    try {
      await sleep(500);
      for (let round = 0; round < ROUNDS; round++) {
        const kinds = ['quiet', 'storm', 'boots'];
        for (let k = 0; k < kinds.length; k++) {
          const kind = kinds[(k + round) % kinds.length];
          phase = kind;
          progress(`swap: ${CALLERS} callers, ${label[kind]}, window ${round + 1}/${ROUNDS}…`);
          await windows[kind]();
        }
      }
    } finally {
      running = false;
      await Promise.all(callers);
    }

    const quiet = latency.quiet.sorted();
    const storm = latency.storm.sorted();
    const q = { p50: percentileSorted(quiet, 50), p99: percentileSorted(quiet, 99), n: quiet.length };
    const s = { p50: percentileSorted(storm, 50), p99: percentileSorted(storm, 99), n: storm.length };
    const bootsSorted = latency.boots.sorted();
    const bs = {
      p50: percentileSorted(bootsSorted, 50),
      p99: percentileSorted(bootsSorted, 99),
      n: bootsSorted.length,
    };
    const b = { p50: percentile(boot, 50), p99: percentile(boot, 99) };
    const sv = { p50: percentile(serve, 50), p99: percentile(serve, 99) };
    const ev = { p50: percentile(event, 50), p99: percentile(event, 99) };
    const sb = { p50: percentile(standbyServe, 50), p99: percentile(standbyServe, 99) };
    const standbyNote = `${standbySwaps} swaps on a hot swap of its own with standby: true, rotated with the plain swaps and the bare boots (a ${STANDBY_SETTLE_MS} ms pause after each, for the next standby to boot); ${standbySwaps - standbyMissed}/${standbySwaps} reported standby: true`;
    const standbyFigures = [
      makeFigure({
        part: 'swap',
        key: 'swap.standby.serve.p50',
        name: 'swap() → new version serving, standby, p50',
        value: sb.p50,
        unit: 'ms',
        better: 'lower',
        peers: { bareBoot: b.p50, swap: sv.p50 },
        baseline: 'bareBoot',
        bar: { against: 'bareBoot', op: '<=', limit: 0.3 },
        note: standbyNote,
      }),
      makeFigure({
        part: 'swap',
        key: 'swap.standby.serve.p99',
        name: 'swap() → new version serving, standby, p99',
        value: sb.p99,
        unit: 'ms',
        better: 'lower',
        peers: { bareBoot: b.p99, swap: sv.p99 },
        baseline: 'bareBoot',
      }),
    ];

    const figures = [
      makeFigure({
        part: 'swap',
        key: 'swap.serve.p50',
        name: 'swap() → new version serving, p50',
        value: sv.p50,
        unit: 'ms',
        better: 'lower',
        peers: { bareBoot: b.p50 },
        baseline: 'bareBoot',
        bar: { against: 'bareBoot', op: '<=', limit: 1.0 },
        note: `${SAMPLES} swaps alternated with ${SAMPLES} bare new Worker boots (to first reply); "serving" = first call issued at the 'swap' event answered by the new version`,
      }),
      makeFigure({
        part: 'swap',
        key: 'swap.serve.p99',
        name: 'swap() → new version serving, p99',
        value: sv.p99,
        unit: 'ms',
        better: 'lower',
        peers: { bareBoot: b.p99 },
        baseline: 'bareBoot',
      }),
      makeFigure({
        part: 'swap',
        key: 'swap.event.p50',
        name: "swap() → 'swap' event, p50",
        value: ev.p50,
        unit: 'ms',
        better: 'lower',
        peers: { bareBoot: b.p50 },
        baseline: 'bareBoot',
      }),
      ...standbyFigures,
      makeFigure({
        part: 'swap',
        key: 'swap.latency.p99',
        name: `call latency p99, ${CALLERS} callers, swap storm`,
        value: s.p99,
        unit: 'ms',
        better: 'lower',
        peers: { noSwaps: q.p99, bootStorm: bs.p99 },
        baseline: 'noSwaps',
        bar: { against: 'noSwaps', op: '<=', limit: 1.2 },
        note: `${ROUNDS} × ${WINDOW_MS} ms windows of each kind, rotated; ${stormSwaps} swaps in the storm windows, ${bootStormBoots} bare worker boots in the control windows; ${s.n} / ${q.n} / ${bs.n} calls`,
      }),
      makeFigure({
        part: 'swap',
        key: 'swap.latency.p50',
        name: `call latency p50, ${CALLERS} callers, swap storm`,
        value: s.p50,
        unit: 'ms',
        better: 'lower',
        peers: { noSwaps: q.p50, bootStorm: bs.p50 },
        baseline: 'noSwaps',
      }),
      makeFigure({
        part: 'swap',
        key: 'swap.failedCalls',
        name: 'failed calls (probes and all windows)',
        value: failedCalls,
        unit: 'calls',
        better: 'lower',
        bar: { op: '==', limit: 0 },
        note: failures.length ? failures.join(' | ') : 'none',
      }),
    ];

    const table = formatTable(
      ['swap', 'p50', 'p99', 'samples', 'ratio p50 / p99'],
      [
        [
          'isoplug swap() → new version serving',
          `${num(sv.p50)} ms`,
          `${num(sv.p99)} ms`,
          serve.length,
          `${ratio(sv.p50 / b.p50)} / ${ratio(sv.p99 / b.p99)} bare`,
        ],
        [
          "isoplug swap() → 'swap' event",
          `${num(ev.p50)} ms`,
          `${num(ev.p99)} ms`,
          event.length,
          `${ratio(ev.p50 / b.p50)} / ${ratio(ev.p99 / b.p99)} bare`,
        ],
        [
          '  of which load (report.loadMs)',
          `${num(median(loadMs))} ms`,
          `${num(percentile(loadMs, 99))} ms`,
          loadMs.length,
          '',
        ],
        [
          '  then old version drain (drainMs)',
          `${num(median(drainMs))} ms`,
          `${num(percentile(drainMs, 99))} ms`,
          drainMs.length,
          '',
        ],
        [
          'isoplug swap() → new version serving, standby',
          `${num(sb.p50)} ms`,
          `${num(sb.p99)} ms`,
          standbyServe.length,
          `${ratio(sb.p50 / b.p50)} / ${ratio(sb.p99 / b.p99)} bare`,
        ],
        [
          '  of which load (report.loadMs), standby',
          `${num(median(standbyLoadMs))} ms`,
          `${num(percentile(standbyLoadMs, 99))} ms`,
          standbyLoadMs.length,
          '',
        ],
        ['bare new Worker → first reply', `${num(b.p50)} ms`, `${num(b.p99)} ms`, boot.length, '1.00×'],
        ['call latency, 64 callers, no swaps', `${num(q.p50, 3)} ms`, `${num(q.p99, 3)} ms`, q.n, '1.00×'],
        [
          `call latency, 64 callers, swap storm (${stormSwaps} swaps)`,
          `${num(s.p50, 3)} ms`,
          `${num(s.p99, 3)} ms`,
          s.n,
          `${ratio(s.p50 / q.p50)} / ${ratio(s.p99 / q.p99)} no swaps`,
        ],
        [
          `  control: bare-worker boot storm (${bootStormBoots} boots)`,
          `${num(bs.p50, 3)} ms`,
          `${num(bs.p99, 3)} ms`,
          bs.n,
          `${ratio(bs.p50 / q.p50)} / ${ratio(bs.p99 / q.p99)} no swaps`,
        ],
        ['failed calls', failedCalls, '', '', failedCalls === 0 ? 'none' : 'see below'],
      ],
      { title: 'SWAP — p50/p99 (ratio = isoplug ÷ baseline)' },
    );
    const notes = [];
    if (standbyMissed)
      notes.push(
        `${standbyMissed} of ${standbySwaps} standby swaps booted their own worker (report.standby false): the standby figures mix in fresh boots`,
      );
    if (failedCalls)
      notes.push(`failed calls (${failedCalls}, first ${failures.length}):\n    ${failures.join('\n    ')}`);
    if (stale.length)
      notes.push(
        `the first call after a 'swap' event was answered by the OLD version ${stale.length} time(s): ${stale.slice(0, 3).join('; ')}`,
      );
    if (noEvents) notes.push(`swap() resolved without a 'swap' event ${noEvents} time(s)`);
    if (swapIssues.length)
      notes.push(
        `${swapIssues.length} swap(s) whose old version did not close cleanly: ${swapIssues.slice(0, 3).join('; ')}`,
      );
    return { figures, tables: [table], notes };
  } finally {
    progress('swap: closing…', { force: true });
    await Promise.all(
      [hs, hsStandby].map(async (h) => {
        await h.close();
        await h.current.exited;
      }),
    );
  }
}
