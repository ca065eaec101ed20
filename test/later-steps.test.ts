// Later steps of a job carry on the main step's login: they inherit its settings through the
// credentials file, never send a refresh token that is dead, and say in one line what to do when
// the session is over. The built action and `cdse-auth` as a workflow runs them (test/runner.ts),
// with refresh token rotation on and off. Run `npm run build` after changing src/.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { describe, type TestContext, test } from 'node:test';
import {
  assertOk,
  assertSessionOverLine,
  exists,
  expireStoredAccess,
  loggedIn,
  SESSION_PASSWORD as PASSWORD,
  ROTATIONS,
  readStored,
  rotationName,
  SESSION_LOGIN_ENV,
  saidLines,
  secretsOf,
  sendsOf,
} from './fixtures.ts';
import { assertNoLeaks } from './leaks.ts';

describe('later steps inherit the action’s request settings', { concurrency: true }, () => {
  for (const rotate of ROTATIONS) {
    test(`timeout: 2 and max-attempts: 1 bound a later step on a hanging server (${rotationName(rotate)})`, async (t) => {
      const { server, job, file } = await loggedIn(
        t,
        { rotateRefreshTokens: rotate },
        { timeout: '2', 'max-attempts': '1' },
      );
      const stored = await readStored(file);
      assert.equal(stored.meta?.timeout, 2);
      assert.equal(stored.meta?.maxAttempts, 1);
      // The server hangs on the next refresh (only that one: a retry would succeed at once).
      server.inject({ kind: 'delay', ms: 60_000, on: 'refresh_token' });
      await expireStoredAccess(file);

      const step = await job.runStep('cdse-auth', ['token']);
      assert.equal(step.code, 1, `exit ${step.code}:\n${step.stderr}`);
      assert.equal(step.stdout, '');
      const lines = saidLines(step.stderr);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0] ?? '', /^cdse-auth: .*timed out.*\(after 1 attempt\)/);
      // One attempt: max-attempts 1 was inherited (with the default 5 the retry would succeed).
      assert.equal(server.counts.refresh_token, 1);
      // A behaviour bound, not a benchmark: the inherited 2 s timeout ends the step in about 2 s
      // plus process start-up; the default 30 s would blow far past 15 s (the harness kills a
      // step at 30 s), so 15 s separates the two without flaking on a slow machine.
      assert.ok(step.durationMs < 15_000, `the step took ${Math.round(step.durationMs)} ms`);
      // A timeout is not a refusal: the session stays in the file for the next try.
      assert.equal((await readStored(file)).tokenSet.refreshToken, stored.tokenSet.refreshToken);

      // The step's own CDSE_MAX_ATTEMPTS wins over the inherited 1: the retry gets through.
      server.inject({ kind: 'delay', ms: 60_000, on: 'refresh_token' });
      const retried = await job.runStep('cdse-auth', ['token'], { CDSE_MAX_ATTEMPTS: '2' });
      assertOk(retried, 'cdse-auth token with CDSE_MAX_ATTEMPTS=2');
      assert.ok(server.accessTokenValid(retried.stdout.trim()));
      assert.equal(server.counts.refresh_token, 3, 'the hung attempt and its retry');
      assert.equal(server.requests.at(-1)?.status, 200);
    });

    test(`expiry-skew: 300 makes a later step renew a token with 200 s left (${rotationName(rotate)})`, async (t) => {
      const { server, job, file } = await loggedIn(
        t,
        { rotateRefreshTokens: rotate },
        { 'expiry-skew': '300', scope: 'openid' },
      );
      const before = await expireStoredAccess(file, 200);
      assert.equal(before.meta?.expirySkew, 300);
      assert.equal(before.meta?.scope, 'openid');
      const step = await job.runStep('cdse-auth', ['token']);
      assertOk(step, 'cdse-auth token');
      const token = step.stdout.trim();
      assert.notEqual(token, before.tokenSet.accessToken, 'renewed, not handed out');
      assert.ok(server.accessTokenValid(token));
      assert.equal(server.counts.refresh_token, 1);
      assert.equal(server.requests.at(-1)?.form.scope, 'openid', 'the scope is inherited too');
      assert.equal((await readStored(file)).tokenSet.accessToken, token);

      // Control: an explicit --expiry-skew wins over the inherited one, and 200 s left is
      // plenty with a 30 s skew, so the stored token is handed out with no request.
      const after = await expireStoredAccess(file, 200);
      const explicit = await job.runStep('cdse-auth', ['token', '--expiry-skew', '30']);
      assertOk(explicit, 'cdse-auth token --expiry-skew 30');
      assert.equal(explicit.stdout.trim(), after.tokenSet.accessToken);
      assert.equal(server.counts.refresh_token, 1, 'no request');
    });
  }
});

