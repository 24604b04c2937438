#!/usr/bin/env node
// npm run soak [-- --repeats 50] [--rows F2,C3] [--duration 600]
// Repeats every fault-matrix test (docs/faults.md) under background load and counts, per row: tries,
// passes, failures, hangs (past vitest's per-test watchdog, not a plugin's coded timeout), leftovers
// (anything the leak check found, including what a test left behind after its own check); and overall:
// host crashes (a test file whose process started but wrote no record) and lost background calls (a call
// not settled by its deadline). Writes bench/results/soak.json; exits non-zero on anything but a clean run.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    repeats: { type: 'string', default: '50' },
    rows: { type: 'string', default: '' },
    duration: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(
    'usage: npm run soak -- [--repeats N (default 50)] [--rows F2,C3,…] [--duration SECONDS: repeat rounds of 5 until then]',
  );
  process.exit(0);
}
const repeats = Number(values.repeats);
if (!Number.isInteger(repeats) || repeats < 1) {
  console.error(`soak: --repeats must be a positive integer, got ${values.repeats}`);
  process.exit(2);
}
const duration = values.duration === undefined ? undefined : Number(values.duration);
if (duration !== undefined && !(duration > 0)) {
  console.error(`soak: --duration must be a positive number of seconds, got ${values.duration}`);
  process.exit(2);
}

const root = new URL('../', import.meta.url);
const started = Date.now();
const rounds = [];
const perRound = duration === undefined ? repeats : 5;
do {
  const out = mkdtempSync(join(tmpdir(), 'isoplug-soak-'));
  process.stderr.write(
    `soak: round ${rounds.length + 1}, ${perRound} repetitions per test${values.rows ? ` (rows ${values.rows})` : ''}…\n`,
  );
  const run = spawnSync(
    process.execPath,
    ['node_modules/vitest/vitest.mjs', 'run', '--config', 'vitest.soak.config.ts', '--reporter=dot'],
    {
      cwd: root,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        ...process.env,
        ISOPLUG_SOAK_REPEATS: String(perRound),
        ISOPLUG_SOAK_ROWS: values.rows,
        ISOPLUG_SOAK_OUT: out,
      },
    },
  );
  const read = (suffix) =>
    new Map(
      readdirSync(out)
        .filter((name) => name.endsWith(suffix))
        .map((name) => [name.slice(0, -suffix.length), JSON.parse(readFileSync(join(out, name), 'utf8'))]),
    );
  const records = read('.json');
  // A test process that started its files and never wrote its record died: each of its files is a host crash.
  const crashed = [...read('.started')].filter(([id]) => !records.has(id)).flatMap(([, marker]) => marker.files);
  rmSync(out, { recursive: true, force: true });
  rounds.push({ exitCode: run.status ?? run.signal, records: [...records.values()], crashed });
} while (duration !== undefined && Date.now() - started < duration * 1000);

const ROW = /(?:^|[^A-Za-z0-9])([LFCSXN]\d+)(?=[^0-9]|$)/g;
const rows = new Map();
const row = (id) => {
  const r = rows.get(id) ?? { row: id, tries: 0, pass: 0, fail: 0, hang: 0, leftover: 0 };
  rows.set(id, r);
  return r;
};
const crashedFiles = [];
/** What the end-of-file leak check found, by the test (or file hook) that created it. */
const late = [];
const background = { issued: 0, resolved: 0, rejectedCoded: 0, rejectedUncoded: 0, lost: 0 };
for (const { records, crashed } of rounds) {
  crashedFiles.push(...crashed);
  for (const record of records) {
    for (const t of record.tries) {
      for (const id of t.rows) {
        const r = row(id);
        r.tries++;
        r[t.outcome]++;
      }
    }
    for (const leftover of record.lateLeftovers ?? []) {
      late.push(leftover);
      // Blamed on the rows of the test that created it (a try already counted, now known to have left something).
      for (const [, id] of leftover.owner.matchAll(ROW)) row(id).leftover++;
    }
    if (record.background) for (const key of Object.keys(background)) background[key] += record.background[key] ?? 0;
  }
}
const hostCrashes = crashedFiles.length;
const lostCalls = background.lost;
const table = [...rows.values()].sort((a, b) => a.row.localeCompare(b.row, 'en', { numeric: true }));
console.log('\nrow   tries  pass  fail  hang  leftover');
for (const r of table) {
  console.log(
    `${r.row.padEnd(5)} ${String(r.tries).padStart(5)} ${String(r.pass).padStart(5)} ${String(r.fail).padStart(5)} ${String(r.hang).padStart(5)} ${String(r.leftover).padStart(9)}`,
  );
}
const totals = table.reduce(
  (t, r) => ({
    tries: t.tries + r.tries,
    fail: t.fail + r.fail,
    hang: t.hang + r.hang,
    leftover: t.leftover + r.leftover,
  }),
  { tries: 0, fail: 0, hang: 0, leftover: 0 },
);
for (const file of crashedFiles)
  console.log(`host crash: the test process running ${file} died before writing its record`);
for (const { owner, left } of late) console.log(`left behind after its check by ${owner}: ${left}`);
console.log(
  `\n${totals.tries} tries over ${table.length} rows: ${totals.fail} failed, ${totals.hang} hangs, ${totals.leftover} leftovers, ${hostCrashes} host crashes`,
);
console.log(
  `background calls: ${background.issued} issued, ${background.resolved} resolved, ${background.rejectedCoded} rejected with a code, ${background.rejectedUncoded} rejected without, ${lostCalls} lost`,
);

const result = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  repeatsPerRound: perRound,
  rounds: rounds.length,
  seconds: Math.round((Date.now() - started) / 1000),
  rows: table,
  totals: { ...totals, hostCrashes, crashedFiles, lateLeftovers: late, background, lostCalls },
};
mkdirSync(new URL('bench/results/', root), { recursive: true });
writeFileSync(new URL('bench/results/soak.json', root), `${JSON.stringify(result, null, 2)}\n`);
const clean =
  totals.fail + totals.hang + totals.leftover + late.length + hostCrashes + lostCalls + background.rejectedUncoded ===
    0 && rounds.every((r) => r.exitCode === 0);
process.exit(clean ? 0 : 1);
