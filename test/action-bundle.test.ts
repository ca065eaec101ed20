// The built action is self-contained: dist/ copied to a folder with no node_modules anywhere
// above it logs in, serves `cdse-auth` to a later step and runs post.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, parse } from 'node:path';
import { describe, test } from 'node:test';
import { assertOk, JOB_PASSWORD as PASSWORD, scenario, JOB_USER as USER } from './fixtures.ts';
import { REPO_ROOT } from './runner.ts';

describe('bundles', () => {
  test('dist runs from a copy with no node_modules anywhere above it', async (t) => {
    const copy = await mkdtemp(join(tmpdir(), 'cdse-action-copy-'));
    t.after(() => rm(copy, { recursive: true, force: true }));
    await cp(join(REPO_ROOT, 'dist'), join(copy, 'dist'), { recursive: true });
    await cp(join(REPO_ROOT, 'action.yml'), join(copy, 'action.yml'));
    for (let dir = copy; ; dir = dirname(dir)) {
      await assert.rejects(stat(join(dir, 'node_modules')), { code: 'ENOENT' });
      if (dir === parse(dir).root) break;
    }
    const { job } = await scenario(
      t,
      { users: [{ username: USER, password: PASSWORD }] },
      { username: USER, password: PASSWORD },
      { actionDir: copy },
    );
    const main = await job.runMain();
    assertOk(main, 'main from the copy');
    assert.equal(main.outputs.grant, 'password');
    const token = await job.runStep('cdse-auth', ['token']);
    assertOk(token, 'cdse-auth from the copy');
    assert.equal(token.stdout, `${main.outputs['access-token']}\n`);
    assert.match(
      await readFile(join(main.path[0] ?? '', 'cdse-auth'), 'utf8'),
      new RegExp(`${copy}/dist/cli/index\\.js`),
    );
    assertOk(await job.runPost(), 'post from the copy');
  });
});
