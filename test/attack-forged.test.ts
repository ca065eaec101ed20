// Attack suite, forged workflow commands: a hostile identity server puts `::error::`, `%0A`,
// `##[` and the like into token fields, against the BUILT action (node dist/...) and the
// `cdse-auth` a later step runs. Whatever the server sends, no forged command reaches the log, a
// file command or the credentials file. Run `npm run build` first.
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { TokenSet } from '../src/auth/index.ts';
import { describeStep, errorLines, expireStoredAccess, mainOk, readStored } from './fixtures.ts';
import {
  ACTION_COMMANDS,
  ATTACK_LOGIN,
  ATTACK_PASSWORD,
  ATTACK_USERS,
  assertCliRefused,
  assertMainRefused,
  assertOnlyCommands,
  attackScenario,
  errorMessage,
  foreignCommands,
} from './hostile.ts';
import { assertNoLeaks } from './leaks.ts';
import type { StepResult } from './runner.ts';

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

describe('forged commands in a token that a later step refreshes', { concurrency: 4 }, () => {
  for (const c of TAMPERS) {
    test(c.name, async (t) => {
      const { server, job } = await attackScenario(t, ATTACK_USERS, ATTACK_LOGIN);
      const main = await mainOk(job);
      const token = main.outputs['access-token'] ?? '';
      const file = main.outputs['credentials-file'] ?? '';
      const before = await readStored(file);
      await expireStoredAccess(file);
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
        ATTACK_PASSWORD,
        token,
        before.tokenSet.refreshToken as string,
      ]);
    });
  }
});

describe('forged commands in the token answer of the main step', { concurrency: 4 }, () => {
  for (const c of TAMPERS) {
    test(c.name, async (t) => {
      const { server, job } = await attackScenario(t, ATTACK_USERS, ATTACK_LOGIN);
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
      const { server, job } = await attackScenario(t, ATTACK_USERS, ATTACK_LOGIN);
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
