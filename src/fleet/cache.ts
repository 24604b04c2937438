/**
 * The host's bundle cache: verified bundles as `<cacheDir>/<sha256>.mjs`, content-addressed, so a file's
 * name says what its bytes must hash to. A worker loads a real file, and a version that keeps draining
 * after the next one arrived still has its own.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from './sign.js';
import { writeAtomic } from '../write-atomic.js';

export function cachePath(dir: string, hash: string): string {
  return join(dir, `${hash}.mjs`);
}

/** The cached file for `hash` when its bytes still hash to it; a file that does not is removed. */
export async function cached(dir: string, hash: string): Promise<{ path: string; bytes: Buffer } | undefined> {
  const path = cachePath(dir, hash);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    return undefined;
  }
  if (sha256(bytes) === hash) return { path, bytes };
  await rm(path, { force: true });
  return undefined;
}

/** Writes verified bytes under their hash: a temporary file renamed into place, so no reader sees half. */
export async function store(dir: string, hash: string, bytes: Uint8Array): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = cachePath(dir, hash);
  await writeAtomic(path, bytes);
  return path;
}
