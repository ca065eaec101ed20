// The action as GitHub's runner runs it, for every grant: `node dist/main/index.js`, later `run:`
// steps, then `node dist/post/index.js`, each a child process against the test identity server.
// One scenario per grant (and per RUNNER_DEBUG), its checks as named subtests in order: the token
// request, outputs, credentials file, environment, summary, a later step's `cdse-auth`, renewal
// after expiry, post, the leak scan. Run `npm run build` after changing src/.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { describe, test } from 'node:test';
import {
  assertNoStackTrace,
  assertOk,
  expireStoredAccess,
  JOB_PASSWORD as PASSWORD,
  ROBOT,
  readStored,
  refreshTokenFrom,
  scenario,
  secretsOf,
  JOB_USER as USER,
} from './fixtures.ts';
import { assertNoLeaks } from './leaks.ts';
import {
  type IdentityServer,
  type IdentityServerOptions,
  randomBase32Secret,
  totpCode,
} from './servers/identity-server.ts';

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** A refresh token from a direct password login at the server (for the refresh-token grant). */
async function refreshTokenFor(server: IdentityServer): Promise<string> {
  const token = await refreshTokenFrom(server, USER, PASSWORD);
  assert.ok(token);
  server.resetCounts();
  return token;
}

interface GrantCase {
  name: string;
  grant: 'password' | 'refresh_token' | 'client_credentials';
  /** What the job summary calls the grant. */
  summary: RegExp;
  server: () => IdentityServerOptions;
  inputs: (server: IdentityServer) => Promise<Record<string, string>> | Record<string, string>;
  /** Fields of the one token request main makes. */
  form: (inputs: Record<string, string>) => Record<string, string | RegExp>;
  refreshable: boolean;
}

const totpSecret = randomBase32Secret();
const totpUser = () => ({
  users: [{ username: USER, password: PASSWORD, totpSecret }],
});

const GRANTS: GrantCase[] = [
  {
    name: 'password',
    grant: 'password',
    summary: /password/,
    server: () => ({ users: [{ username: USER, password: PASSWORD }] }),
    inputs: () => ({ username: USER, password: PASSWORD }),
    form: () => ({ grant_type: 'password', username: USER, password: PASSWORD }),
    refreshable: true,
  },
  {
    name: 'password + one-time totp code',
    grant: 'password',
    summary: /password/,
    server: totpUser,
    inputs: () => ({ username: USER, password: PASSWORD, totp: totpCode(totpSecret) }),
    form: (inputs) => ({ grant_type: 'password', totp: inputs.totp as string }),
    refreshable: true,
  },
  {
    name: 'password + base32 totp-secret',
    grant: 'password',
    summary: /password/,
    server: totpUser,
    // As authenticator apps show it: lower case, in groups.
    inputs: () => ({
      username: USER,
      password: PASSWORD,
      'totp-secret': totpSecret.toLowerCase().replace(/(.{4})/g, '$1 '),
    }),
    form: () => ({ grant_type: 'password', totp: /^\d{6}$/ }),
    refreshable: true,
  },
  {
    name: 'password + otpauth:// totp-secret',
    grant: 'password',
    summary: /password/,
    server: totpUser,
    inputs: () => ({
      username: USER,
      password: PASSWORD,
      'totp-secret': `otpauth://totp/CDSE:${encodeURIComponent(USER)}?secret=${totpSecret}&issuer=CDSE&digits=6&period=30`,
    }),
    form: () => ({ grant_type: 'password', totp: /^\d{6}$/ }),
    refreshable: true,
  },
  {
    name: 'client-credentials',
    grant: 'client_credentials',
    summary: /client credentials/,
    server: () => ({ clients: [{ clientId: 'cdse-public' }, { ...ROBOT, serviceAccount: true }] }),
    inputs: () => ({ 'client-id': ROBOT.clientId, 'client-secret': ROBOT.clientSecret }),
    form: () => ({
      grant_type: 'client_credentials',
      client_id: ROBOT.clientId,
      client_secret: ROBOT.clientSecret,
    }),
    refreshable: false,
  },
  {
    name: 'refresh-token',
    grant: 'refresh_token',
    summary: /refresh token/,
    server: () => ({ users: [{ username: USER, password: PASSWORD }], rotateRefreshTokens: true }),
    inputs: async (server) => ({ 'refresh-token': await refreshTokenFor(server) }),
    form: (inputs) => ({
      grant_type: 'refresh_token',
      refresh_token: inputs['refresh-token'] as string,
    }),
    refreshable: true,
  },
];

