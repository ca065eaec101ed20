import {
  type AuthProvider,
  ConfigurationError,
  TokenManager,
  type TokenSet,
} from '../auth/index.ts';
import { SessionFile } from '../front/session-file.ts';
import { pairDigest } from '../s3/pair.ts';
import { isForkPullRequest, readEvent, type WorkflowEvent } from './event.ts';
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
import {
  exportEnvironment,
  type LoginResult,
  maskPair,
  maskTokens,
  setOutputs,
  writeSummary,
} from './results.ts';
import { type ActionDeps, defaultDeps } from './runner.ts';
import { createSessionDir } from './session-dir.ts';
import { STATE } from './state.ts';
import { openWorkflowCache } from './workflow-cache.ts';

/**
 * The main step: log in (or reuse the workflow's login), then hand the tokens to later steps.
 * Never throws: a failure is one `::error::` line and exit code 1, through `deps.runner`.
 */
export async function run(deps: ActionDeps = defaultDeps()): Promise<void> {
  try {
    await main(deps);
  } catch (error) {
    failStep(deps.runner, error);
  }
}

function configuration(
  { runner }: ActionDeps,
  event: WorkflowEvent,
): { inputs: Inputs; provider: AuthProvider } {
  try {
    const inputs = readInputs(runner);
    return { inputs, provider: providerFromInputs(inputs) };
  } catch (error) {
    const noSecrets = SECRET_INPUTS.every((name) => !runner.getInput(name));
    if (!(error instanceof ConfigurationError) || !noSecrets) throw error;
    // Every secret input empty: the secrets were most likely never handed to this job.
    const hint = isForkPullRequest(event)
      ? 'Pull requests from forks receive no secrets, so this step cannot log in there.'
      : // biome-ignore lint/suspicious/noTemplateCurlyInString: the workflow expression, quoted
        'Every secret input is empty: a `${{ secrets.NAME }}` that does not exist, or is not passed to this job (Dependabot runs, reusable workflows called without `secrets:`), is empty.';
    throw new ConfigurationError(error.message, { ...error, hint });
  }
}

async function main(deps: ActionDeps): Promise<void> {
  const { runner, env } = deps;
  maskSecretInputs(runner);
  const event = readEvent(env);
  const { inputs, provider } = configuration(deps, event);

  const session = await createSessionDir(env);
  runner.saveState(STATE.dir, session.dir);
  const file = new SessionFile(
    session.credentialsFile,
    {
      tokenUrl: inputs['token-url'],
      clientId: provider.clientId,
      timeout: inputs.timeout,
      maxAttempts: inputs['max-attempts'],
      expirySkew: inputs['expiry-skew'],
      ...(inputs.scope && { scope: inputs.scope }),
      s3KeysUrl: inputs['s3-keys-url'],
      s3Endpoint: inputs['s3-endpoint'],
      fromCache: false,
      tokenRequests: 0,
    },
    { onWarning: (message) => runner.warning(message) },
  );
  const cache = await openWorkflowCache(deps, event, inputs, provider);
  const store = new JobTokenStore(
    file,
    cache,
    (login) => {
      maskTokens(runner, login.tokenSet);
      if (login.s3) maskPair(runner, login.s3);
    },
    { holdSaves: inputs.s3 },
  );

  const manager = new TokenManager(provider, {
    tokenUrl: inputs['token-url'],
    store,
    expirySkew: inputs['expiry-skew'],
    timeout: inputs.timeout,
    maxAttempts: inputs['max-attempts'],
    now: deps.now,
    ...(inputs.scope && { scope: inputs.scope }),
    // The TOTP code made from totp-secret, and every token, are masked before they are sent or used.
    onSecret: (value) => maskValue(runner, value),
  });
  runner.debug(`Token endpoint: ${new URL(manager.tokenUrl).host}; grant: ${provider.grantType}.`);
  let tokenSet: TokenSet;
  try {
    tokenSet = await manager.getTokenSet();
  } finally {
    await manager.close();
  }
  maskTokens(runner, tokenSet);
  if (cache.active) runner.saveState(STATE.cachedExpiry, tokenSet.expiresAt.toISOString());
  // A pair other jobs share stays, whether or not this job hands out keys.
  if (cache.active && store.s3) runner.saveState(STATE.s3Shared, pairDigest(store.s3));

  const result: LoginResult = {
    tokenSet,
    grant: manager.lastGrant ?? 'cache',
    cacheHit: store.fromCache,
    requests: manager.requestCount,
    session,
    tokenUrl: manager.tokenUrl,
  };
  setOutputs(runner, result, inputs);
  if (inputs['export-env']) exportEnvironment(runner, result);
  const how = result.grant === 'cache' ? 'reused the cached login' : result.grant;
  runner.info(
    `Logged in to CDSE (${how}); the access token expires at ${tokenSet.expiresAt.toISOString()}.`,
  );
  await writeSummary(runner, result, cache.note);
  // After the login's own lines: a cap error is then the step's last word.
  if (inputs.s3) await (await import('./s3.ts')).provideS3Keys(deps, inputs, store, tokenSet);
}
