import * as core from '@actions/core';
import type { TokenSet } from '../auth/index.ts';
import type { Inputs } from './inputs.ts';
import type { SessionDir } from './session-dir.ts';

export type GrantOutput = 'password' | 'refresh_token' | 'client_credentials' | 'cache';

export interface Result {
  tokenSet: TokenSet;
  grant: GrantOutput;
  cacheHit: boolean;
  /** Token requests this step made (0 when the cached login was used as it was). */
  requests: number;
  session: SessionDir;
  tokenUrl: string;
}

/** Registers every token with the runner's masker. Call before anything prints. */
export function maskTokens(tokenSet: TokenSet): void {
  core.setSecret(tokenSet.accessToken);
  core.setSecret(tokenSet.authorizationHeader);
  if (tokenSet.refreshToken) core.setSecret(tokenSet.refreshToken);
}

export function setOutputs(result: Result, inputs: Inputs): void {
  const { tokenSet } = result;
  core.setOutput('access-token', tokenSet.accessToken);
  core.setOutput('token-type', tokenSet.tokenType);
  core.setOutput('expires-at', tokenSet.expiresAt.toISOString());
  core.setOutput('grant', result.grant);
  core.setOutput('cache-hit', String(result.cacheHit));
  core.setOutput('credentials-file', result.session.credentialsFile);
  if (inputs['output-refresh-token'] && tokenSet.refreshToken) {
    core.setOutput('refresh-token', tokenSet.refreshToken);
  }
}

export function exportEnvironment(result: Result): void {
  core.exportVariable('CDSE_ACCESS_TOKEN', result.tokenSet.accessToken);
  core.exportVariable('CDSE_TOKEN_EXPIRES_AT', result.tokenSet.expiresAt.toISOString());
  core.exportVariable('CDSE_TOKEN_URL', result.tokenUrl);
  core.exportVariable('CDSE_CREDENTIALS_FILE', result.session.credentialsFile);
  core.addPath(result.session.binDir);
}

const GRANT_TEXT: Record<GrantOutput, string> = {
  password: 'password login',
  refresh_token: 'refresh token',
  client_credentials: 'client credentials',
  cache: 'reused the cached login (no token request)',
};

/** The job summary: what happened, never a secret (no token, user name or file path). */
export async function writeSummary(result: Result, cacheNote: string): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  const refresh = result.tokenSet.refreshToken
    ? (result.tokenSet.refreshExpiresAt?.toISOString() ?? 'no expiry')
    : 'none';
  await core.summary
    .addHeading('CDSE login', 3)
    .addTable([
      [
        { data: 'Grant', header: true },
        { data: 'Access token expires', header: true },
        { data: 'Refresh until', header: true },
        { data: 'Cache', header: true },
        { data: 'Session', header: true },
        { data: 'Token requests', header: true },
      ],
      [
        // A refresh grant renews either the given refresh-token or the session the cache held.
        result.grant === 'refresh_token' && result.cacheHit
          ? 'refreshed the cached login (refresh token)'
          : GRANT_TEXT[result.grant],
        result.tokenSet.expiresAt.toISOString(),
        refresh,
        cacheNote,
        // Keycloak's session id: names which of the user's sessions this job used, reveals nothing.
        result.tokenSet.sessionId ?? 'unknown',
        String(result.requests),
      ],
    ])
    .addRaw(
      `Token endpoint: ${new URL(result.tokenUrl).host}. Later steps: <code>cdse-auth token</code>.`,
      true,
    )
    .write();
}
