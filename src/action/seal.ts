import {
  createCipheriv,
  createDecipheriv,
  createHash,
  hkdf,
  randomBytes,
  scrypt,
} from 'node:crypto';
import { promisify } from 'node:util';

const MAGIC = Buffer.from('CDSEAUTH1');
const IV_BYTES = 12;
const TAG_BYTES = 16;
// 64 MiB and ~0.2 s per derivation: slow enough to make guessing a password from a cache entry
// expensive, cheap enough for every job to pay once.
const SCRYPT = { N: 2 ** 16, r: 8, p: 1, maxmem: 128 * 1024 * 1024 };

/** Non-secret facts that an entry is bound to: whose login it is and which format it uses. */
export function identityOf(tokenUrl: string, clientId: string, user: string): string {
  return ['cdse-auth cache v1', tokenUrl, clientId, user].join('\n');
}

/**
 * The 256-bit key that seals a cache entry. A high-entropy `cache-secret` only needs HKDF; a
 * credential secret (a password) is stretched with scrypt, salted by the identity, so an entry
 * read from the cache is an expensive offline guessing target, and one per user.
 */
export async function deriveKey(
  material: { cacheSecret: string } | { credentialSecret: string },
  identity: string,
): Promise<Buffer> {
  const salt = createHash('sha256').update(identity).digest();
  if ('cacheSecret' in material) {
    const key = await promisify(hkdf)(
      'sha256',
      material.cacheSecret,
      salt,
      'cdse-auth cache key',
      32,
    );
    return Buffer.from(key);
  }
  return new Promise((resolve, reject) => {
    scrypt(material.credentialSecret, salt, 32, SCRYPT, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

/** AES-256-GCM with a fresh IV; the identity is authenticated as associated data. */
export function seal(plain: Buffer, key: Buffer, identity: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(identity));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([MAGIC, iv, cipher.getAuthTag(), body]);
}

/** The plaintext, or `undefined` for anything not sealed by `seal` with this key and identity. */
export function unseal(sealed: Buffer, key: Buffer, identity: string): Buffer | undefined {
  const head = MAGIC.length;
  if (sealed.length < head + IV_BYTES + TAG_BYTES || !sealed.subarray(0, head).equals(MAGIC)) {
    return undefined;
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(head, head + IV_BYTES));
    decipher.setAAD(Buffer.from(identity));
    decipher.setAuthTag(sealed.subarray(head + IV_BYTES, head + IV_BYTES + TAG_BYTES));
    return Buffer.concat([
      decipher.update(sealed.subarray(head + IV_BYTES + TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    return undefined;
  }
}

/** A key name that reveals nothing about the user: keyed by the entry key itself. */
export function keyedDigest(key: Buffer, identity: string): string {
  return createHash('sha256').update(key).update(identity).digest('hex').slice(0, 24);
}
