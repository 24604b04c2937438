/**
 * The fault matrix (docs/faults.md) is the list of what isoplug must survive. Here: its shape, and that
 * every row names test files that exist. Whether each row has a test that ran, tagged with its id in its
 * own title, is judged from the run itself by test/setup/matrix.ts (a reporter), not from source text.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { carries, readMatrix } from './setup/matrix.js';

const rows = readMatrix();

describe('the fault matrix', () => {
  it('has rows, each id once', () => {
    expect(rows.length).toBeGreaterThanOrEqual(40);
    expect(new Set(rows.map((row) => row.id)).size).toBe(rows.length);
  });

  it.each(rows.map((row) => [row.id, row.files] as const))('row %s names test files that exist', (_id, files) => {
    expect(files).not.toEqual([]);
    for (const file of files) expect(existsSync(new URL(file, import.meta.url)), file).toBe(true);
  });

  it('a tag is a whole id: F1 is not F12, S1/S3 carries both', () => {
    expect(carries('F12: deep', 'F1')).toBe(false);
    expect(carries('S1/S3: swaps', 'S3')).toBe(true);
    expect(carries('… (F10, F12)', 'F10')).toBe(true);
    expect(carries('LF2 is not a tag', 'F2')).toBe(false);
  });
});
