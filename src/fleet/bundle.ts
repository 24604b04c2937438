/**
 * A bundle made ready for a host to load: from its cache when the file still hashes to its name, else
 * fetched from the registry and checked against its SHA-256 before it is written; with trusted keys, a
 * signature by one of them is required either way.
 */
import { cached, store } from './cache.js';
import { FleetIntegrityError, FleetSignatureError, type FleetErrorContext } from './errors.js';
import type { Queryable } from './pg.js';
import { sha256, verifyBundle, type TrustedKey } from './sign.js';
import { bundleBytes, signatures } from './store.js';

export interface BundleSource {
  readonly cacheDir: string;
  readonly schema: string;
  readonly trusted: readonly TrustedKey[] | undefined;
}

/** The path of the verified file of bundle `hash`; rejects ERR_FLEET_INTEGRITY or ERR_FLEET_SIGNATURE. */
export async function fetchBundle(
  q: Queryable,
  source: BundleSource,
  hash: string,
  context: FleetErrorContext,
): Promise<string> {
  const { cacheDir, schema, trusted } = source;
  const hit = await cached(cacheDir, hash);
  let bytes = hit?.bytes;
  if (!bytes) {
    bytes = await bundleBytes(q, schema, hash);
    if (!bytes) throw new FleetIntegrityError(`bundle ${hash} is missing from the registry`, context);
    if (sha256(bytes) !== hash)
      throw new FleetIntegrityError(`bundle ${hash.slice(0, 12)}: its bytes do not match its SHA-256`, context);
  }
  if (trusted) {
    const found = await signatures(
      q,
      schema,
      hash,
      trusted.map((key) => key.keyId),
    );
    if (!verifyBundle(bytes, found, trusted))
      throw new FleetSignatureError(
        found.length === 0
          ? `bundle ${hash.slice(0, 12)} has no signature by a trusted key`
          : `bundle ${hash.slice(0, 12)}: its signature does not verify`,
        context,
      );
  }
  return hit?.path ?? (await store(cacheDir, hash, bytes));
}
