/**
 * Signed bundles: an Ed25519 signature over a bundle's bytes (`node:crypto`), kept beside the bundle and
 * named by its key id, the SHA-256 of the public key (DER, SubjectPublicKeyInfo). A host given public keys
 * loads only bundles that one of them signed, so write access to the database alone cannot run code.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { PluginOptionTypeError } from 'isoplug';

/** A key: PEM text (or a Buffer of it), or a `KeyObject`. */
export type KeyLike = string | Buffer | KeyObject;

export interface TrustedKey {
  readonly keyId: string;
  readonly key: KeyObject;
}

export interface BundleSignature {
  readonly keyId: string;
  readonly signature: Uint8Array;
}

function isKeyObject(value: unknown): value is KeyObject {
  return typeof value === 'object' && value !== null && typeof (value as KeyObject).asymmetricKeyType === 'string';
}

/** The key id of a public key: hex SHA-256 of its SPKI DER encoding. */
export function keyId(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/** An Ed25519 private key from PEM or a KeyObject; a TypeError naming `option` otherwise. */
export function privateKey(option: string, value: unknown): KeyObject {
  let key: KeyObject;
  try {
    if (isKeyObject(value)) key = value;
    else if (typeof value === 'string' || Buffer.isBuffer(value)) key = createPrivateKey(value);
    else throw new TypeError('not a key');
  } catch (cause) {
    throw Object.assign(new PluginOptionTypeError(option, 'expected an Ed25519 private key (PEM or KeyObject)'), {
      cause,
    });
  }
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519')
    throw new PluginOptionTypeError(
      option,
      `expected an Ed25519 private key, got ${key.asymmetricKeyType ?? key.type}`,
    );
  return key;
}

/** Ed25519 public keys from one key or a list (PEM or KeyObject; a private key gives its public half). */
export function trustedKeys(option: string, value: unknown): TrustedKey[] {
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  if (list.length === 0) throw new PluginOptionTypeError(option, 'expected at least one public key');
  return list.map((item, index) => {
    const name = Array.isArray(value) ? `${option}[${index}]` : option;
    let key: KeyObject;
    try {
      if (isKeyObject(item)) key = item.type === 'private' ? createPublicKey(item) : item;
      else if (typeof item === 'string' || Buffer.isBuffer(item)) key = createPublicKey(item);
      else throw new TypeError('not a key');
    } catch (cause) {
      throw Object.assign(new PluginOptionTypeError(name, 'expected an Ed25519 public key (PEM or KeyObject)'), {
        cause,
      });
    }
    if (key.asymmetricKeyType !== 'ed25519')
      throw new PluginOptionTypeError(name, `expected an Ed25519 public key, got ${key.asymmetricKeyType}`);
    return { keyId: keyId(key), key };
  });
}

/** Signs `bytes` with an Ed25519 private key. */
export function signBundle(bytes: Uint8Array, key: KeyObject): BundleSignature {
  return { keyId: keyId(createPublicKey(key)), signature: sign(null, bytes, key) };
}

/** True when one of `signatures` is a valid signature of `bytes` by one of `trusted`. */
export function verifyBundle(
  bytes: Uint8Array,
  signatures: readonly BundleSignature[],
  trusted: readonly TrustedKey[],
): boolean {
  for (const { keyId: id, signature } of signatures) {
    const key = trusted.find((candidate) => candidate.keyId === id);
    if (key && verify(null, bytes, key.key, signature)) return true;
  }
  return false;
}

/** Hex SHA-256 of `bytes`. */
export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
