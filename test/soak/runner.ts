/**
 * The soak's test runner: vitest's own, with every fault-matrix test repeated `ISOPLUG_SOAK_REPEATS`
 * times and each try recorded (passed, failed, hung, left something behind). Tests without a row id
 * are skipped. Once its files are collected it writes a started marker naming them to `ISOPLUG_SOAK_OUT`;
 * at the end of the run it writes what it saw there, with the background callers' tally and what the
 * end-of-file leak check found. A marker without a record is a test process that died.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { File, Task, Test } from '@vitest/runner';
import { TestRunner } from 'vitest';
import { soakState } from './state.js';

const ROW = /(?:^|[^A-Za-z0-9])([A-Z]\d+)(?=[^0-9]|$)/g;
/** vitest's own watchdog (testTimeout, hookTimeout), not a plugin call's coded timeout. */
const HANG = /\b(?:Test|Hook) timed out in \d+ms/;

export interface TryRecord {
  readonly rows: string[];
  readonly name: string;
  readonly outcome: 'pass' | 'fail' | 'hang' | 'leftover';
}

function fullName(task: Task): string {
  const names: string[] = [];
  for (let t: Task | undefined = task; t && t !== task.file; t = t.suite) names.unshift(t.name);
  return names.join(' > ');
}

/** The rows a test is tagged with: ids in its own title, as the fault-matrix check reads them (not a describe's). */
function rowsOf(task: Task): string[] {
  return [...new Set([...task.name.matchAll(ROW)].map((m) => m[1]!))];
}

function* tests(task: Task): Generator<Test> {
  if (task.type === 'test') yield task;
  else if ('tasks' in task) for (const child of task.tasks) yield* tests(child);
}

export default class SoakRunner extends TestRunner {
  readonly #repeats = Math.max(1, Number(process.env['ISOPLUG_SOAK_REPEATS'] ?? 50));
  readonly #only = new Set((process.env['ISOPLUG_SOAK_ROWS'] ?? '').split(',').filter(Boolean));
  readonly #tries: TryRecord[] = [];
  #errorsBefore = 0;
  #leftoversBefore = 0;
  #files: string[] = [];
  readonly #id = `${process.pid}-${randomUUID()}`;

  onCollected(files: File[]): void {
    this.#files = files.map((f) => f.filepath);
    const out = process.env['ISOPLUG_SOAK_OUT'];
    if (out) {
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, `${this.#id}.started`), JSON.stringify({ files: this.#files }));
    }
    for (const file of files) {
      for (const test of tests(file)) {
        const rows = rowsOf(test);
        const wanted = rows.length > 0 && (this.#only.size === 0 || rows.some((r) => this.#only.has(r)));
        if (!wanted) test.mode = 'skip';
        else test.repeats = this.#repeats - 1;
      }
    }
  }

  override onBeforeTryTask(test: Task): void {
    super.onBeforeTryTask(test);
    this.#errorsBefore = test.result?.errors?.length ?? 0;
    this.#leftoversBefore = soakState.leftovers;
  }

  onAfterRetryTask(test: Test): void {
    const errors = test.result?.errors ?? [];
    const fresh = errors.slice(this.#errorsBefore);
    let outcome: TryRecord['outcome'] = 'pass';
    if (soakState.leftovers > this.#leftoversBefore) outcome = 'leftover';
    else if (fresh.some((e) => HANG.test(String(e?.message)))) outcome = 'hang';
    else if (fresh.length > 0) outcome = 'fail';
    this.#tries.push({ rows: rowsOf(test), name: fullName(test), outcome });
  }

  override onAfterRunFiles(): void {
    super.onAfterRunFiles();
    const out = process.env['ISOPLUG_SOAK_OUT'];
    if (!out) return;
    mkdirSync(out, { recursive: true });
    const record = {
      files: this.#files,
      tries: this.#tries,
      background: soakState.background,
      lateLeftovers: soakState.lateLeftovers,
    };
    writeFileSync(join(out, `${this.#id}.json`), JSON.stringify(record));
  }
}
