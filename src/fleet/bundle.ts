/**
 * A bundle made ready for a host to load: from its cache when the file still hashes to its name, else
 * fetched from the registry and checked against its SHA-256 before it is written; with trusted keys, a
 * signature by one of them is required either way. Without the database (`q` undefined: a boot from the
 * cache), only a cached bundle will do, and its signatures are the ones kept beside it when it was verified.
 */
import { cached, store } from './cache.js';
import { FleetIntegrityError, FleetSignatureError, FleetUnavailableError, type FleetErrorContext } from './errors.js';
import { loadSignatures, saveSignatures } from './last-good.js';
import type { Queryable } from './pg.js';
import { sha256, verifyBundle, type BundleSignature, type TrustedKey } from './sign.js';
import { bundleBytes, signatures } from './store.js';

export interface BundleSource {
  readonly cacheDir: string;
  readonly schema: string;
  readonly trusted: readonly TrustedKey[] | undefined;
}

/** The path of the verified file of bundle `hash`; rejects ERR_FLEET_INTEGRITY or ERR_FLEET_SIGNATURE. */
export async function fetchBundle(
  q: Queryable | undefined,
  source: BundleSource,
  hash: string,
  context: FleetErrorContext,
): Promise<string> {
  const { cacheDir, schema, trusted } = source;
  const hit = await cached(cacheDir, hash);
  let bytes = hit?.bytes;
  if (!bytes) {
    if (!q)
      throw new FleetUnavailableError(
        `bundle ${hash.slice(0, 12)} is not in the local cache, and the database is unreachable`,
        context,
      );
    bytes = await bundleBytes(q, schema, hash);
    if (!bytes) throw new FleetIntegrityError(`bundle ${hash} is missing from the registry`, context);
    if (sha256(bytes) !== hash)
      throw new FleetIntegrityError(`bundle ${hash.slice(0, 12)}: its bytes do not match its SHA-256`, context);
  }
  let found: BundleSignature[] | undefined;
  if (trusted) {
    found = q
      ? await signatures(
          q,
          schema,
          hash,
          trusted.map((key) => key.keyId),
        )
      : await loadSignatures(cacheDir, hash);
    if (!verifyBundle(bytes, found, trusted))
      throw new FleetSignatureError(
        found.length === 0
          ? `bundle ${hash.slice(0, 12)} has no signature by a trusted key`
          : `bundle ${hash.slice(0, 12)}: its signature does not verify`,
        context,
      );
  }
  const path = hit?.path ?? (await store(cacheDir, hash, bytes));
  // Kept for a boot without the database (best effort: the bundle is verified either way).
  if (found && q) await saveSignatures(cacheDir, hash, found).catch(() => {});
  return path;
}
