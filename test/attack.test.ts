// Attack suite, action side: a hostile identity server against the BUILT action (node dist/...)
// and the `cdse-auth` command a later step runs, through the runner harness. Forged workflow
// commands in token fields, hostile error text, oversized answers, the TOTP mask order and the
// cache on a deleted fork. Echoed secrets: attack-echo.test.ts. Run `npm run build` first.
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { PasswordAuth, TokenManager, TokenSet } from '../src/auth/index.ts';
import {
  assertNoStackTrace,
  assertOnlyCommands,
  cliStep,
  describeStep,
  errorLines,
  errorMessage,
  foreignCommands,
  logLines,
  saidLines,
  scenario,
} from './hostile.ts';
import { assertNoLeaks } from './leaks.ts';
import type { Job, StepResult } from './runner.ts';
import { CacheServer } from './servers/cache-server.ts';
import type { Fault } from './servers/identity-server.ts';
import { randomBase32Secret } from './servers/identity-server.ts';

const USER = 'ada@example.com';
const PASSWORD = 'attack-Password 9%';
const USERS = { users: [{ username: USER, password: PASSWORD }] };
const LOGIN = () => ({ username: USER, password: PASSWORD });
/** What the action may print: mask registrations, its messages and one failure. */
const ACTION_COMMANDS = ['add-mask', 'debug', 'notice', 'warning', 'error', 'group', 'endgroup'];

// A token is printed by `cdse-auth token` as a line of its own (and by `header` after
// `Bearer `): a token that starts with `::` or holds `##[` is a workflow command there.

interface Tamper {
  name: string;
  set: Record<string, unknown>;
  /** The response field the error must name. */
  field: string;
}

const TAMPERS: Tamper[] = [
  {
    name: 'access_token with a newline and ::error title=X::',
    set: { access_token: 'abc\n::error title=X::forged' },
    field: 'access_token',
  },
  {
    name: 'access_token with %0A::set-output',
    set: { access_token: 'abc%0A::set-output name=x::y' },
    field: 'access_token',
  },
  {
    name: 'access_token ::add-mask::Bearer',
    set: { access_token: '::add-mask::Bearer' },
    field: 'access_token',
  },
  {
    name: 'access_token ::error::forged (no whitespace)',
    set: { access_token: '::error::forged' },
    field: 'access_token',
  },
  {
    name: 'access_token holding ##[error]',
    set: { access_token: 'eyJ.x##[error]forged' },
    field: 'access_token',
  },
  {
    name: 'token_type with %0A::add-mask::',
    set: { token_type: 'Bearer%0A::add-mask::x' },
    field: 'token_type',
  },
  {
    name: 'token_type with a newline and ::error::',
    set: { token_type: 'Bearer\n::error::forged' },
    field: 'token_type',
  },
  {
    name: 'refresh_token with a carriage return and ::warning::',
    set: { refresh_token: 'r1\r::warning::forged' },
    field: 'refresh_token',
  },
];

/** The tampered values, for "never reached a file command" checks. */
const forgedValues = (set: Record<string, unknown>) =>
  Object.values(set).filter((v): v is string => typeof v === 'string');

interface Stored {
  version: number;
  tokenSet: Record<string, unknown> & { accessToken: string; expiresAt: string };
}
const readStored = async (path: string) => JSON.parse(await readFile(path, 'utf8')) as Stored;

async function expireStoredAccessToken(path: string): Promise<void> {
  const stored = await readStored(path);
  stored.tokenSet.expiresAt = new Date(Date.now() - 60_000).toISOString();
  await writeFile(path, JSON.stringify(stored));
}

async function mainOk(job: Job): Promise<StepResult> {
  const main = await job.runMain();
  assert.equal(main.code, 0, describeStep(main));
  return main;
}

