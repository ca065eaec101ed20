// "Sessions that survive concurrency": the built action and `cdse-auth` as a workflow runs them
// (test/runner.ts: each step a child process), against the test identity server, with refresh
// token rotation on and off. Run `npm run build` after changing src/: these tests run dist/.
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  assertOk,
  assertSessionOverLine,
  editStored,
  exists,
  expireStoredAccess,
  loggedIn,
  SESSION_PASSWORD as PASSWORD,
  ROTATIONS,
  readStored,
  refreshAt,
  rotationName,
  SESSION_LOGIN_ENV,
  saidLines,
  secretsOf,
  sendsOf,
  until,
} from './fixtures.ts';
import { assertNoLeaks } from './leaks.ts';
import type { Job } from './runner.ts';
import type { IdentityServer } from './servers/identity-server.ts';

const PARALLEL = 16;
/**
 * One later step that starts PARALLEL `cdse-auth token` at once, as `xargs -P` or `&` in a
 * pipeline script would; each one's stdout and exit code go to out.N and rc.N in the workspace.
 */
const parallelTokens = (job: Job) =>
  job.runStep('bash', [
    '-c',
    `for i in $(seq ${PARALLEL}); do (cdse-auth token > out.$i; echo $? > rc.$i) & done; wait`,
  ]);

async function parallelResults(job: Job): Promise<Array<{ code: number; stdout: string }>> {
  return Promise.all(
    Array.from({ length: PARALLEL }, async (_, n) => ({
      code: Number((await readFile(join(job.workspace, `rc.${n + 1}`), 'utf8')).trim()),
      stdout: await readFile(join(job.workspace, `out.${n + 1}`), 'utf8'),
    })),
  );
}

describe('parallel later steps on an expired access token', { concurrency: true }, () => {
  for (const rotate of ROTATIONS) {
    test(`${PARALLEL} cdse-auth token at once renew once; post logout ends it (${rotationName(rotate)})`, async (t) => {
      const { server, job, file } = await loggedIn(t, { rotateRefreshTokens: rotate });
      const before = await expireStoredAccess(file);
      // The server takes 2 s over the refresh, so that all 16 have started and found the expired
      // token before it is renewed: they meet at the lock rather than one after the other.
      server.inject({ kind: 'delay', ms: 2_000, on: 'refresh_token' });

      const step = await parallelTokens(job);
      assertOk(step, 'the parallel step');
      const results = await parallelResults(job);
      for (const [n, r] of results.entries()) {
        assert.equal(r.code, 0, `cdse-auth token #${n + 1} exited ${r.code}`);
      }
      const tokens = new Set(results.map((r) => r.stdout));
      assert.equal(tokens.size, 1, 'every process printed the one renewed token');
      const printed = [...tokens][0] ?? '';
      assert.match(printed, /^\S+\n$/, 'one token, one line');
      const token = printed.trim();
      assert.notEqual(token, before.tokenSet.accessToken);
      assert.ok(server.accessTokenValid(token), 'a token the server says is valid');

      assert.equal(server.counts.refresh_token, 1, 'exactly one refresh request');
      assert.equal(server.counts.password, 1, 'no extra password grant');
      assert.equal(server.counts.total, 2);
      assert.equal(server.requests.at(-1)?.status, 200);
      assert.equal(server.requests.at(-1)?.form.refresh_token, before.tokenSet.refreshToken);

      // The file holds the renewed, valid session.
      const after = await readStored(file);
      assert.equal(after.tokenSet.accessToken, token);
      assert.ok(Date.parse(after.tokenSet.expiresAt) > Date.now() + 60_000);
      assert.ok(after.tokenSet.refreshToken);
      if (rotate) assert.notEqual(after.tokenSet.refreshToken, before.tokenSet.refreshToken);
      assert.equal(server.sessionOf(after.tokenSet.refreshToken), server.sessionIds()[0]);
      assert.equal(after.meta?.tokenRequests, 2);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      await assert.rejects(stat(`${file}.lock`), { code: 'ENOENT' }, 'the lock was released');

      // A later step gets the same token with no request at all.
      const later = await job.runStep('cdse-auth', ['token']);
      assertOk(later, 'a later cdse-auth token');
      assert.equal(later.stdout, printed);
      assert.equal(server.counts.total, 2, 'no new request');

      // The post step with logout: true ends the session the file holds (the renewed one).
      const post = await job.runPost({ INPUT_LOGOUT: 'true' });
      assertOk(post, 'post');
      assert.match(post.stdout, /Ended the CDSE session\./);
      assert.doesNotMatch(post.stdout, /No CDSE session was left to end/);
      assert.equal(server.counts.logout, 1);
      assert.equal(server.requests.at(-1)?.form.refresh_token, after.tokenSet.refreshToken);
      assert.equal(server.requests.at(-1)?.status, 204);
      assert.equal(server.activeSessions(), 0);
      assertNoLeaks(job.logs, job.summary, secretsOf(server, [PASSWORD, token]), {
        state: [job.stateText],
      });
    });
  }
});

