// How the built action fails (node dist/..., through the runner harness, against the test
// identity server): bad inputs with one error line that names the input, a wrong password sent
// once, the fork hint in pull requests; post still cleans up. Run `npm run build` first.
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { describe, test } from 'node:test';
import {
  assertNoStackTrace,
  assertOk,
  errorLines,
  JOB_PASSWORD as PASSWORD,
  scenario,
  JOB_USER as USER,
} from './fixtures.ts';
import { assertNoLeaks } from './leaks.ts';

describe('bad inputs fail with one error line that names the input', { concurrency: 4 }, () => {
  const creds = { username: USER, password: PASSWORD };
  // The whole table runs in-process (test/action-inputs.test.ts); these rows show the built
  // bundle renders such an error the same way.
  const rows: Array<{ name: string; inputs: Record<string, string>; error: RegExp[] }> = [
    {
      name: 'missing credentials',
      inputs: {},
      error: [/username/, /password/, /client-secret/, /refresh-token/],
    },
    {
      name: 'malformed token-url',
      inputs: { ...creds, 'token-url': 'not a url' },
      error: [/Input token-url:/],
    },
  ];

  for (const row of rows) {
    test(row.name, async (t) => {
      const { job, server } = await scenario(t, {}, row.inputs);
      const main = await job.runMain();
      assert.equal(main.code, 1, `exit code; output:\n${main.stdout}${main.stderr}`);
      const errors = errorLines(main);
      assert.equal(errors.length, 1, `one ::error:: line, got ${JSON.stringify(errors)}`);
      for (const pattern of row.error) assert.match(errors[0] ?? '', pattern);
      assert.doesNotMatch(errors[0] ?? '', /fork/, 'no fork hint outside pull requests');
      assertNoStackTrace(main);
      assert.equal(server.counts.total, 0, 'nothing was sent');
      // Nothing was created, so post has nothing to do.
      assert.deepEqual(main.state, {});
      assert.deepEqual(await readdir(job.runnerTemp), []);
      if (row === rows[0]) assertOk(await job.runPost(), 'post');
      const secrets = ['password', 'totp', 'totp-secret', 'client-secret']
        .map((name) => row.inputs[name])
        .filter((v): v is string => !!v && v.length >= 4);
      if (secrets.length) assertNoLeaks(job.logs, job.summary, secrets);
    });
  }
});

describe('failures at the server and in pull requests', { concurrency: 4 }, () => {
  test('a wrong password fails once, without retrying or showing it', async (t) => {
    const wrong = 'wrong-Password-123';
    const { job, server } = await scenario(
      t,
      { users: [{ username: USER, password: PASSWORD }] },
      {
        username: USER,
        password: wrong,
      },
    );
    const main = await job.runMain();
    assert.equal(main.code, 1);
    assert.equal(server.counts.password, 1, 'exactly one password request');
    assert.equal(server.counts.total, 1);
    const errors = errorLines(main);
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0] ?? '', /rejected the credentials/);
    assert.ok(!(errors[0] ?? '').includes(wrong));
    assertNoStackTrace(main);
    assert.deepEqual(main.outputs, {});
    assert.deepEqual(main.env, {});
    // post still runs (post-if: always()) and removes the folder main created.
    const dir = main.state.dir;
    assert.ok(dir);
    const post = await job.runPost();
    assertOk(post, 'post');
    await assert.rejects(stat(dir), { code: 'ENOENT' });
    assertNoLeaks(job.logs, job.summary, [wrong], { state: [job.stateText] });
  });

  test('a fork pull request without secrets gets the fork hint', async (t) => {
    const { job, server } = await scenario(
      t,
      {},
      {},
      {
        eventName: 'pull_request',
        eventPayload: {
          repository: { full_name: 'cdse-auth/example', private: false, visibility: 'public' },
          pull_request: {
            head: { repo: { full_name: 'someone/example', fork: true } },
            base: { repo: { full_name: 'cdse-auth/example' } },
          },
        },
      },
    );
    const main = await job.runMain();
    assert.equal(main.code, 1);
    const errors = errorLines(main);
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0] ?? '', /No credentials/);
    assert.match(errors[0] ?? '', /forks receive no secrets/);
    assertNoStackTrace(main);
    assert.equal(server.counts.total, 0);
  });
});
