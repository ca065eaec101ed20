import * as core from '@actions/core';
import { type AuthProvider, FileTokenStore, TokenManager, type TokenSet } from '../auth/index.ts';
import { isForkPullRequest } from './context.ts';
import { failStep } from './fail.ts';
import {
  type Inputs,
  maskSecretInputs,
  providerFromInputs,
  readInputs,
  SECRET_INPUTS,
} from './inputs.ts';
import { exportEnvironment, maskTokens, type Result, setOutputs, writeSummary } from './results.ts';
import { createSessionDir } from './session-dir.ts';
import { STATE } from './state.ts';
import { openWorkflowCache } from './workflow-cache.ts';

async function main(): Promise<void> {
  maskSecretInputs();
  let inputs: Inputs;
  let provider: AuthProvider;
  try {
    inputs = readInputs();
    provider = providerFromInputs(inputs);
  } catch (error) {
    // A fork's runs get no secrets: when every secret input is empty, that is why.
    const noSecrets = SECRET_INPUTS.every((name) => !core.getInput(name));
    if (error instanceof Error && noSecrets && isForkPullRequest()) {
      error.message +=
        ' Pull requests from forks receive no secrets, so this step cannot log in there.';
    }
    throw error;
  }

  const session = await createSessionDir();
  core.saveState(STATE.dir, session.dir);
  const store = new FileTokenStore(session.credentialsFile, { onWarning: core.warning });
  const cache = await openWorkflowCache(inputs, provider);
  const cached = await cache.restore();
  if (cached) {
    maskTokens(cached);
    await store.save(cached);
  }

  const manager = new TokenManager(provider, {
    tokenUrl: inputs['token-url'],
    store,
    expirySkew: inputs['expiry-skew'],
    timeout: inputs.timeout,
    maxAttempts: inputs['max-attempts'],
  });
  core.debug(`Token endpoint: ${new URL(manager.tokenUrl).host}; grant: ${provider.grantType}.`);
  let tokenSet: TokenSet;
  try {
    tokenSet = await manager.getTokenSet();
  } finally {
    await manager.close();
  }
  maskTokens(tokenSet);

  if (manager.lastGrant) await cache.save(tokenSet);
  if (cache.active) core.saveState(STATE.cachedExpiry, tokenSet.expiresAt.toISOString());

  const result: Result = {
    tokenSet,
    grant: manager.lastGrant ?? 'cache',
    cacheHit: cached !== undefined,
    session,
    tokenUrl: manager.tokenUrl,
  };
  setOutputs(result, inputs);
  if (inputs['export-env']) exportEnvironment(result);
  core.info(
    `Logged in to CDSE (${result.grant === 'cache' ? 'reused the cached login' : result.grant}); the access token expires at ${tokenSet.expiresAt.toISOString()}.`,
  );
  await writeSummary(result, cache.note);
}

main()
  .catch(failStep)
  // A cache request abandoned after its time limit must not hold the job open.
  .finally(() => process.exit());