describe('a process killed while it renews', { concurrency: true }, () => {
  for (const rotate of ROTATIONS) {
    test(`does not block the next cdse-auth token (${rotationName(rotate)})`, async (t) => {
      const { server, job, file } = await loggedIn(t, { rotateRefreshTokens: rotate });
      const before = await expireStoredAccess(file);
      // The first refresh hangs at the server: its sender holds the lock meanwhile.
      server.inject({ kind: 'delay', ms: 60_000, on: 'refresh_token' });
      const pidFile = join(job.workspace, 'victim.pid');
      // `exec` all the way down (bash, the launcher): the PID written is the CLI's own.
      const victim = job.runStep('bash', ['-c', `echo $$ > ${pidFile}; exec cdse-auth token`]);
      await until(() => server.counts.refresh_token === 1, 'the refresh request');
      assert.ok(await exists(`${file}.lock`), 'the renewing process holds the lock');
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      process.kill(pid, 'SIGKILL');
      const killed = await victim;
      assert.equal(killed.signal, 'SIGKILL');
      assert.equal(killed.stdout, '');
      // The dead process's lock is still there: nothing released it.
      assert.ok(await exists(`${file}.lock`), 'the killed process left its lock behind');

      // The next process breaks the dead PID's lock (it would otherwise wait 120 s, past the
      // runner harness's 30 s step limit) and renews with the refresh token the file holds.
      const next = await job.runStep('cdse-auth', ['token']);
      assertOk(next, 'cdse-auth token after the kill');
      const token = next.stdout.trim();
      assert.ok(server.accessTokenValid(token));
      assert.equal(server.counts.refresh_token, 2);
      assert.equal(server.counts.password, 1, 'no new login');
      assert.equal(server.requests.at(-1)?.form.refresh_token, before.tokenSet.refreshToken);
      assert.equal(server.requests.at(-1)?.status, 200);
      assert.equal((await readStored(file)).tokenSet.accessToken, token);
      assert.equal(await exists(`${file}.lock`), false, 'the lock was released');
    });
  }
});

/**
 * Another holder of the same login (say another job) refreshes first: with rotation on, the
 * refresh token in the job's file is then stale. The file's access token expires too. Returns
 * the stale refresh token.
 */
async function staleAfterAnotherHolder(server: IdentityServer, file: string) {
  const stale = (await readStored(file)).tokenSet.refreshToken;
  const other = await refreshAt(server, stale ?? '');
  assert.equal(other.status, 200);
  await other.body?.cancel();
  await expireStoredAccess(file);
  return stale;
}

