import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, readActionYaml, run } from './runner.ts';

async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

test('dist/ is exactly what the build makes from the committed sources', {
  timeout: 180_000,
}, async () => {
  const out = await mkdtemp(join(tmpdir(), 'cdse-dist-'));
  try {
    const build = await run(process.execPath, ['scripts/build.ts', '--out', out], {
      env: { ...process.env } as Record<string, string>,
      cwd: REPO_ROOT,
      timeoutMs: 170_000,
    });
    assert.equal(build.code, 0, `build failed:\n${build.stdout}\n${build.stderr}`);
    const committed = join(REPO_ROOT, 'dist');
    assert.deepEqual(
      await files(committed),
      await files(out),
      'dist/ has other files than the build makes',
    );
    for (const file of await files(out)) {
      const [fresh, current] = await Promise.all([
        readFile(join(out, file)),
        readFile(join(committed, file)),
      ]);
      assert.ok(
        fresh.equals(current),
        `dist/${file} is stale: run \`npm run build\` and commit dist/`,
      );
    }
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test("action.yml's steps and everything they load at run time are committed files", async () => {
  const listed = await run('git', ['ls-files', 'dist'], {
    env: { PATH: process.env.PATH ?? '' },
    cwd: REPO_ROOT,
  });
  assert.equal(listed.code, 0, listed.stderr);
  const tracked = new Set(listed.stdout.split('\n').filter(Boolean));
  const action = await readActionYaml();
  const needed = [action.runs.main, action.runs.post ?? '', 'dist/cli/index.js'];
  // The entries load the shared bundle, and it its chunks, by relative path at run time.
  for (const file of await files(join(REPO_ROOT, 'dist', 'shared'))) {
    if (file.endsWith('.js')) needed.push(`dist/shared/${file}`);
  }
  for (const file of needed) assert.ok(tracked.has(file), `${file} is not committed`);
  assert.ok(needed.length > 4);
});
