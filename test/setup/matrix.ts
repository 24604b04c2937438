/**
 * The fault matrix (docs/faults.md) checked against what a run actually ran. A row is covered when, in a
 * file its test column names, a test that ran (passed or failed, not skipped) carries the row id in its own
 * title (not a describe's). A row whose only such tests were skipped (F6 on Node 24 and 26) is listed as
 * skipped on this Node line. Rows whose files were not part of the run, and runs filtered by test name,
 * are not judged. A row without a running test fails the run.
 *
 * Loaded by vitest.config.ts as a plugin: it adds its reporter to whatever reporters the command line
 * chose, so CI's `--reporter` flags do not drop it.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Plugin } from 'vite';
import type { Reporter, TestModule, Vitest } from 'vitest/node';

export interface Row {
  readonly id: string;
  /** The test files the row's test column names. */
  readonly files: readonly string[];
}

/** The rows of docs/faults.md, with the test files each names. */
export function readMatrix(): Row[] {
  const text = readFileSync(new URL('../../docs/faults.md', import.meta.url), 'utf8');
  return [...text.matchAll(/^\| ([A-Z]\d+) \|.*\|([^|]*)\|\s*$/gm)].map((m) => ({
    id: m[1]!,
    files: [...m[2]!.matchAll(/`([\w.-]+\.test\.ts)`/g)].map((f) => f[1]!),
  }));
}

/** True when `title` carries `id` as a tag ("F2: …", "S1/S3: …", "… (F10, F12)"), not as part of another id. */
export function carries(title: string, id: string): boolean {
  return new RegExp(`(^|[^A-Za-z0-9])${id}([^0-9]|$)`).test(title);
}

export interface MatrixVerdict {
  readonly missing: string[];
  readonly skipped: string[];
  readonly judged: number;
}

/** Judges the rows against the tests of the modules that ran. */
export function judge(rows: readonly Row[], modules: ReadonlyArray<TestModule>): MatrixVerdict {
  const byFile = new Map(modules.map((m) => [basename(m.moduleId), m]));
  const missing: string[] = [];
  const skipped: string[] = [];
  let judged = 0;
  for (const row of rows) {
    const ran = row.files.map((file) => byFile.get(file)).filter((m) => m !== undefined);
    if (ran.length === 0) continue;
    judged++;
    const tagged = ran.flatMap((m) => [...m.children.allTests()]).filter((test) => carries(test.name, row.id));
    if (tagged.some((test) => test.result().state !== 'skipped')) continue;
    if (tagged.length > 0) skipped.push(row.id);
    else missing.push(row.id);
  }
  return { missing, skipped, judged };
}

class MatrixReporter implements Reporter {
  #vitest!: Vitest;

  onInit(vitest: Vitest): void {
    this.#vitest = vitest;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    if (this.#vitest.config.testNamePattern) return;
    const { missing, skipped, judged } = judge(readMatrix(), modules);
    if (judged === 0) return;
    const logger = this.#vitest.logger;
    const line = `node ${process.version}`;
    if (skipped.length > 0)
      logger.log(`fault matrix: rows whose tests were all skipped on ${line}: ${skipped.join(', ')}`);
    if (missing.length > 0) {
      logger.error(
        `fault matrix: no test that ran carries these rows' ids in its own title, in the file the row names: ${missing.join(', ')}`,
      );
      process.exitCode = 1;
    } else logger.log(`fault matrix: ${judged - skipped.length} of ${judged} rows have a test that ran on ${line}`);
  }
}

/** The vitest plugin that checks the fault matrix after each run (not in the soak, which skips untagged tests). */
export function faultMatrix(): Plugin {
  return {
    name: 'isoplug:fault-matrix',
    configureVitest({ vitest }) {
      if (String(vitest.config.runner ?? '').includes('soak')) return;
      vitest.config.reporters.push(new MatrixReporter());
    },
  };
}