describe('a dead refresh token is never sent', { concurrency: true }, () => {
  for (const rotate of ROTATIONS) {
    test(`a stored refresh expiry in the past: no request, one line (${rotationName(rotate)})`, async (t) => {
      let offset = 0;
      const { server, job, file } = await loggedIn(t, {
        rotateRefreshTokens: rotate,
        now: () => Date.now() + offset,
      });
      // Two hours pass, past the refresh token's one-hour idle lifetime, on both clocks.
      offset = 7200 * 1000;
      await editStored(file, (s) => {
        s.tokenSet.expiresAt = new Date(Date.now() - 6600_000).toISOString();
        s.tokenSet.refreshExpiresAt = new Date(Date.now() - 3600_000).toISOString();
      });
      const step = await job.runStep('cdse-auth', ['token']);
      assertSessionOverLine(step, 'cdse-auth token');
      const header = await job.runStep('cdse-auth', ['header']);
      assertSessionOverLine(header, 'cdse-auth header');
      assert.equal(server.counts.refresh_token, 0, 'no refresh request');
      assert.equal(server.counts.total, 1, 'only main’s login');
      assert.ok(await exists(file), 'nothing was refused: the file stays for post');

      // The post step with logout: true has no session left to end, and says so.
      const post = await job.runPost({ INPUT_LOGOUT: 'true' });
      assertOk(post, 'post');
      assert.match(post.stdout, /No CDSE session was left to end/);
      assert.equal(server.counts.refresh_token, 0);
    });
  }

  test('refresh-expires-in shorter than the expiry skew: no request, one line', async (t) => {
    // The server's tokens live 20 s; with the default 30 s skew both count as dead at once.
    const { server, job } = await loggedIn(t, { accessLifetime: 20, refreshLifetime: 20 });
    const step = await job.runStep('cdse-auth', ['token']);
    assertSessionOverLine(step, 'cdse-auth token');
    assert.equal(server.counts.refresh_token, 0, 'no refresh request');
  });

  test('rotation on: a refused refresh token is sent once, by one of 16 processes', async (t) => {
    const { server, job, file } = await loggedIn(t, { rotateRefreshTokens: true });
    const stale = await staleAfterAnotherHolder(server, file);
    assert.equal(sendsOf(server, stale), 1, 'the other holder’s refresh');

    const step = await parallelTokens(job);
    assertOk(step, 'the parallel step');
    const results = await parallelResults(job);
    for (const [n, r] of results.entries()) {
      assert.equal(r.code, 1, `cdse-auth token #${n + 1} exited ${r.code}`);
      assert.equal(r.stdout, '');
    }
    // The refusal is final (nobody else renewed into this file): one send, and the file goes.
    assert.equal(sendsOf(server, stale), 2, 'this job sent the refused token once in all');
    assert.equal(server.requests.at(-1)?.status, 400);
    assert.equal(server.counts.password, 1);
    assert.equal(await exists(file), false, 'a refused session is not kept');
    // Every process said one line; the one that was refused says why, in the workflow's words.
    const lines = saidLines(step.stderr);
    assert.equal(lines.length, PARALLEL, lines.join('\n'));
    for (const line of lines) assert.match(line, /^cdse-auth: /);
    const refused = lines.filter((l) => /refresh token was rejected/.test(l));
    assert.equal(refused.length, 1, lines.join('\n'));
    assert.match(refused[0] ?? '', /pass-credentials.*scope: offline_access/);
    // (The others say what they found when their turn came: the file gone, or not yet. Which
    // one is a race, so their wording is not checked here; later-steps.test.ts checks that a
    // step after the session ended still names pass-credentials.)
  });

  test('rotation on: with credentials, a refused refresh token is sent once, then a login', async (t) => {
    const { server, job, file } = await loggedIn(t, { rotateRefreshTokens: true });
    const stale = await staleAfterAnotherHolder(server, file);

    const step = await job.runStep('cdse-auth', ['token'], SESSION_LOGIN_ENV);
    assertOk(step, 'cdse-auth token with credentials');
    const token = step.stdout.trim();
    assert.ok(server.accessTokenValid(token));
    assert.equal(sendsOf(server, stale), 2, 'the other holder’s refresh and this one, once');
    assert.deepEqual(
      server.requests.slice(-2).map((r) => [r.grant, r.status]),
      [
        ['refresh_token', 400],
        ['password', 200],
      ],
    );
    const stored = await readStored(file);
    assert.equal(stored.tokenSet.accessToken, token);
    assert.notEqual(stored.tokenSet.refreshToken, stale);
  });
});
