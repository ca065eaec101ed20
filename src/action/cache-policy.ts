import { createHash } from 'node:crypto';
import type { AuthProvider } from '../auth/index.ts';
import { type CacheService, cacheService } from './cache-service.ts';
import { isPublicRepository, untrustedTrigger, type WorkflowEvent } from './event.ts';
import type { Inputs } from './inputs.ts';

/** What keys the cache: a high-entropy cache-secret, or the credential's own secret. */
export type KeyMaterial = { cacheSecret: string } | { credentialSecret: string };

export type CachePolicy =
  | { use: false; note: string; notice?: string }
  | { use: true; read: boolean; write: boolean; material: KeyMaterial; service: CacheService };

/**
 * Whether this job may use the workflow cache, and how: the trust rules as one pure decision
 * (the event, the inputs, the environment in; no I/O), tested as a table.
 */
export function cachePolicy(
  event: WorkflowEvent,
  inputs: Inputs,
  env: NodeJS.ProcessEnv,
): CachePolicy {
  if (!inputs.cache) return { use: false, note: 'off' };
  const untrusted = untrustedTrigger(event);
  if (untrusted) {
    return {
      use: false,
      note: `not used (${untrusted})`,
      notice: `cdse-auth: the login cache is not used on ${untrusted} (untrusted trigger); this job logs in by itself.`,
    };
  }
  const mode = (env.ACTIONS_CACHE_MODE ?? '').toLowerCase();
  const read = mode === '' || mode === 'read' || mode === 'write';
  const write = mode === '' || mode === 'write' || mode === 'write-only';
  if (!read && !write) return { use: false, note: `not used (ACTIONS_CACHE_MODE=${mode})` };

  const cacheSecret = inputs['cache-secret'];
  if (!cacheSecret && isPublicRepository(event)) {
    return {
      use: false,
      note: 'not used (public repository without cache-secret)',
      notice:
        'cdse-auth: in a public repository the login cache needs a cache-secret (anyone who can open a pull request can read the cache). Create one with `openssl rand -base64 32`, store it as a secret and pass it as cache-secret. Logging in without the cache.',
    };
  }
  const credentialSecret = credentialSecretOf(inputs);
  if (!cacheSecret && !credentialSecret) return { use: false, note: 'off' };
  // The library's isFeatureAvailable(), without importing it: only a save loads it.
  const service = cacheService(env);
  if (!service) return { use: false, note: 'not available on this runner' };
  const material: KeyMaterial = cacheSecret
    ? { cacheSecret }
    : { credentialSecret: credentialSecret as string };
  return { use: true, read, write, material, service };
}

/** The secret that keys the cache when no cache-secret is given: the credential's own secret. */
function credentialSecretOf(inputs: Inputs): string | undefined {
  const parts = [
    inputs.password,
    inputs['totp-secret'],
    inputs['client-secret'],
    inputs['refresh-token'],
  ];
  return parts.filter(Boolean).join('\n') || undefined;
}

/**
 * Whose login an entry holds. A refresh-token login names no user, so it is bound to a digest of
 * its starting token: two accounts sharing a cache-secret never open each other's entries.
 */
export function accountOf(inputs: Inputs, provider: AuthProvider): string {
  if (provider.grantType === 'password') return `user:${inputs.username}`;
  if (provider.grantType === 'client_credentials') return `client:${provider.clientId}`;
  const digest = createHash('sha256')
    .update(inputs['refresh-token'] ?? '')
    .digest('hex');
  return `refresh-token:${digest}`;
}
