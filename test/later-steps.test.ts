// Later steps of a job carry on the main step's login: they inherit its settings through the
// credentials file, never send a refresh token that is dead, and say in one line what to do when
// the session is over. The built action and `cdse-auth` as a workflow runs them (test/runner.ts),
// with refresh token rotation on and off. Run `npm run build` after changing src/.
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { describe, type TestContext, test } from 'node:test';
import { assertNoLeaks } from './leaks.ts';
import { Job, type StepResult } from './runner.ts';
import { IdentityServer, type IdentityServerOptions } from './servers/identity-server.ts';

const USER = 'lin@example.com';
const PASSWORD = 'p4ss word%with=odd&chars';
const ROTATIONS = [false, true] as const;
const rotationName = (rotate: boolean) => (rotate ? 'rotation on' : 'rotation off');

interface StoredFile {
  version: number;
  tokenSet: {
    accessToken: string;
    refreshToken?: string;
    expiresAt: string;
    refreshExpiresAt?: string;
    sessionId?: string;
  };
  meta?: Record<string, unknown>;
}

const readStored = async (path: string) => JSON.parse(await readFile(path, 'utf8')) as StoredFile;

/** Rewrites the credentials file as time passing would leave it; the file keeps mode 0600. */
async function editStored(path: string, edit: (stored: StoredFile) => void): Promise<StoredFile> {
  const stored = await readStored(path);
  edit(stored);
  await writeFile(path, JSON.stringify(stored));
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  return stored;
}

const expireAccess = (path: string, secondsLeft = -60) =>
  editStored(path, (s) => {
    s.tokenSet.expiresAt = new Date(Date.now() + secondsLeft * 1000).toISOString();
  });

interface Scenario {
  server: IdentityServer;
  job: Job;
  main: StepResult;
  /** The job's credentials file (CDSE_CREDENTIALS_FILE). */
  file: string;
}

/** A fresh server and job whose main step has logged in with the password grant. */
async function loggedIn(
  t: TestContext,
  serverOptions: IdentityServerOptions,
  inputs: Record<string, string> = {},
): Promise<Scenario> {
  const server = await IdentityServer.start({
    users: [{ username: USER, password: PASSWORD }],
    ...serverOptions,
  });
  const job = await Job.create({
    inputs: {
      'token-url': server.tokenUrl,
      cache: 'false',
      username: USER,
      password: PASSWORD,
      ...inputs,
    },
  });
  t.after(async () => {
    await job.cleanup();
    await server.close();
  });
  const main = await job.runMain();
  assertOk(main, 'main');
  assert.equal(server.counts.password, 1);
  assert.equal(server.counts.total, 1);
  const file = job.exportedEnv.CDSE_CREDENTIALS_FILE ?? '';
  assert.ok(file, 'main exported CDSE_CREDENTIALS_FILE');
  return { server, job, main, file };
}

function assertOk(step: StepResult, what: string): void {
  assert.equal(step.code, 0, `${what} exited ${step.code}:\n${step.stdout}\n${step.stderr}`);
  assert.doesNotMatch(`${step.stdout}\n${step.stderr}`, /^::error/m, `${what} printed an error`);
}

/** stderr without the runner's mask commands: what a person reads in the log. */
const shownLines = (step: Pick<StepResult, 'stderr'>) =>
  step.stderr.split(/\r?\n/).filter((l) => l !== '' && !l.startsWith('::add-mask::'));

/**
 * The step failed (exit 1) with one `cdse-auth:` line, and no token on stdout. In a workflow a
 * session that cannot be carried on says how to fix it: pass credentials, or offline_access.
 */
function assertSessionOverLine(step: StepResult, what: string): string {
  assert.equal(step.code, 1, `${what} exited ${step.code}:\n${step.stderr}`);
  assert.equal(step.stdout, '', `${what} printed no token`);
  const lines = shownLines(step);
  assert.equal(lines.length, 1, `${what} says one line:\n${lines.join('\n')}`);
  const line = lines[0] ?? '';
  assert.match(line, /^cdse-auth: /);
  assert.match(line, /pass-credentials/);
  assert.match(line, /scope: offline_access/);
  assert.doesNotMatch(line, /^\s+at /m);
  return line;
}

/** Secrets the server saw or issued, for the leak scan. */
function secretsOf(server: IdentityServer, extra: Array<string | undefined> = []): string[] {
  const secrets = new Set<string>([PASSWORD]);
  for (const request of server.requests) {
    const value = request.form.refresh_token;
    if (value) secrets.add(value);
  }
  for (const value of extra) if (value) secrets.add(value);
  return [...secrets];
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** How many requests sent this refresh token (refresh grants and logouts). */
const sendsOf = (server: IdentityServer, refreshToken: string | undefined) =>
  server.requests.filter((r) => r.form.refresh_token === refreshToken).length;

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
      await expireAccess(file);

      const step = await job.runStep('cdse-auth', ['token']);
      assert.equal(step.code, 1, `exit ${step.code}:\n${step.stderr}`);
      assert.equal(step.stdout, '');
      const lines = shownLines(step);
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
      const before = await expireAccess(file, 200);
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
      const after = await expireAccess(file, 200);
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
    await expireAccess(scenario.file);
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
      const step = await job.runStep('cdse-auth', ['token'], {
        CDSE_USERNAME: USER,
        CDSE_PASSWORD: PASSWORD,
      });
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
      assertNoLeaks(job.logs, job.summary, secretsOf(server, [token]));
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

      await expireAccess(file);
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
