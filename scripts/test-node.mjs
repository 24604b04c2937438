#!/usr/bin/env node
// Runs the test suite on one Node.js line, e.g. `npm run test:node -- 24`.
//
//   node scripts/test-node.mjs <major> [vitest args...]   install Node <major> if needed, run vitest on it
//   node scripts/test-node.mjs --summary <json> <exit>    print the summary line for a vitest JSON report
//
// Node lines come from the npm registry as `node-<os>-<arch>@<major>` (only linux-x64 is exercised by CI)
// and live in a cache outside the repository: ${XDG_CACHE_HOME:-~/.cache}/isoplug/node-<major>.
// The last line printed is always `node <version>: N passed, N failed, N skipped`, followed by the fault-matrix
// rows whose tests were skipped on that line, if any; .ci/run collects it.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const [first, ...rest] = process.argv.slice(2);

if (first === '--summary') {
  const [jsonFile, exitCode] = rest;
  process.exit(summarize(process.version, jsonFile, exitCode ?? 'unknown'));
}
if (!/^\d+$/.test(first ?? '')) {
  console.error('usage: node scripts/test-node.mjs <major> [vitest args...]   e.g. npm run test:node -- 24');
  process.exit(2);
}

const major = first;
const node = installNode(major);
if (!existsSync(join(root, 'dist/index.js')) || !existsSync(join(root, 'dist/plugin-worker.mjs'))) {
  console.log('== dist/ missing: npm run build');
  run('npm', ['run', 'build'], { cwd: root });
}

const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`== node ${major}: testing (${version})`);
const outDir = mkdtempSync(join(tmpdir(), `isoplug-node-${major}-`));
const jsonFile = join(outDir, 'vitest.json');
const vitest = join(root, 'node_modules/vitest/vitest.mjs');
const args = [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile=${jsonFile}`, ...rest];
// vitest's forks and the tsc it starts for type tests find `node` through execPath and PATH: both point at this line.
const env = { ...process.env, PATH: `${join(node, '..')}${delimiter}${process.env.PATH}` };
const child = spawn(node, args, { cwd: root, env, stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('close', (code, signal) => {
  const status = summarize(version, jsonFile, code ?? signal);
  rmSync(outDir, { recursive: true, force: true });
  process.exit(status);
});

/** Returns the path of `node` for this major, installing `node-<os>-<arch>@<major>` into the cache first if needed. */
function installNode(major) {
  const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'isoplug', `node-${major}`);
  const pkg = `node-${process.platform}-${process.arch}`;
  const bin = join(cache, 'node_modules', pkg, 'bin', 'node');
  const works = () =>
    existsSync(bin) && spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout?.startsWith(`v${major}.`);
  if (works()) return bin;
  console.log(`== node ${major}: installing ${pkg}@${major} into ${cache}`);
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  run(
    'npm',
    ['install', '--prefix', cache, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', `${pkg}@${major}`],
    { cwd: cache },
  );
  if (!works()) fail(`${bin} is not a working Node ${major}`);
  return bin;
}

function run(cmd, args, options) {
  const result = spawnSync(cmd, args, { stdio: 'inherit', ...options });
  if (result.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${result.status ?? result.signal}`);
}

/** Failing before vitest ran: still print a summary line, counting the line as 1 failed. */
function fail(message) {
  console.error(`test-node: ${message}`);
  console.log(`node ${major}: 0 passed, 1 failed, 0 skipped (${message})`);
  process.exit(1);
}

/** Prints `node <version>: N passed, N failed` from vitest's JSON report; returns the exit status for this line.
 * `exit` is vitest's exit code or the signal that ended it. */
function summarize(version, jsonFile, exit) {
  const ok = String(exit) === '0';
  let report;
  try {
    report = JSON.parse(readFileSync(jsonFile, 'utf8'));
  } catch {
    console.log(
      `node ${version}: 0 passed, 1 failed, 0 skipped (no JSON results: vitest crashed or was killed, exit ${exit})`,
    );
    return 1;
  }
  const passed = report.numPassedTests ?? 0;
  let failed = report.numFailedTests ?? 0;
  const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  let note = '';
  if (!ok && failed === 0) {
    // e.g. a test file that fails to load, an unhandled error between tests, a file's end-of-file leak check or
    // the fault-matrix check: no test failed, the run did.
    failed = 1;
    note = ` (vitest exited ${exit}: ${report.numFailedTestSuites ?? 0} failed suites, see the log above)`;
  }
  console.log(`node ${version}: ${passed} passed, ${failed} failed, ${skipped} skipped${skippedRows(report)}${note}`);
  return ok && failed === 0 ? 0 : 1;
}

/** The fault-matrix row ids (docs/faults.md) carried by the titles of the tests skipped on this line. */
function skippedRows(report) {
  const rows = new Set();
  for (const file of report.testResults ?? []) {
    for (const test of file.assertionResults ?? []) {
      if (test.status !== 'pending' && test.status !== 'skipped' && test.status !== 'todo') continue;
      for (const [, id] of String(test.title).matchAll(/(?:^|[^A-Za-z0-9])([LFCSXN]\d+)(?=[^0-9]|$)/g)) rows.add(id);
    }
  }
  return rows.size === 0 ? '' : ` (rows skipped on this line: ${[...rows].join(', ')})`;
}
