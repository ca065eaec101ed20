// The S3 part of the action: one key pair per workflow, made from the login, handed to later
// steps, and deleted by whoever ends the login. Loaded only with `s3: true` or when a pair must go.
import { CdseAuthError, type TokenSet } from '../auth/index.ts';
import { oneLine } from '../auth/redact.ts';
import type { SessionFile } from '../front/session-file.ts';
import { s3Dispatcher } from '../s3/dispatcher.ts';
import { s3Environment } from '../s3/environment.ts';
import { createKeyPair, deleteKeyPair, type KeysOptions, S3KeyCapError } from '../s3/keys.ts';
import { pairDigest, pairUsable, type StoredKeyPair, storedPair } from '../s3/pair.ts';
import { s3Probe, waitUntilUsable } from '../s3/ready.ts';
import type { Inputs } from './inputs.ts';
import type { JobTokenStore } from './job-store.ts';
import { maskPair } from './results.ts';
import type { ActionDeps, Runner } from './runner.ts';
import { STATE } from './state.ts';

const keysOptions = (inputs: Inputs, dispatcher: KeysOptions['dispatcher']): KeysOptions => ({
  timeoutMs: inputs.timeout * 1000,
  maxAttempts: inputs['max-attempts'],
  ...(dispatcher && { dispatcher }),
});

/**
 * Reuses the workflow's pair (restored with the login) or creates one, masks it before anything
 * is printed, keeps it in the credentials file and the cache entry, and hands it out.
 */
export async function provideS3Keys(
  { runner, env, now }: ActionDeps,
  inputs: Inputs,
  store: JobTokenStore,
  tokenSet: TokenSet,
): Promise<void> {
  const keysUrl = inputs['s3-keys-url'];
  const endpoint = inputs['s3-endpoint'];
  const restored = store.s3;
  const reusable =
    restored && restored.keysUrl === keysUrl && pairUsable(restored, now()) ? restored : undefined;
  const dispatcher = s3Dispatcher(env);
  try {
    let pair = reusable;
    if (!pair) {
      try {
        pair = storedPair(
          await createKeyPair(keysUrl, tokenSet.accessToken, keysOptions(inputs, dispatcher)),
          keysUrl,
        );
      } catch (error) {
        // The message already says how many pairs exist and how to delete some: one line.
        if (error instanceof S3KeyCapError) throw new CdseAuthError(error.message);
        throw error;
      }
    }
    maskPair(runner, pair);
    // Recorded at once: from here on the post step can delete it whatever fails next.
    await store.file.updateSettings({ s3: pair });
    store.s3 = pair;
    if (!reusable) runner.saveState(STATE.s3Created, 'true');
    if (store.cache.active) runner.saveState(STATE.s3Shared, pairDigest(pair));

    // A pair from the cache was waited for by the job that made it.
    const [ready] = await Promise.all([
      // Bounded like one request: a pair S3 still refuses by then is a warning, not a failure.
      reusable ? undefined : waitForPropagation(runner, pair, endpoint, dispatcher, inputs.timeout),
      store.flush(tokenSet, !reusable),
    ]);

    runner.setOutput('s3-access-key-id', pair.accessKeyId);
    runner.setOutput('s3-secret-access-key', pair.secretAccessKey);
    runner.setOutput('s3-endpoint', endpoint);
    if (inputs['export-env']) {
      const vars = s3Environment({ ...pair, endpoint }, env);
      for (const [name, value] of Object.entries(vars)) {
        if (value !== undefined) runner.exportVariable(name, value);
      }
    }
    const how = reusable ? 'reused the workflow’s pair from the cache' : 'created a key pair';
    runner.info(
      `S3 keys for ${new URL(endpoint).host}: ${how}${pair.expiresAt ? `; it expires at ${pair.expiresAt}` : ''}.${ready ?? ''}`,
    );
    const deleter = store.cache.active
      ? 'the job with `logout: true` deletes it'
      : 'the post step deletes it';
    await runner.appendSummary(
      `S3 keys: ${reusable ? 'reused from the cache' : 'created'}; ${deleter}.\n\n`,
    );
  } finally {
    await dispatcher.close();
  }
}

async function waitForPropagation(
  runner: Runner,
  pair: StoredKeyPair,
  endpoint: string,
  dispatcher: KeysOptions['dispatcher'],
  seconds: number,
): Promise<string> {
  const result = await waitUntilUsable(
    s3Probe({ ...pair, endpoint, ...(dispatcher && { dispatcher }), timeoutMs: seconds * 1000 }),
    { deadlineMs: seconds * 1000 },
  );
  runner.debug(`S3 key pair probes: ${result.probes} in ${result.waitedMs} ms.`);
  if (result.usable) return result.probes > 1 ? ` Usable after ${result.waitedMs} ms.` : '';
  const last = result.last
    ? `HTTP ${result.last.status}${result.last.code ? ` ${result.last.code}` : ''}`
    : 'no answer';
  runner.warning(
    `The new S3 key pair was not accepted by ${new URL(endpoint).host} within ${seconds} s (last answer: ${last}); later steps may have to retry.`,
  );
  return '';
}

/**
 * Deletes the pair (only one this project created: the one in the file). A failure is one
 * warning, never a failed job: the work of the job is done.
 */
export async function deleteS3Keys(
  { runner, env }: ActionDeps,
  inputs: Inputs,
  pair: StoredKeyPair,
  accessToken: () => Promise<string>,
  file: SessionFile,
): Promise<void> {
  const dispatcher = s3Dispatcher(env);
  try {
    const gone = await deleteKeyPair(
      pair.keysUrl,
      await accessToken(),
      pair.accessKeyId,
      keysOptions(inputs, dispatcher),
    );
    await file.updateSettings({ s3: undefined }).catch(() => false);
    runner.info(
      gone ? 'Deleted the S3 key pair of this login.' : 'The S3 key pair was already gone.',
    );
  } catch (error) {
    runner.warning(
      `cdse-auth post step: could not delete the S3 key pair (${oneLine(error instanceof Error ? error.message : String(error))}). Delete it with \`cdse-auth s3 list\` and \`cdse-auth s3 delete ID\`.`,
    );
  } finally {
    await dispatcher.close();
  }
}