/** A later `cdse-auth` step refused the answer: one `cdse-auth:` line, nothing else said. */
function assertCliRefused(step: StepResult, field: string): void {
  assert.equal(step.code, 1, describeStep(step));
  assert.equal(step.stdout, '', 'nothing on stdout');
  const said = saidLines(step.stderr);
  assert.equal(said.length, 1, `one line besides masks:\n${step.stderr}`);
  assert.match(said[0] ?? '', /^cdse-auth: /);
  assert.ok(said[0]?.includes(field), `names ${field}: ${said[0]}`);
  assertOnlyCommands(step, ['add-mask']);
  assertNoStackTrace(step);
}

/** The main step failed with one `::error::` line naming `field`, and exported nothing. */
function assertMainRefused(main: StepResult, field: RegExp | string): void {
  assert.equal(main.code, 1, describeStep(main));
  const errors = errorLines(main);
  assert.equal(errors.length, 1, `one error line:\n${describeStep(main)}`);
  const message = errorMessage(errors[0] ?? '');
  if (typeof field === 'string') assert.ok(message.includes(field), `names ${field}: ${message}`);
  else assert.match(message, field);
  assert.doesNotMatch(message, /failed unexpectedly/);
  assert.deepEqual(main.outputs, {}, 'no outputs');
  assert.deepEqual(main.env, {}, 'nothing exported to GITHUB_ENV');
  assert.deepEqual(main.path, [], 'nothing added to PATH');
  assertOnlyCommands(main, ACTION_COMMANDS);
  assertNoStackTrace(main);
}

describe('forged commands in a token that a later step refreshes', { concurrency: 4 }, () => {
  for (const c of TAMPERS) {
    test(c.name, async (t) => {
      const { server, job } = await scenario(t, USERS, LOGIN);
      const main = await mainOk(job);
      const token = main.outputs['access-token'] ?? '';
      const file = main.outputs['credentials-file'] ?? '';
      const before = await readStored(file);
      await expireStoredAccessToken(file);
      // Two tampered refreshes: one for `token`, one for `header`.
      server.inject(
        { kind: 'tamper', on: 'refresh_token', set: c.set },
        { kind: 'tamper', on: 'refresh_token', set: c.set },
      );

      for (const verb of ['token', 'header']) {
        const later = await job.runStep('cdse-auth', [verb]);
        assertCliRefused(later, c.field);
        assert.deepEqual(later.env, {}, 'nothing exported to GITHUB_ENV');
        assert.deepEqual(later.outputs, {}, 'nothing written to GITHUB_OUTPUT');
      }
      assert.equal(server.counts.refresh_token, 2, 'both refreshes reached the server');

      // The file keeps the last good token set: the refused answer was never stored.
      const after = await readStored(file);
      assert.ok(TokenSet.from(after.tokenSet), 'the stored token set is valid');
      assert.equal(after.tokenSet.accessToken, before.tokenSet.accessToken);
      assert.equal(after.tokenSet.refreshToken, before.tokenSet.refreshToken);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      const text = await readFile(file, 'utf8');
      for (const value of forgedValues(c.set)) {
        assert.ok(!text.includes(JSON.stringify(value).slice(1, -1)), 'no forged value stored');
        for (const [name, v] of Object.entries(job.exportedEnv)) {
          assert.ok(!v.includes(value), `${name} holds no forged value`);
        }
      }
      assert.equal(job.exportedEnv.CDSE_ACCESS_TOKEN, token);
      assertNoLeaks(job.logs, job.summary, [
        PASSWORD,
        token,
        before.tokenSet.refreshToken as string,
      ]);
    });
  }
});

describe('forged commands in the token answer of the main step', { concurrency: 4 }, () => {
  for (const c of TAMPERS) {
    test(c.name, async (t) => {
      const { server, job } = await scenario(t, USERS, LOGIN);
      server.inject({ kind: 'tamper', on: 'password', set: c.set });
      const main = await job.runMain();
      assertMainRefused(main, c.field);
      assert.equal(server.counts.password, 1, 'one login, not retried');
      for (const value of forgedValues(c.set)) {
        assert.ok(!main.stdout.includes(value) && !main.stderr.includes(value));
      }
      // The post step still cleans up quietly.
      const post = await job.runPost();
      assert.equal(post.code, 0, describeStep(post));
      assertOnlyCommands(post, ACTION_COMMANDS);
      assert.deepEqual(errorLines(post), []);
    });
  }
});

