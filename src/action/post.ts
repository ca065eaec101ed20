import { TokenManager } from '../auth/index.ts';
import { oneLine } from '../auth/redact.ts';
import { SessionFile } from '../front/session-file.ts';
import { readEvent } from './event.ts';
import { maskSecretInputs, maskValue, providerFromInputs, readInputs } from './inputs.ts';
import { maskTokens } from './results.ts';
import { type ActionDeps, defaultDeps } from './runner.ts';
import { removeSessionDir, sessionDirAt } from './session-dir.ts';
import { STATE } from './state.ts';
import { openWorkflowCache } from './workflow-cache.ts';

/**
 * At job end: hand a token set that a later step refreshed back to the cache, end the server
 * session when asked, and delete the credentials. Nothing here fails the job: its work is done.
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

    const cachedExpiry = runner.getState(STATE.cachedExpiry);
    const refreshedLater =
      tokenSet && cachedExpiry && tokenSet.expiresAt.toISOString() !== cachedExpiry;
    const cache =
      refreshedLater || (inputs.logout && cachedExpiry)
        ? await openWorkflowCache(deps, readEvent(deps.env), inputs, provider)
        : undefined;

    if (inputs.logout) {
      // The session this job really used: the file holds the newest refresh token of it.
      const manager = new TokenManager(provider, {
        tokenUrl: inputs['token-url'],
        store,
        timeout: inputs.timeout,
        maxAttempts: inputs['max-attempts'],
        now: deps.now,
        onSecret: (value) => maskValue(runner, value),
      });
      try {
        const ended = await manager.logout();
        runner.info(ended ? 'Ended the CDSE session.' : 'No CDSE session was left to end.');
      } finally {
        await manager.close();
      }
      // Later jobs must not pick up the ended session.
      await cache?.clear();
    } else if (refreshedLater && tokenSet) {
      await cache?.save(tokenSet);
      runner.debug('Saved the token set a later step refreshed to the cache.');
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