describe('grants: outputs, environment, credentials file, later steps, post', {
  concurrency: 4,
}, () => {
  for (const c of GRANTS) {
    for (const debug of [false, true]) {
      test(`${c.name}${debug ? ' (RUNNER_DEBUG=1)' : ''}`, async (t) => {
        const { server, job, inputs } = await scenario(t, c.server(), c.inputs, {
          env: debug ? { RUNNER_DEBUG: '1' } : {},
        });
        const main = await job.runMain();
        const out = main.outputs;
        const file = out['credentials-file'] ?? '';
        const sessionDir = dirname(file);
        let firstRefreshToken: string | undefined;
        let renewed: string | undefined;

        await t.test('main makes one token request, of the grant and form expected', () => {
          assertOk(main, 'main');
          assertNoStackTrace(main);
          assert.equal(server.counts.total, 1, 'main made one token request');
          assert.equal(server.counts[c.grant], 1);
          const form = server.requests[0]?.form ?? {};
          for (const [field, want] of Object.entries(c.form(inputs))) {
            if (typeof want === 'string') assert.equal(form[field], want, field);
            else assert.match(form[field] ?? '', want, field);
          }
        });

        await t.test('outputs', () => {
          assert.ok(out['access-token'] && out['access-token'].length > 20);
          assert.ok(server.accessTokenValid(out['access-token']), 'the server issued the token');
          assert.equal(out['token-type'], 'Bearer');
          assert.match(out['expires-at'] ?? '', ISO_UTC);
          const expiresIn = Date.parse(out['expires-at'] ?? '') - Date.now();
          assert.ok(expiresIn > 500_000 && expiresIn <= 600_000, `expires in ${expiresIn} ms`);
          assert.equal(out.grant, c.grant);
          assert.equal(out['cache-hit'], 'false');
          assert.equal('refresh-token' in out, false, 'no refresh-token output unless asked');
        });

        await t.test('the credentials file: 0600, in a 0700 folder under RUNNER_TEMP', async () => {
          assert.ok(file.startsWith(job.runnerTemp + sep), `${file} is under RUNNER_TEMP`);
          assert.equal((await stat(file)).mode & 0o777, 0o600);
          assert.equal((await stat(sessionDir)).mode & 0o777, 0o700);
          const stored = await readStored(file);
          assert.equal(stored.tokenSet.accessToken, out['access-token']);
          assert.equal(stored.tokenSet.tokenUrl, server.tokenUrl);
          assert.equal(stored.tokenSet.refreshToken === undefined, !c.refreshable);
          firstRefreshToken = stored.tokenSet.refreshToken;
        });

        await t.test('environment for later steps and the cdse-auth command on PATH', () => {
          assert.deepEqual(main.env, {
            CDSE_ACCESS_TOKEN: out['access-token'],
            CDSE_TOKEN_EXPIRES_AT: out['expires-at'],
            CDSE_TOKEN_URL: server.tokenUrl,
            CDSE_CREDENTIALS_FILE: file,
          });
          assert.deepEqual(main.path, [join(sessionDir, 'bin')]);
        });

        await t.test('the summary names the grant', () => {
          assert.match(main.summary, /CDSE login/);
          assert.match(main.summary, c.summary);
        });

        // The debug run checks only what RUNNER_DEBUG can change: main and post. (The CLI does
        // not read RUNNER_DEBUG.)
        if (!debug) {
          await t.test('a later step: cdse-auth prints the same, valid token', async () => {
            const token = await job.runStep('sh', [
              '-c',
              'command -v cdse-auth && cdse-auth token && cdse-auth header',
            ]);
            assertOk(token, 'cdse-auth token');
            assert.equal(
              token.stdout,
              `${join(sessionDir, 'bin', 'cdse-auth')}\n${out['access-token']}\nBearer ${out['access-token']}\n`,
            );
            assert.equal(server.counts.total, 1, 'a valid stored token needs no request');
          });
        }

        // Time passes: the access token expires and the next call renews it.
        if (!debug && c.refreshable) {
          await t.test('after expiry a later step renews the token', async () => {
            await expireStoredAccess(file);
            const later = await job.runStep('cdse-auth', ['token']);
            assertOk(later, 'cdse-auth token after expiry');
            renewed = later.stdout.trim();
            assert.notEqual(renewed, out['access-token']);
            assert.equal(later.stdout, `${renewed}\n`);
            assert.ok(server.accessTokenValid(renewed));
            assert.equal(server.counts.refresh_token, c.grant === 'refresh_token' ? 2 : 1);
            assert.equal(server.counts.total, 2);
            assert.equal(server.requests.at(-1)?.form.refresh_token, firstRefreshToken);
            // The new token was registered for masking before it was printed.
            assert.ok(later.stderr.includes(`::add-mask::${renewed}`));
            assert.equal((await readStored(file)).tokenSet.accessToken, renewed);
          });
        } else if (!debug) {
          await t.test('after expiry a later step needs the client secret', async () => {
            // No refresh token: renewing needs the client secret, which the file never holds.
            await expireStoredAccess(file);
            const refused = await job.runStep('cdse-auth', ['token']);
            assert.equal(refused.code, 1);
            assert.match(refused.stderr, /CDSE_CLIENT_SECRET/);
            assert.equal(refused.stdout, '');
            const withSecret = await job.runStep('cdse-auth', ['token'], {
              CDSE_CLIENT_ID: ROBOT.clientId,
              CDSE_CLIENT_SECRET: ROBOT.clientSecret,
            });
            assertOk(withSecret, 'cdse-auth token with the client secret');
            renewed = withSecret.stdout.trim();
            assert.notEqual(renewed, out['access-token']);
            assert.ok(server.accessTokenValid(renewed));
            assert.equal(server.counts.client_credentials, 2);
          });
        }

        let finalRefreshToken: string | undefined;
        await t.test('post removes the folder and does not end the session', async () => {
          finalRefreshToken = (await readStored(file)).tokenSet.refreshToken;
          const post = await job.runPost();
          assertOk(post, 'post');
          await assert.rejects(stat(sessionDir), { code: 'ENOENT' });
          assert.equal(server.counts.logout, 0);
        });

        await t.test('no secret in the log, the summary or the state', () => {
          assertNoLeaks(
            job.logs,
            job.summary,
            secretsOf(server, [
              ...Object.entries(inputs)
                .filter(([name]) => name !== 'username')
                .map(([, value]) => value),
              totpSecret,
              out['access-token'],
              firstRefreshToken,
              renewed,
              finalRefreshToken,
            ]),
            { state: [job.stateText] },
          );
        });

        if (debug) {
          await t.test('RUNNER_DEBUG=1 printed debug lines', () => {
            assert.match(main.stdout, /^::debug::/m, 'RUNNER_DEBUG run printed debug lines');
          });
        }
      });
    }
  }
});
