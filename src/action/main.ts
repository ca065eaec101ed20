import * as core from '@actions/core';
import {
  type AuthProvider,
  ConfigurationError,
  TokenManager,
  type TokenSet,
} from '../auth/index.ts';
import { SessionFile } from '../front/session-file.ts';
import { isForkPullRequest } from './context.ts';
import { failStep } from './fail.ts';
import {
  type Inputs,
  maskSecretInputs,
  maskValue,
  providerFromInputs,
  readInputs,
  SECRET_INPUTS,
} from './inputs.ts';
import { JobTokenStore } from './job-store.ts';
import { exportEnvironment, maskTokens, type Result, setOutputs, writeSummary } from './results.ts';
import { createSessionDir } from './session-dir.ts';
import { STATE } from './state.ts';
import { openWorkflowCache } from './workflow-cache.ts';

/** The main step: log in (or reuse the workflow's login), then hand the tokens to later steps. */
export async function run(): Promise<void> {
  try {
    await main();
  } catch (error) {
    failStep(error);
  }
}

function configuration(): { inputs: Inputs; provider: AuthProvider } {
  try {
    const inputs = readInputs();
    return { inputs, provider: providerFromInputs(inputs) };
  } catch (error) {
    const noSecrets = SECRET_INPUTS.every((name) => !core.getInput(name));
    if (!(error instanceof ConfigurationError) || !noSecrets) throw error;
    // Every secret input empty: the secrets were most likely never handed to this job.
    const hint = isForkPullRequest()
      ? 'Pull requests from forks receive no secrets, so this step cannot log in there.'
      : // biome-ignore lint/suspicious/noTemplateCurlyInString: the workflow expression, quoted
        'Every secret input is empty: a `${{ secrets.NAME }}` that does not exist, or is not passed to this job (Dependabot runs, reusable workflows called without `secrets:`), is empty.';
    throw new ConfigurationError(error.message, { hint });
  }
}

async function main(): Promise<void> {
  maskSecretInputs();
  const { inputs, provider } = configuration();

  const session = await createSessionDir();
  core.saveState(STATE.dir, session.dir);
  const file = new SessionFile(
    session.credentialsFile,
    {
      tokenUrl: inputs['token-url'],
      clientId: provider.clientId,
      timeout: inputs.timeout,
      maxAttempts: inputs['max-attempts'],
      expirySkew: inputs['expiry-skew'],
      ...(inputs.scope && { scope: inputs.scope }),
      fromCache: false,
      tokenRequests: 0,
    },
    { onWarning: core.warning },
  );
  const cache = await openWorkflowCache(inputs, provider);
  const store = new JobTokenStore(file, cache, maskTokens);

  const manager = new TokenManager(provider, {
    tokenUrl: inputs['token-url'],
    store,
    expirySkew: inputs['expiry-skew'],
    timeout: inputs.timeout,
    maxAttempts: inputs['max-attempts'],
    ...(inputs.scope && { scope: inputs.scope }),
    // The TOTP code made from totp-secret, and every token, are masked before they are sent or used.
    onSecret: maskValue,
  });
  core.debug(`Token endpoint: ${new URL(manager.tokenUrl).host}; grant: ${provider.grantType}.`);
  let tokenSet: TokenSet;
  try {
    tokenSet = await manager.getTokenSet();
  } finally {
    await manager.close();
  }
  maskTokens(tokenSet);
  if (cache.active) core.saveState(STATE.cachedExpiry, tokenSet.expiresAt.toISOString());

  const result: Result = {
    tokenSet,
    grant: manager.lastGrant ?? 'cache',
    cacheHit: store.fromCache,
    requests: manager.requestCount,
    session,
    tokenUrl: manager.tokenUrl,
  };
  setOutputs(result, inputs);
  if (inputs['export-env']) exportEnvironment(result);
  const how = result.grant === 'cache' ? 'reused the cached login' : result.grant;
  core.info(
    `Logged in to CDSE (${how}); the access token expires at ${tokenSet.expiresAt.toISOString()}.`,
  );
  await writeSummary(result, cache.note);
}
