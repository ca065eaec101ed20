// Attack suite, echoed secrets: an identity server that reflects the password into its error
// answer (the raw form body, the password as such, its JSON literal, every character \u-escaped).
// Neither the BUILT action, nor `cdse-auth`, nor the library's error may show the password in any
// encoding, checked on the raw output before any runner masking. Run `npm run build` first.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inspect } from 'node:util';
import { CdseAuthError, PasswordAuth, TokenManager } from '../src/auth/index.ts';
import { assertNoStackTrace, cliLogin, describeStep, errorLines, saidLines } from './fixtures.ts';
import {
  assertOnlyCommands,
  attackScenario,
  cliStep,
  HOSTILE_PASSWORD,
  HOSTILE_USER,
  passwordForms,
  rawLeak,
} from './hostile.ts';
import { assertNoLeaks } from './leaks.ts';
import type { Fault } from './servers/identity-server.ts';

const USERS = { users: [{ username: HOSTILE_USER, password: HOSTILE_PASSWORD }] };
const MARKER = 'Zebra';

type Echo = Extract<Fault, { kind: 'echo' }>;
const ECHOES: Array<{ name: string; fault: Echo }> = [
  { name: 'form body into error_description', fault: { kind: 'echo' } },
  { name: 'form body into error', fault: { kind: 'echo', into: 'error' } },
  { name: 'form body, HTTP 400', fault: { kind: 'echo', status: 400 } },
  { name: 'raw password into error', fault: { kind: 'echo', variant: 'secret' } },
  {
    name: 'raw password into error_description',
    fault: { kind: 'echo', variant: 'secret', into: 'error_description' },
  },
  { name: 'JSON literal into error', fault: { kind: 'echo', variant: 'secret-json' } },
  {
    name: 'JSON literal into error_description',
    fault: { kind: 'echo', variant: 'secret-json', into: 'error_description' },
  },
  { name: '\\u-escaped password into error', fault: { kind: 'echo', variant: 'secret-unicode' } },
  {
    name: '\\u-escaped password into error_description',
    fault: { kind: 'echo', variant: 'secret-unicode', into: 'error_description' },
  },
];

test('the password has every form the suite looks for', () => {
  const forms = passwordForms(HOSTILE_PASSWORD);
  assert.ok(forms.includes('Zebra%2Bfish%40ocean%207%25%22q%5C%C3%B1-42'), 'encodeURIComponent');
  assert.ok(forms.includes('Zebra%2Bfish%40ocean+7%25%22q%5C%C3%B1-42'), 'form-encoded');
  assert.ok(forms.includes('Zebra+fish@ocean 7%\\"q\\\\ñ-42'), 'JSON-escaped');
  assert.ok(forms.includes('Zebra+fish@ocean 7%\\"q\\\\\\u00f1-42'), 'JSON, \\u for non-ASCII');
  // The server's echo really carries it in that form.
  const body = new URLSearchParams({ password: HOSTILE_PASSWORD }).toString();
  assert.ok(forms.some((f) => body.includes(f)));
});

function assertNoRawLeak(text: string, where: string): void {
  const leak = rawLeak(text, HOSTILE_PASSWORD, MARKER);
  assert.equal(leak, undefined, `the password shows in ${where}: ${leak?.slice(0, 300)}`);
}

describe('echoed secrets: main step', { concurrency: 4 }, () => {
  for (const { name, fault } of ECHOES) {
    test(name, async (t) => {
      const { server, job } = await attackScenario(t, USERS, () => ({
        username: HOSTILE_USER,
        password: HOSTILE_PASSWORD,
        'max-attempts': '1',
      }));
      server.inject({ ...fault, on: 'password' });
      const main = await job.runMain({ RUNNER_DEBUG: '1' });
      assert.equal(main.code, 1, describeStep(main));
      assert.equal(errorLines(main).length, 1, describeStep(main));
      assert.equal(server.requests[0]?.form.password, HOSTILE_PASSWORD, 'the server got it');
      assertOnlyCommands(main, ['add-mask', 'debug', 'error']);
      assertNoStackTrace(main);
      // Before the runner's masking: the raw output, mask registrations aside.
      assertNoRawLeak(main.stdout, 'stdout');
      assertNoRawLeak(main.stderr, 'stderr');
      assertNoRawLeak(main.summary, 'the job summary');
      assertNoRawLeak(main.stateText, 'GITHUB_STATE');
      // And as the runner shows it.
      const post = await job.runPost();
      assertNoRawLeak(`${post.stdout}\n${post.stderr}`, 'the post step');
      assertNoLeaks(job.logs, job.summary, [HOSTILE_PASSWORD], { state: [job.stateText] });
    });
  }
});

describe('echoed secrets: cdse-auth', { concurrency: 4 }, () => {
  for (const { name, fault } of ECHOES) {
    test(name, async (t) => {
      const { server, job } = await attackScenario(t, USERS, () => ({}));
      server.inject({ ...fault, on: 'password' });
      const step = await cliStep(job, ['token'], {
        ...cliLogin(server, job, HOSTILE_USER, HOSTILE_PASSWORD),
        CDSE_MAX_ATTEMPTS: '1',
      });
      assert.equal(step.code, 1, describeStep(step));
      assert.equal(step.stdout, '');
      const said = saidLines(step.stderr);
      assert.equal(said.length, 1, describeStep(step));
      assert.match(said[0] ?? '', /^cdse-auth: /);
      assert.equal(server.requests[0]?.form.password, HOSTILE_PASSWORD);
      assertOnlyCommands(step, ['add-mask']);
      assertNoStackTrace(step);
      assertNoRawLeak(step.stderr, 'stderr');
      assertNoLeaks(job.logs, job.summary, [HOSTILE_PASSWORD]);
    });
  }
});

describe('echoed secrets: the library error', { concurrency: 4 }, () => {
  for (const { name, fault } of ECHOES) {
    test(name, async (t) => {
      const { server } = await attackScenario(t, USERS, () => ({}));
      server.inject({ ...fault, on: 'password' });
      const manager = new TokenManager(new PasswordAuth(HOSTILE_USER, HOSTILE_PASSWORD), {
        tokenUrl: server.tokenUrl,
        maxAttempts: 1,
      });
      t.after(() => manager.close());
      const error: unknown = await manager.getTokenSet().then(
        () => assert.fail('the login succeeded'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof CdseAuthError, `a CdseAuthError, got ${inspect(error)}`);
      assert.equal(server.requests[0]?.form.password, HOSTILE_PASSWORD);
      const fields = {
        message: error.message,
        error: error.error ?? '',
        errorDescription: error.errorDescription ?? '',
        hint: error.hint ?? '',
        inspect: inspect(error),
        json: JSON.stringify(error),
        string: String(error),
      };
      for (const [field, text] of Object.entries(fields)) assertNoRawLeak(text, field);
      assert.doesNotMatch(error.message, /[\r\n]/, 'the message is one line');
    });
  }
});
