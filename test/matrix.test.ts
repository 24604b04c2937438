/**
 * The fault matrix (docs/faults.md) is the list of what isoplug must survive. Every row id must be
 * the tag of at least one test title ("F2: …", "S1/S3: …", "… (F10, F12)"), so no row goes untested.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);
const matrix = readFileSync(new URL('docs/faults.md', root), 'utf8');
const rowIds = [...matrix.matchAll(/^\| ([A-Z]\d+) \|/gm)].map((m) => m[1]!);

const titles = readdirSync(new URL('test/', root))
  .filter((name) => name.endsWith('.test.ts'))
  .flatMap((name) => {
    const source = readFileSync(new URL(`test/${name}`, root), 'utf8');
    // The first argument of it()/test()/describe(), or of the call chained after .each([...]) or .skipIf(...).
    return [...source.matchAll(/(?:\b(?:it|test|describe)|\))\(\s*(['`"])(.*?)\1/g)].map((m) => m[2]!);
  });

describe('the fault matrix', () => {
  it('has rows', () => {
    expect(rowIds.length).toBeGreaterThanOrEqual(40);
  });

  it.each(rowIds)('row %s has a test tagged with its id', (id) => {
    const tagged = titles.filter((title) => new RegExp(`(^|[^A-Za-z0-9])${id}([^0-9]|$)`).test(title));
    expect(tagged, `no test title carries ${id}`).not.toEqual([]);
  });
});
