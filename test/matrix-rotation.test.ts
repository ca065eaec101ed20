// Matrix jobs that share one cached login when the identity server rotates refresh tokens
// (Keycloak can switch it on at any time): the first job to renew makes every other job's copy
// of the refresh token dead. Each job that is refused must find the winner's token set in the
// cache instead of failing or logging in again. Built dist/, runner harness, real servers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { refreshTokenFrom } from './fixtures.ts';
import { assertNoLeaks } from './leaks.ts';
import { Job } from './runner.ts';
import { CacheServer } from './servers/cache-server.ts';
import { IdentityServer } from './servers/identity-server.ts';

const PASSWORD = 'rotation-test-password-Z3';
const CACHE_SECRET = 'cm90YXRpb24tdGVzdC1jYWNoZS1zZWNyZXQtMzItYnl0ZXM=';
// The login's access token lives 31 s: with the default 30 s skew it is due for renewal after
// 1 s. The renewed one lives 10 minutes, so the jobs that take it from the cache can use it.
const ACCESS_LIFETIME = 31;

let identity: IdentityServer;
let cache: CacheServer;
const jobs: Job[] = [];

before(async () => {
  [identity, cache] = await Promise.all([
    IdentityServer.start({
      accessLifetime: ACCESS_LIFETIME,
      rotateRefreshTokens: true,
      users: [{ username: 'alice', password: PASSWORD }],
    }),
    CacheServer.start(),
  ]);
});
after(async () => {
  await Promise.all(jobs.map((j) => j.cleanup()));
  await Promise.all([identity.close(), cache.close()]);
});

async function job(name: string, runId: string, inputs: Record<string, string>): Promise<Job> {
  const created = await Job.create({
    runId,
    job: name,
    inputs: { 'token-url': identity.tokenUrl, 'cache-secret': CACHE_SECRET, ...inputs },
    env: cache.env('v2'),
  });
  jobs.push(created);
  return created;
}

const logins: Array<[string, () => Promise<Record<string, string>>]> = [
  ['a password login', async () => ({ username: 'alice', password: PASSWORD })],
  [
    'a refresh-token login',
    async () => ({ 'refresh-token': await refreshTokenFrom(identity, 'alice', PASSWORD) }),
  ],
];

describe('matrix jobs on a cached login with refresh-token rotation', () => {
  for (const [what, credentials] of logins) {
    for (const size of [3, 10]) {
      test(`${what}, ${size} jobs after access expiry: all succeed, no second login`, async () => {
        const inputs = await credentials();
        const runId = String(7_000_000 + Math.floor(Math.random() * 1_000_000));
        cache.clear(); // each workflow starts from an empty cache
        identity.setAccessLifetime(ACCESS_LIFETIME);
        const login = await (await job('login', runId, inputs)).runMain();
        assert.equal(login.code, 0, login.stdout);
        assert.notEqual(login.outputs.grant, 'cache');
        const baseline = { ...identity.counts };
        const sessions = identity.activeSessions();
        await sleep(1_100); // the cached access token is now due for renewal
        identity.setAccessLifetime(600);

        const matrix = await Promise.all(
          Array.from({ length: size }, async (_, i) => {
            const j = await job(`run-${i}`, runId, inputs);
            return { j, main: await j.runMain() };
          }),
        );
        for (const { main } of matrix) {
          assert.equal(main.code, 0, `a matrix job failed:\n${main.stdout}\n${main.stderr}`);
          assert.ok(identity.accessTokenValid(main.outputs['access-token'] as string));
          assert.equal(main.outputs['cache-hit'], 'true');
        }
        const fullGrants =
          identity.counts.password -
          baseline.password +
          (identity.counts.client_credentials - baseline.client_credentials);
        assert.ok(fullGrants <= 1, `${fullGrants} full grants`);
        assert.equal(
          identity.activeSessions(),
          sessions + fullGrants,
          'no session was opened in vain',
        );
        // Exactly one refresh won; the others were refused and took its result from the cache.
        const grants = matrix.map(({ main }) => main.outputs.grant);
        assert.equal(grants.filter((g) => g === 'refresh_token').length, 1, grants.join(','));
        for (const { j } of matrix) {
          assertNoLeaks(j.logs, j.summary, [PASSWORD, inputs['refresh-token'] ?? PASSWORD]);
        }
      });
    }
  }
});