describe('server-chosen fields that `cdse-auth status` shows', { concurrency: 4 }, () => {
  const cases: Array<{ name: string; set: Record<string, unknown> }> = [
    {
      name: 'scope holding ##[error]',
      set: { scope: 'openid ##[error]forged' },
    },
    { name: 'session_state ::error::x', set: { session_state: '::error::forged' } },
    { name: 'scope ::warning::', set: { scope: '::warning::forged' } },
  ];
  for (const c of cases) {
    test(c.name, async (t) => {
      const { server, job } = await scenario(t, USERS, LOGIN);
      server.inject({ kind: 'tamper', on: 'password', set: c.set });
      const main = await job.runMain();
      assertOnlyCommands(main, ACTION_COMMANDS);
      assert.ok(!job.summary.includes('##['), 'the summary holds no ##[');
      if (main.code !== 0) {
        // Refusing the answer is fine too, with one line naming the field.
        assertMainRefused(main, Object.keys(c.set)[0] ?? '');
        return;
      }
      const status = await job.runStep('cdse-auth', ['status']);
      assert.equal(status.code, 0, describeStep(status));
      assertOnlyCommands(status, []);
    });
  }
});

test('the command detector sees what the runner would run', () => {
  const step = (stdout: string) => ({ stdout, stderr: '' }) as StepResult;
  assert.deepEqual(
    foreignCommands('x\n  ::error::y\n"a": "##[group]b"\n::add-mask::z', ['add-mask']),
    ['  ::error::y', '"a": "##[group]b"'],
  );
  assert.deepEqual(errorLines(step('::error title=X::forged\n::error::a\nerror::b')), [
    '::error title=X::forged',
    '::error::a',
  ]);
  assert.equal(errorMessage('::error::a%25%0Ab'), 'a%\nb');
});

