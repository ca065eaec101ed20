// Inputs of the built action that shape its result (node dist/..., through the runner harness,
// against the test identity server): output-refresh-token, export-env and logout.
// Run `npm run build` after changing src/.
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describe, test } from 'node:test';
import {
  assertOk,
  errorLines,
  JOB_PASSWORD as PASSWORD,
  readStored,
  scenario,
  secretsOf,
  JOB_USER as USER,
} from './fixtures.ts';
import { assertNoLeaks } from './leaks.ts';

describe('inputs that shape the result', { concurrency: 4 }, () => {
  const passwordServer = () => ({ users: [{ username: USER, password: PASSWORD }] });

  test('output-refresh-token: true sets the refresh-token output, masked', async (t) => {
    const { job, server } = await scenario(t, passwordServer(), {
      username: USER,
      password: PASSWORD,
      'output-refresh-token': 'true',
    });
    const main = await job.runMain();
    assertOk(main, 'main');
    const stored = await readStored(main.outputs['credentials-file'] ?? '');
    assert.ok(stored.tokenSet.refreshToken);
    assert.equal(main.outputs['refresh-token'], stored.tokenSet.refreshToken);
    assert.ok(main.stdout.includes(`::add-mask::${stored.tokenSet.refreshToken}`));
    assertNoLeaks(job.logs, job.summary, secretsOf(server, [stored.tokenSet.refreshToken]), {
      state: [job.stateText],
    });
  });

  test('export-env: false exports nothing and adds nothing to PATH', async (t) => {
    const { job } = await scenario(t, passwordServer(), {
      username: USER,
      password: PASSWORD,
      'export-env': 'false',
    });
    const main = await job.runMain();
    assertOk(main, 'main');
    assert.deepEqual(main.env, {});
    assert.deepEqual(main.path, []);
    assert.ok(main.outputs['access-token']);
    const step = await job.runStep('sh', ['-c', 'command -v cdse-auth; env | grep ^CDSE_ || true']);
    assert.equal(step.stdout, '');
    // The folder still exists for the outputs' credentials file, and post removes it.
    const dir = dirname(main.outputs['credentials-file'] ?? '');
    await stat(dir);
    assertOk(await job.runPost(), 'post');
    await assert.rejects(stat(dir), { code: 'ENOENT' });
  });

  test('logout: true ends the server session in post', async (t) => {
    const { job, server } = await scenario(t, passwordServer(), {
      username: USER,
      password: PASSWORD,
      logout: 'true',
    });
    assertOk(await job.runMain(), 'main');
    assert.equal(server.activeSessions(), 1);
    const post = await job.runPost();
    assertOk(post, 'post');
    assert.deepEqual(errorLines(post), []);
    assert.doesNotMatch(post.stdout, /::warning::/);
    assert.equal(server.counts.logout, 1);
    assert.equal(server.activeSessions(), 0);
    assert.match(post.stdout, /Ended the CDSE session/);
    const dir = dirname(job.steps[0]?.outputs['credentials-file'] ?? '');
    await assert.rejects(stat(dir), { code: 'ENOENT' });
    assertNoLeaks(job.logs, job.summary, secretsOf(server), { state: [job.stateText] });
  });
});
