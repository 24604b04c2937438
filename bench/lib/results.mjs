import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

/** The checkout's root and the temp dir, as they may appear in error messages kept in the notes. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const unpath = (text) => text.split(ROOT).join('./').split(tmpdir()).join('$TMPDIR');

export const ENV = Object.freeze({
  node: process.version,
  cpus: typeof availableParallelism === 'function' ? availableParallelism() : cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  platform: `${process.platform}-${process.arch}`,
});

/**
 * One measured figure. `value` is isoplug's; `peers` the other implementations' values for the same
 * figure; `ratios[peer]` = value / peers[peer] (or the paired ratio the part computed, when given).
 * `bar` is the target the figure is judged by:
 *   { against: 'raw', op: '<=', limit: 1.0 }  → ratio value/peers.raw compared to limit
 *   { op: '<=', limit: 2 }                    → the value itself compared to limit (in `unit`)
 */
export function makeFigure({
  part,
  key,
  name,
  value,
  unit,
  better,
  peers = {},
  baseline,
  bar,
  note,
  ratios: given,
  peerRatiosToBaseline: givenPeer,
}) {
  const ratios = {};
  for (const [peer, v] of Object.entries(peers)) {
    ratios[peer] = given && peer in given ? clean(given[peer]) : isNum(value) && isNum(v) && v !== 0 ? value / v : null;
  }
  const peerRatios = {};
  if (baseline && isNum(peers[baseline])) {
    for (const [peer, v] of Object.entries(peers))
      peerRatios[peer] =
        givenPeer && peer in givenPeer ? clean(givenPeer[peer]) : isNum(v) ? v / peers[baseline] : null;
  }
  let verdict = null;
  if (bar) {
    const subject = bar.against ? ratios[bar.against] : value;
    const ok =
      isNum(subject) &&
      (bar.op === '<=' ? subject <= bar.limit : bar.op === '>=' ? subject >= bar.limit : subject === bar.limit);
    verdict = { text: barText(bar, unit), measured: isNum(subject) ? subject : null, pass: isNum(subject) ? ok : null };
  }
  return {
    part,
    key,
    name,
    value: isNum(value) ? value : null,
    unit,
    better,
    baseline: baseline ?? null,
    peers,
    ratios,
    peerRatiosToBaseline: peerRatios,
    bar: verdict,
    note: note ?? null,
    node: ENV.node,
    cpus: ENV.cpus,
    date: new Date().toISOString(),
  };
}

function clean(v) {
  return isNum(v) ? v : null;
}

function isNum(v) {
  return typeof v === 'number' && Number.isFinite(v);
}

function barText(bar, unit) {
  const op = bar.op === '<=' ? '≤' : bar.op === '>=' ? '≥' : '=';
  return bar.against ? `${op} ${bar.limit.toFixed(1)}× ${bar.against}` : `${op} ${bar.limit} ${unit}`;
}

export function verdictText(figure) {
  if (!figure.bar) return '—';
  if (figure.bar.pass === null) return 'n/a';
  return figure.bar.pass ? 'PASS' : 'MISS';
}

/**
 * Writes results/latest.json atomically. Figures of the parts run now replace the previous ones;
 * figures of parts not run this time are kept (each carries its own date).
 */
export function writeLatest(dir, { parts, figures, notes, runtimeMs }) {
  mkdirSync(dir, { recursive: true });
  const file = new URL('latest.json', dir);
  let previous = [];
  try {
    previous = JSON.parse(readFileSync(file, 'utf8')).figures ?? [];
  } catch {
    /* first run */
  }
  const kept = previous.filter((f) => !parts.includes(f.part));
  const doc = {
    generated: new Date().toISOString(),
    node: ENV.node,
    cpus: ENV.cpus,
    cpuModel: ENV.cpuModel,
    platform: ENV.platform,
    partsRun: parts,
    runtimeMs: Math.round(runtimeMs),
    notes,
    figures: [...kept, ...figures],
  };
  const tmp = new URL('latest.json.tmp', dir);
  // No machine-specific paths in the results: the checkout becomes ./, the temp dir $TMPDIR.
  writeFileSync(tmp, unpath(JSON.stringify(doc, null, 2)) + '\n');
  renameSync(tmp, file);
  return file;
}
