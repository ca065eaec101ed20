import { createHash } from 'node:crypto';
import * as core from '@actions/core';
import type { AuthProvider, TokenSet } from '../auth/index.ts';
import { cacheService } from './cache-service.ts';
import { isPublicRepository, untrustedTrigger } from './context.ts';
import type { Inputs } from './inputs.ts';
import { deriveKey, identityOf, keyedDigest } from './seal.ts';

/** The job's view of the workflow cache: restore, save, and a word for the summary. */
export interface WorkflowCache {
  /** Whether this job reads or writes the cache at all. */
  readonly active: boolean;
  note: string;
  restore(): Promise<TokenSet | undefined>;
  save(tokenSet: TokenSet): Promise<void>;
  clear(): Promise<void>;
}

const CACHE_TIMEOUT_MS = 5_000;

function unused(note: string): WorkflowCache {
  return {
    active: false,
    note,
    restore: async () => undefined,
    save: async () => {},
    clear: async () => {},
  };
}

/** The secret that keys the cache when no cache-secret is given: the credential's own secret. */
function credentialSecret(inputs: Inputs): string | undefined {
  const parts = [
    inputs.password,
    inputs['totp-secret'],
    inputs['client-secret'],
    inputs['refresh-token'],
  ];
  const secret = parts.filter(Boolean).join('\n');
  return secret || undefined;
}

/**
 * Whose login an entry holds. A refresh-token login names no user, so it is bound to a digest of
 * its starting token: two accounts sharing a cache-secret never open each other's entries.
 */
function accountOf(inputs: Inputs, provider: AuthProvider): string {
  if (provider.grantType === 'password') return `user:${inputs.username}`;
  if (provider.grantType === 'client_credentials') return `client:${provider.clientId}`;
  const digest = createHash('sha256')
    .update(inputs['refresh-token'] ?? '')
    .digest('hex');
  return `refresh-token:${digest}`;
}

/**
 * Decides whether this job may use the cache (trusted trigger, cache mode, public repository
 * only with a cache-secret) and opens it. `@actions/cache` is imported only by a save.
 */
export async function openWorkflowCache(
  inputs: Inputs,
  provider: AuthProvider,
): Promise<WorkflowCache> {
  if (!inputs.cache) return unused('off');
  const untrusted = untrustedTrigger();
  if (untrusted) {
    core.notice(
      `cdse-auth: the login cache is not used on ${untrusted} (untrusted trigger); this job logs in by itself.`,
    );
    return unused(`not used (${untrusted})`);
  }
  const mode = (process.env.ACTIONS_CACHE_MODE ?? '').toLowerCase();
  const read = mode === '' || mode === 'read' || mode === 'write';
  const write = mode === '' || mode === 'write' || mode === 'write-only';
  if (!read && !write) return unused(`not used (ACTIONS_CACHE_MODE=${mode})`);

  const cacheSecret = inputs['cache-secret'];
  if (!cacheSecret && isPublicRepository()) {
    core.notice(
      'cdse-auth: in a public repository the login cache needs a cache-secret (anyone who can open a pull request can read the cache). Create one with `openssl rand -base64 32`, store it as a secret and pass it as cache-secret. Logging in without the cache.',
    );
    return unused('not used (public repository without cache-secret)');
  }
  const fallbackSecret = credentialSecret(inputs);
  if (!cacheSecret && !fallbackSecret) return unused('off');

  // The library's isFeatureAvailable(), without importing it: only a save loads it.
  const service = cacheService();
  if (!service) return unused('not available on this runner');

  const identity = identityOf(inputs['token-url'], provider.clientId, accountOf(inputs, provider));
  const key = await deriveKey(
    cacheSecret ? { cacheSecret } : { credentialSecret: fallbackSecret as string },
    identity,
  );
  const prefix = inputs['cache-key'] ?? `cdse-auth-${keyedDigest(key, identity)}-`;
  const { ActionsCacheTokenStore } = await import('./cache-store.ts');
  const store = new ActionsCacheTokenStore({
    service,
    prefix,
    key,
    identity,
    workspace: process.env.GITHUB_WORKSPACE || process.cwd(),
    timeoutMs: CACHE_TIMEOUT_MS,
    read,
    write,
    warn: core.warning,
  });
  const view: WorkflowCache = {
    active: true,
    note: 'miss',
    async restore() {
      const tokenSet = await store.load();
      view.note = tokenSet ? 'hit' : 'miss';
      return tokenSet;
    },
    save: (tokenSet) => store.save(tokenSet),
    clear: () => store.clear(),
  };
  return view;
}
