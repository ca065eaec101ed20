import { TokenManager } from '../auth/index.ts';
import { oneLine } from '../auth/redact.ts';
import { SessionFile } from '../front/session-file.ts';
import { pairDigest, type StoredKeyPair } from '../s3/pair.ts';
import { readEvent } from './event.ts';
import { maskSecretInputs, maskValue, providerFromInputs, readInputs } from './inputs.ts';
import { maskPair, maskTokens } from './results.ts';
import { type ActionDeps, defaultDeps } from './runner.ts';
import { removeSessionDir, sessionDirAt } from './session-dir.ts';
import { STATE } from './state.ts';
import { openWorkflowCache, type WorkflowCache } from './workflow-cache.ts';

/**
 * At job end: hand a token set that a later step refreshed back to the cache, delete the S3 key
 * pair if this job is the last to use it, end the server session when asked, and delete the
 * credentials. Nothing here fails the job: its work is done.
 */
export async function run(deps: ActionDeps = defaultDeps()): Promise<void> {
  const { runner } = deps;
  const dir = runner.getState(STATE.dir);
  if (!dir) return; // main failed before it wrote anything
  const session = sessionDirAt(dir);
  try {
    maskSecretInputs(runner);
    const inputs = readInputs(runner);
    const provider = providerFromInputs(inputs);
    const store = new SessionFile(session.credentialsFile, undefined, {
      onWarning: (message) => runner.warning(message),
    });
    // Read inside the lock: a later step's renewal (rotation) may be finishing right now.
    const tokenSet = await store.exclusive(() => store.load());
    if (tokenSet) maskTokens(runner, tokenSet);
    const pair = store.settings.s3;
    if (pair) maskPair(runner, pair);

    const cachedExpiry = runner.getState(STATE.cachedExpiry);
    const refreshedLater =
      tokenSet && cachedExpiry && tokenSet.expiresAt.toISOString() !== cachedExpiry;
    // Whoever ends the login deletes the pair: this job when it used no cache (no other job
    // knows the pair), or when it logs out. A pair the cache does not hold (a later step's
    // `cdse-auth s3`) is this job's alone.
    const shared = !!pair && runner.getState(STATE.s3Shared) === pairDigest(pair);
    let deletePair = !!pair && (inputs.logout || !cachedExpiry || !shared);
    // A pair this job made but another job's save replaced in the cache: nobody else would delete it.
    const checkKept = !!pair && !deletePair && runner.getState(STATE.s3Created) === 'true';
    const cache =
      refreshedLater || (inputs.logout && cachedExpiry) || checkKept
        ? await openWorkflowCache(deps, readEvent(deps.env), inputs, provider)
        : undefined;
    if (checkKept && pair && cache) deletePair = await replacedInCache(cache, pair);

    const manager =
      inputs.logout || deletePair
        ? new TokenManager(provider, {
            tokenUrl: inputs['token-url'],
            store,
            timeout: inputs.timeout,
            maxAttempts: inputs['max-attempts'],
            expirySkew: inputs['expiry-skew'],
            now: deps.now,
            onSecret: (value) => maskValue(runner, value),
          })
        : undefined;
    try {
      // Before the logout: deleting takes an access token of the session.
      if (deletePair && pair && manager) {
        const { deleteS3Keys } = await import('./s3.ts');
        await deleteS3Keys(deps, inputs, pair, () => manager.accessToken(), store);
      }
      if (inputs.logout && manager) {
        // The session this job really used: the file holds the newest refresh token of it.
        const ended = await manager.logout();
        runner.info(ended ? 'Ended the CDSE session.' : 'No CDSE session was left to end.');
        // Later jobs must not pick up the ended session (nor the deleted pair).
        await cache?.clear();
      } else if (refreshedLater && tokenSet) {
        const keep = pair && !deletePair ? { s3: pair } : {};
        await cache?.save({ tokenSet, ...keep });
        runner.debug('Saved the token set a later step refreshed to the cache.');
      }
    } finally {
      await manager?.close();
    }
  } catch (error) {
    runner.warning(
      `cdse-auth post step: ${oneLine(error instanceof Error ? error.message : String(error))}`,
    );
  } finally {
    await removeSessionDir(session.dir);
    runner.debug('Removed the credentials file.');
  }
}

/** Whether the cache's newest entry holds another pair (or none): then this one is orphaned. */
async function replacedInCache(cache: WorkflowCache, pair: StoredKeyPair): Promise<boolean> {
  const newest = await cache.restore();
  return newest !== undefined && newest.s3?.accessKeyId !== pair.accessKeyId;
}