describe('a hostile error answer', { concurrency: 4 }, () => {
  const bodies: Array<{ name: string; json: Record<string, string> }> = [
    {
      // Larger than the 1 MiB the client reads: the body is cut, so it is not JSON any more.
      name: '3 MB error_description with ##[error] and %0A, error with \\n::error::',
      json: { error: 'x\n::error::y', error_description: `##[error]z%0A${'M'.repeat(3 << 20)}` },
    },
    {
      name: '64 kB error_description that parses, with newlines, ::, ##[ and %0A',
      json: {
        error: 'invalid_grant\r\n::error title=E::forged',
        error_description: `line1\n::warning::w\n##[group]g%0A::add-mask::Bearer ${'D'.repeat(64 << 10)}`,
      },
    },
    {
      name: 'message (gateway form) with ::error:: at the start',
      json: { message: '::error::gateway\n##[error]again' } as Record<string, string>,
    },
  ];

  for (const body of bodies) {
    test(`main step: ${body.name}`, async (t) => {
      const { server, job } = await scenario(t, USERS, LOGIN);
      server.inject({ kind: 'status', status: 400, json: body.json, on: 'password' });
      const main = await job.runMain();
      assertMainRefused(main, /HTTP 400/);
      const line = errorLines(main)[0] ?? '';
      assert.ok(line.length < 1000, `bounded: ${line.length} chars`);
      const message = errorMessage(line);
      assert.doesNotMatch(message, /::|##\[|[\r\n]/, `one harmless line: ${message}`);
      for (const l of logLines(`${main.stdout}\n${main.stderr}`)) {
        assert.ok(!l.includes('##['), `no ##[ in ${l.slice(0, 200)}`);
      }
      assert.ok(main.stdout.length + main.stderr.length < 20_000, 'the log stays small');
    });

    test(`cdse-auth: ${body.name}`, async (t) => {
      const { server, job } = await scenario(t, USERS, LOGIN);
      server.inject({ kind: 'status', status: 400, json: body.json, on: 'password' });
      const step = await cliStep(job, ['token'], {
        CDSE_USERNAME: USER,
        CDSE_PASSWORD: PASSWORD,
        CDSE_TOKEN_URL: server.tokenUrl,
        CDSE_CREDENTIALS_FILE: `${job.runnerTemp}/credentials.json`,
      });
      assertCliRefused(step, 'HTTP 400');
      const said = saidLines(step.stderr)[0] ?? '';
      assert.ok(said.length < 1000, `bounded: ${said.length} chars`);
      assert.doesNotMatch(said.replace(/^cdse-auth: /, ''), /::|##\[/);
    });
  }
});

describe('oversized and out-of-range answers', { concurrency: 4 }, () => {
  const cases: Array<{ name: string; fault: Fault; field: string }> = [
    {
      name: 'a 150 kB access_token',
      fault: { kind: 'tamper', on: 'password', set: { access_token: 'A'.repeat(150_000) } },
      field: 'access_token',
    },
    {
      name: 'expires_in 1e13',
      fault: { kind: 'tamper', on: 'password', set: { expires_in: 1e13 } },
      field: 'expires_in',
    },
    {
      name: 'expires_in 1e999 (Infinity)',
      fault: { kind: 'tamper', on: 'password', raw: { expires_in: '1e999' } },
      field: 'expires_in',
    },
    {
      name: 'refresh_expires_in -1',
      fault: { kind: 'tamper', on: 'password', set: { refresh_expires_in: -1 } },
      field: 'refresh_expires_in',
    },
  ];
  for (const c of cases) {
    test(`main step: ${c.name}`, async (t) => {
      const { server, job } = await scenario(t, USERS, LOGIN);
      server.inject(c.fault);
      const main = await job.runMain();
      assertMainRefused(main, c.field);
      const message = errorMessage(errorLines(main)[0] ?? '');
      assert.ok(message.length < 1000, `one short line: ${message.length} chars`);
      // Not a raw validation dump.
      assert.doesNotMatch(message, /too_big|"code"|\[\s*\{|invalid_type|Infinity/);
    });

    test(`cdse-auth: ${c.name}`, async (t) => {
      const { server, job } = await scenario(t, USERS, LOGIN);
      server.inject(c.fault);
      const step = await cliStep(job, ['token'], {
        CDSE_USERNAME: USER,
        CDSE_PASSWORD: PASSWORD,
        CDSE_TOKEN_URL: server.tokenUrl,
        CDSE_CREDENTIALS_FILE: `${job.runnerTemp}/credentials.json`,
      });
      assertCliRefused(step, c.field);
      assert.doesNotMatch(step.stderr, /unexpected|too_big|"code"/);
    });
  }
});

describe('the TOTP code is masked before it is sent', { concurrency: 4 }, () => {
  const totpSecret = randomBase32Secret();
  const server2fa = () => ({
    users: [{ username: USER, password: PASSWORD, totpSecret }],
  });

  test('main step: the code the server received has an ::add-mask:: line first', async (t) => {
    const { server, job } = await scenario(t, server2fa(), () => ({
      ...LOGIN(),
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
    assertNoLeaks(job.logs, job.summary, [PASSWORD, totpSecret]);
  });

  test('main step: a refused login still masked the code it sent', async (t) => {
    const { server, job } = await scenario(t, server2fa(), () => ({
      ...LOGIN(),
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
    const { server } = await scenario(t, server2fa(), LOGIN);
    const heard: Array<{ value: string; requestsAtServer: number }> = [];
    const manager = new TokenManager(new PasswordAuth(USER, PASSWORD, { totpSecret }), {
      tokenUrl: server.tokenUrl,
      onSecret: (value) => heard.push({ value, requestsAtServer: server.requests.length }),
    });
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
    const { server, job } = await scenario(
      t,
      USERS,
      () => ({
        ...LOGIN(),
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
