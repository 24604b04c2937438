/**
 * The code cache is on by default: the suite's runs keep their entries in a folder of their own (the
 * test processes inherit `XDG_CACHE_HOME`), never in the user's cache, and it is removed afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'isoplug-cache-'));
  process.env['XDG_CACHE_HOME'] = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
