import type { TokenSet } from '../auth/index.ts';
import type { StoredKeyPair } from '../s3/pair.ts';
import type { Inputs } from './inputs.ts';
import type { Runner } from './runner.ts';
import type { SessionDir } from './session-dir.ts';

export type GrantOutput = 'password' | 'refresh_token' | 'client_credentials' | 'cache';

export interface LoginResult {
  tokenSet: TokenSet;
  grant: GrantOutput;
  cacheHit: boolean;
  /** Token requests this step made (0 when the cached login was used as it was). */
  requests: number;
  session: SessionDir;
  tokenUrl: string;
}

/** Registers every token with the runner's masker. Call before anything prints. */
export function maskTokens(runner: Runner, tokenSet: TokenSet): void {
  for (const secret of tokenSet.secrets()) runner.setSecret(secret);
}

/** Registers an S3 key pair with the masker: the id too, as it names whose keys these are. */
export function maskPair(runner: Runner, pair: StoredKeyPair): void {
  runner.setSecret(pair.secretAccessKey);
  runner.setSecret(pair.accessKeyId);
}

export function setOutputs(runner: Runner, result: LoginResult, inputs: Inputs): void {
  const { tokenSet } = result;
  runner.setOutput('access-token', tokenSet.accessToken);
  runner.setOutput('token-type', tokenSet.tokenType);
  runner.setOutput('expires-at', tokenSet.expiresAt.toISOString());
  runner.setOutput('grant', result.grant);
  runner.setOutput('cache-hit', String(result.cacheHit));
  runner.setOutput('credentials-file', result.session.credentialsFile);
  if (inputs['output-refresh-token'] && tokenSet.refreshToken) {
    runner.setOutput('refresh-token', tokenSet.refreshToken);
  }
}

export function exportEnvironment(runner: Runner, result: LoginResult): void {
  runner.exportVariable('CDSE_ACCESS_TOKEN', result.tokenSet.accessToken);
  runner.exportVariable('CDSE_TOKEN_EXPIRES_AT', result.tokenSet.expiresAt.toISOString());
  runner.exportVariable('CDSE_TOKEN_URL', result.tokenUrl);
  runner.exportVariable('CDSE_CREDENTIALS_FILE', result.session.credentialsFile);
  runner.addPath(result.session.binDir);
}

const GRANT_TEXT: Record<GrantOutput, string> = {
  password: 'password login',
  refresh_token: 'refresh token',
  client_credentials: 'client credentials',
  cache: 'reused the cached login (no token request)',
};

/** The job summary: what happened, never a secret (no token, user name or file path). */
export async function writeSummary(
  runner: Runner,
  result: LoginResult,
  cacheNote: string,
): Promise<void> {
  const refresh = result.tokenSet.refreshToken
    ? (result.tokenSet.refreshExpiresAt?.toISOString() ?? 'no expiry')
    : 'none';
  // A refresh grant renews either the given refresh-token or the session the cache held.
  const grant =
    result.grant === 'refresh_token' && result.cacheHit
      ? 'refreshed the cached login (refresh token)'
      : GRANT_TEXT[result.grant];
  const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
  await runner.appendSummary(
    [
      '### CDSE login',
      '',
      row(['Grant', 'Access token expires', 'Refresh until', 'Cache', 'Session', 'Token requests']),
      row(['---', '---', '---', '---', '---', '---:']),
      row([
        grant,
        result.tokenSet.expiresAt.toISOString(),
        refresh,
        cacheNote,
        // Keycloak's session id: names which of the user's sessions this job used, reveals nothing.
        result.tokenSet.sessionId ?? 'unknown',
        String(result.requests),
      ]),
      '',
      `Token endpoint: ${new URL(result.tokenUrl).host}. Later steps: \`cdse-auth token\`.`,
      '',
    ].join('\n'),
  );
}
