import type { AuthProvider } from '../auth/index.ts';
import { accountOf, cachePolicy } from './cache-policy.ts';
import type { CachedLogin } from './cache-store.ts';
import type { WorkflowEvent } from './event.ts';
import type { Inputs } from './inputs.ts';
import type { ActionDeps } from './runner.ts';
import { deriveKey, identityOf, keyedDigest } from './seal.ts';

/** The job's view of the workflow cache: restore, save, and a word for the summary. */
export interface WorkflowCache {
  /** Whether this job reads or writes the cache at all. */
  readonly active: boolean;
  note: string;
  restore(): Promise<CachedLogin | undefined>;
  /** Saves under a fresh key; the S3 pair goes with every save, or later jobs would lose it. */
  save(login: CachedLogin): Promise<void>;
  clear(): Promise<void>;
}

const CACHE_TIMEOUT_MS = 5_000;

function cacheNotUsed(note: string): WorkflowCache {
  return {
    active: false,
    note,
    restore: async () => undefined,
    save: async () => {},
    clear: async () => {},
  };
}

/**
 * Opens the workflow cache as `cachePolicy` allows (trusted trigger, cache mode, public
 * repository only with a cache-secret). `@actions/cache` is imported only by a save.
 */
export async function openWorkflowCache(
  { runner, env }: ActionDeps,
  event: WorkflowEvent,
  inputs: Inputs,
  provider: AuthProvider,
): Promise<WorkflowCache> {
  const policy = cachePolicy(event, inputs, env);
  if (!policy.use) {
    if (policy.notice) runner.notice(policy.notice);
    return cacheNotUsed(policy.note);
  }
  const identity = identityOf(inputs['token-url'], provider.clientId, accountOf(inputs, provider));
  const key = await deriveKey(policy.material, identity);
  const prefix = inputs['cache-key'] ?? `cdse-auth-${keyedDigest(key, identity)}-`;
  const { ActionsCacheTokenStore } = await import('./cache-store.ts');
  const store = new ActionsCacheTokenStore({
    runner,
    env,
    service: policy.service,
    prefix,
    key,
    identity,
    workspace: env.GITHUB_WORKSPACE || process.cwd(),
    timeoutMs: CACHE_TIMEOUT_MS,
    read: policy.read,
    write: policy.write,
  });
  const cache: WorkflowCache = {
    active: true,
    note: 'miss',
    async restore() {
      const login = await store.loadEntry();
      cache.note = login ? 'hit' : 'miss';
      return login;
    },
    save: (login) => store.save(login.tokenSet, login.s3),
    clear: () => store.clear(),
  };
  return cache;
}
