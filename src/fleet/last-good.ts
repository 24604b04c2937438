/**
 * What a host keeps on its disk to boot without the database: the last revision it applied in full (a
 * small JSON file in its cache folder, written after each apply), and the signatures its bundles were
 * verified with (beside each bundle), so a host that requires signatures still checks them offline.
 * The bundles themselves are the cache's `<sha256>.mjs` files, re-hashed before each use.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BundleSignature } from './sign.js';
import { sha256 } from './sign.js';
import type { Deployment } from './store.js';
import { writeAtomic } from '../write-atomic.js';

/** The file holding the last revision of `name` (in `schema`) applied from this cache folder. */
function statePath(dir: string, schema: string, name: string): string {
  return join(dir, `deployment-${sha256(Buffer.from(`${schema}\0${name}`)).slice(0, 16)}.json`);
}

/** Records `deployment` as the last one this host applied in full. */
export async function saveLastGood(dir: string, schema: string, deployment: Deployment): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeAtomic(statePath(dir, schema, deployment.name), JSON.stringify({ schema, ...deployment }));
}

const HASH = /^[0-9a-f]{64}$/;

/** The last revision of `name` applied from this cache folder, or undefined (none, or not readable as one). */
export async function loadLastGood(dir: string, schema: string, name: string): Promise<Deployment | undefined> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(statePath(dir, schema, name), 'utf8'));
  } catch {
    return undefined;
  }
  const d = raw as Record<string, unknown>;
  const canary = d['canary'] ?? undefined;
  if (
    d['schema'] !== schema ||
    d['name'] !== name ||
    !Number.isInteger(d['revision']) ||
    typeof d['stable'] !== 'string' ||
    !HASH.test(d['stable']) ||
    (canary !== undefined && (typeof canary !== 'string' || !HASH.test(canary))) ||
    typeof d['percent'] !== 'number'
  )
    return undefined;
  return {
    name,
    revision: d['revision'] as number,
    stable: d['stable'],
    canary,
    percent: d['percent'],
    salt: typeof d['salt'] === 'string' ? d['salt'] : undefined,
    message: typeof d['message'] === 'string' ? d['message'] : undefined,
    createdAt: new Date(String(d['createdAt'])),
    createdBy: String(d['createdBy']),
  };
}

/** Keeps the signatures a bundle was verified with, for a later check without the database. */
export async function saveSignatures(dir: string, hash: string, found: readonly BundleSignature[]): Promise<void> {
  const list = found.map((s) => ({ keyId: s.keyId, signature: Buffer.from(s.signature).toString('base64') }));
  await writeAtomic(join(dir, `${hash}.sig.json`), JSON.stringify(list));
}

/** The signatures kept for a bundle (none when there is no readable file). */
export async function loadSignatures(dir: string, hash: string): Promise<BundleSignature[]> {
  try {
    const list = JSON.parse(await readFile(join(dir, `${hash}.sig.json`), 'utf8')) as unknown;
    if (!Array.isArray(list)) return [];
    return list
      .filter(
        (s): s is { keyId: string; signature: string } =>
          typeof (s as { keyId?: unknown })?.keyId === 'string' &&
          typeof (s as { signature?: unknown })?.signature === 'string',
      )
      .map((s) => ({ keyId: s.keyId, signature: Buffer.from(s.signature, 'base64') }));
  } catch {
    return [];
  }
}
