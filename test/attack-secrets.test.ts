// Attack suite, what must stay hidden: the TOTP code is masked before it is sent (main step,
// a refused login, the library's onSecret), and a pull request from a deleted fork does not use
// the cache. The BUILT action through the runner harness; run `npm run build` first.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PasswordAuth, TokenManager } from '../src/auth/index.ts';
import { describeStep, logLines, mainOk } from './fixtures.ts';
import {
  ATTACK_LOGIN,
  ATTACK_PASSWORD,
  ATTACK_USERS,
  assertMainRefused,
  attackScenario,
  HOSTILE_USER,
} from './hostile.ts';
import { assertNoLeaks } from './leaks.ts';
import { CacheServer } from './servers/cache-server.ts';
import { randomBase32Secret } from './servers/identity-server.ts';

describe('the TOTP code is masked before it is sent', { concurrency: 4 }, () => {
  const totpSecret = randomBase32Secret();
  const server2fa = () => ({
    users: [{ username: HOSTILE_USER, password: ATTACK_PASSWORD, totpSecret }],
  });

  test('main step: the code the server received has an ::add-mask:: line first', async (t) => {
    const { server, job } = await attackScenario(t, server2fa(), () => ({
      ...ATTACK_LOGIN(),
      'totp-secret': totpSecret,
    }));
    const main = await mainOk(job);
    const code = server.requests[0]?.form.totp ?? '';
    assert.match(code, /^\d{6}$/, 'the server received a code');
    const lines = logLines(main.stdout);
    const masked = lines.indexOf(`::add-mask::${code}`);
    assert.ok(masked >= 0, `::add-mask::${code} is printed:\n${main.stdout}`);
    const loggedIn = lines.findIndex((l) => l.startsWith('Logged in'));
    assert.ok(masked < loggedIn, 'masked before the step reports the login');
    const shown = lines.filter(
      (l) => !l.startsWith('::add-mask::') && new RegExp(`\\b${code}\\b`).test(l),
    );
    assert.deepEqual(shown, [], 'the code shows nowhere else');
    assertNoLeaks(job.logs, job.summary, [ATTACK_PASSWORD, totpSecret]);
  });

  test('main step: a refused login still masked the code it sent', async (t) => {
    const { server, job } = await attackScenario(t, server2fa(), () => ({
      ...ATTACK_LOGIN(),
      'totp-secret': totpSecret,
    }));
    server.inject({
      kind: 'status',
      status: 400,
      json: { error: 'invalid_request', error_description: 'refused' },
      on: 'password',
    });
    const main = await job.runMain();
    assertMainRefused(main, /HTTP 400/);
    const code = server.requests[0]?.form.totp ?? '';
    assert.match(code, /^\d{6}$/);
    const lines = logLines(main.stdout);
    const masked = lines.indexOf(`::add-mask::${code}`);
    const failed = lines.findIndex((l) => l.startsWith('::error'));
    assert.ok(masked >= 0 && masked < failed, `masked before the failure:\n${main.stdout}`);
  });

  test('library: onSecret hears the code before the server receives the request', async (t) => {
    const { server } = await attackScenario(t, server2fa(), ATTACK_LOGIN);
    const heard: Array<{ value: string; requestsAtServer: number }> = [];
    const manager = new TokenManager(
      new PasswordAuth(HOSTILE_USER, ATTACK_PASSWORD, { totpSecret }),
      {
        tokenUrl: server.tokenUrl,
        onSecret: (value) => heard.push({ value, requestsAtServer: server.requests.length }),
      },
    );
    t.after(() => manager.close());
    await manager.getTokenSet();
    const code = server.requests[0]?.form.totp ?? '';
    assert.match(code, /^\d{6}$/);
    const announced = heard.find((h) => h.value === code);
    assert.ok(announced, 'the code was announced');
    assert.equal(announced.requestsAtServer, 0, 'announced before the request reached the server');
  });
});

describe('a pull request from a deleted fork', () => {
  test('head.repo null: the cache is not used, a notice says so', async (t) => {
    const cache = await CacheServer.start();
    t.after(() => cache.close());
    const { server, job } = await attackScenario(
      t,
      ATTACK_USERS,
      () => ({
        ...ATTACK_LOGIN(),
        cache: 'true',
        'cache-secret': 'bW9yZS10aGFuLTMyLWJ5dGVzLW9mLWVudHJvcHktaGVyZQ==',
      }),
      {
        eventName: 'pull_request',
        eventPayload: {
          repository: { full_name: 'cdse-auth/example', private: true, visibility: 'private' },
          pull_request: {
            number: 7,
            head: { ref: 'feature', repo: null },
            base: { ref: 'main', repo: { full_name: 'cdse-auth/example' } },
          },
        },
        env: cache.env('v2'),
      },
    );
    const main = await mainOk(job);
    const notices = logLines(main.stdout).filter((l) => l.startsWith('::notice'));
    assert.equal(notices.length, 1, `one notice:\n${main.stdout}`);
    assert.match(notices[0] ?? '', /cache is not used.*fork/);
    assert.equal(cache.requests.length, 0, 'the cache server saw no request');
    assert.equal(main.outputs['cache-hit'], 'false');
    assert.equal(main.outputs.grant, 'password');
    assert.equal(server.counts.password, 1);
    const post = await job.runPost();
    assert.equal(post.code, 0, describeStep(post));
    assert.equal(cache.requests.length, 0, 'nor at the end of the job');
  });
});