describe('the session maximum', { concurrency: true }, () => {
  const SESSION_MAX = 3600;
  /** A server whose clock the test moves past the SSO Session Max after main logged in. */
  async function pastSessionMax(t: TestContext, rotate: boolean) {
    let offset = 0;
    const scenario = await loggedIn(t, {
      rotateRefreshTokens: rotate,
      sessionMaxSeconds: SESSION_MAX,
      now: () => Date.now() + offset,
    });
    const first = await readStored(scenario.file);
    const firstSession = scenario.server.sessionOf(first.tokenSet.accessToken);
    assert.ok(firstSession);
    offset = (SESSION_MAX + 60) * 1000;
    assert.equal(scenario.server.activeSessions(), 0, 'the login has reached its maximum');
    // The runner's clock moved too: the stored access token has expired.
    await expireStoredAccess(scenario.file);
    return { ...scenario, first, firstSession };
  }

  for (const rotate of ROTATIONS) {
    test(`without credentials a later step fails with one line (${rotationName(rotate)})`, async (t) => {
      const { server, job, file, first } = await pastSessionMax(t, rotate);
      const step = await job.runStep('cdse-auth', ['token']);
      const line = assertSessionOverLine(step, 'cdse-auth token');
      assert.match(line, /Token is not active/);
      assert.equal(sendsOf(server, first.tokenSet.refreshToken), 1, 'one refused refresh');
      assert.equal(server.counts.password, 1, 'no login without credentials');
      assert.equal(await exists(file), false, 'the ended session is not kept');
      // Every later step of the job is past the session maximum alike, not only the first. The
      // first deleted the file when its refresh was refused, so this one finds none; in a
      // workflow it must still say what to do (pass-credentials, offline_access), not tell a CI
      // job to run `cdse-auth login`.
      const again = await job.runStep('cdse-auth', ['token']);
      assertSessionOverLine(again, 'a second later cdse-auth token');
      assert.equal(server.counts.total, 2, 'nothing more was sent');
    });

    test(`with credentials in the step env a later step logs in again (${rotationName(rotate)})`, async (t) => {
      const { server, job, file, first, firstSession } = await pastSessionMax(t, rotate);
      const step = await job.runStep('cdse-auth', ['token'], SESSION_LOGIN_ENV);
      assertOk(step, 'cdse-auth token with credentials');
      const token = step.stdout.trim();
      assert.ok(server.accessTokenValid(token));
      assert.equal(server.counts.password, 2, 'logged in again');
      assert.equal(sendsOf(server, first.tokenSet.refreshToken), 1, 'one refused refresh');
      const session = server.sessionOf(token);
      assert.ok(session && session !== firstSession, 'a new session');
      assert.deepEqual(server.sessionIds(), [session]);

      // The new login is saved to the file, with the job's settings, for later steps.
      const stored = await readStored(file);
      assert.equal(stored.tokenSet.accessToken, token);
      assert.equal(server.sessionOf(stored.tokenSet.refreshToken ?? ''), session);
      assert.equal(stored.tokenSet.sessionId, session);
      assert.equal(stored.meta?.tokenUrl, server.tokenUrl);
      assert.equal(stored.meta?.tokenRequests, 2);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      const later = await job.runStep('cdse-auth', ['token']);
      assertOk(later, 'a later cdse-auth token');
      assert.equal(later.stdout.trim(), token);
      assert.equal(server.counts.total, 3, 'no new request');
      assertNoLeaks(job.logs, job.summary, secretsOf(server, [PASSWORD, token]));
    });
  }
});

describe('the session lifecycle in status and the job summary', { concurrency: true }, () => {
  for (const rotate of ROTATIONS) {
    test(`status after main and one refresh (${rotationName(rotate)})`, async (t) => {
      const { server, job, file, main } = await loggedIn(t, { rotateRefreshTokens: rotate });
      const session = server.sessionOf(main.outputs['access-token'] ?? '');
      assert.ok(session);
      // The summary names the session and main's one token request.
      // A Markdown table: the header row, the alignment row, one row of values.
      const [headers = [], , cells = []] = main.summary
        .split('\n')
        .filter((line) => line.startsWith('|'))
        .map((line) =>
          line
            .split('|')
            .slice(1, -1)
            .map((cell) => cell.trim()),
        );
      assert.equal(cells[headers.indexOf('Session')], session, main.summary);
      assert.equal(cells[headers.indexOf('Token requests')], '1', main.summary);

      await expireStoredAccess(file);
      const renewed = await job.runStep('cdse-auth', ['token']);
      assertOk(renewed, 'cdse-auth token');
      const token = renewed.stdout.trim();
      assert.equal(server.counts.refresh_token, 1);

      const status = await job.runStep('cdse-auth', ['status']);
      assertOk(status, 'cdse-auth status');
      const report = JSON.parse(status.stdout) as Record<string, unknown>;
      assert.equal(report.loggedIn, true);
      assert.equal(report.sessionId, server.sessionOf(token));
      assert.equal(report.sessionId, session, 'a refresh keeps the session');
      assert.equal(report.fromCache, false);
      assert.equal(report.tokenRequests, 2);
      assert.equal(server.counts.total, 2, 'status sends nothing');
    });
  }
});
