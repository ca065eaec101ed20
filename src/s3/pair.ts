// The key pair a login keeps once it has created one: in the sealed cache entry (for the other
// jobs of the workflow) and in the 0600 credentials file (for later steps). The same schema guards
// both, because both are read back from places something else could have written.
import { createHash } from 'node:crypto';
import * as z from 'zod/mini';
import { checkEndpointUrl } from '../auth/endpoint.ts';
import { AccessKeyId, type KeyPair, SecretAccessKey } from './keys.ts';

export const StoredKeyPair = z.object({
  accessKeyId: AccessKeyId,
  secretAccessKey: SecretAccessKey,
  /** ISO 8601; absent when the keys manager named no expiry. */
  expiresAt: z.optional(z.iso.datetime({ offset: true })),
  /** The keys manager that made it: the only one that can delete it. */
  keysUrl: z.string().check(
    z.refine((url) => {
      try {
        checkEndpointUrl(url, 's3-keys-url');
        return true;
      } catch {
        return false;
      }
    }),
  ),
});
export type StoredKeyPair = z.infer<typeof StoredKeyPair>;

export function storedPair(pair: KeyPair, keysUrl: string): StoredKeyPair {
  return {
    accessKeyId: pair.accessKeyId,
    secretAccessKey: pair.secretAccessKey,
    ...(pair.expiresAt && { expiresAt: pair.expiresAt.toISOString() }),
    keysUrl,
  };
}

/** A pair that lives past `now + marginMs` (a pair without an expiry counts as living). */
export function pairUsable(pair: StoredKeyPair, now: number, marginMs = 60_000): boolean {
  return pair.expiresAt === undefined || Date.parse(pair.expiresAt) > now + marginMs;
}

/**
 * A name for a pair that can go where the id must not (GITHUB_STATE): the id is masked like the
 * secret, so the post step compares digests.
 */
export const pairDigest = (pair: Pick<StoredKeyPair, 'accessKeyId'>): string =>
  createHash('sha256').update(`cdse-auth s3 ${pair.accessKeyId}`).digest('hex').slice(0, 16);

/** The values a log masker must know before a pair's variables are printed anywhere. */
export const pairMasks = (pair: Pick<StoredKeyPair, 'accessKeyId' | 'secretAccessKey'>) => [
  pair.secretAccessKey,
  pair.accessKeyId,
];
