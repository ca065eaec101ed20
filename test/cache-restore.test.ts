// Restoring the cached login through the bundled action (node dist/...): the archive is read in
// memory and never unpacked, so a planted entry cannot write files; tar never runs on restore;
// the key prefix a planted entry needs never shows in the log.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { extractSealedMember } from '../src/action/archive.ts';
import { ENTRY_PATH } from '../src/action/cache-store.ts';
import { tar, zstd } from './archives.ts';
import { mainOk } from './fixtures.ts';
import { displayedLines } from './leaks.ts';
import { Job, SYSTEM_PATH } from './runner.ts';
import { CacheServer } from './servers/cache-server.ts';
import { IdentityServer } from './servers/identity-server.ts';

const PASSWORD = 'restore-test-password-K2';
const CACHE_SECRET = 'cmVzdG9yZS10ZXN0LWNhY2hlLXNlY3JldC0zMi1ieXRlcw==';
const PREFIX = /cdse-auth-[0-9a-f]{24}-/;
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

let identity: IdentityServer;
let cache: CacheServer;
let root = '';
let noZstd = '';
const jobs: Job[] = [];

before(async () => {
  [identity, cache] = await Promise.all([
    IdentityServer.start({ users: [{ username: 'alice', password: PASSWORD }] }),
    CacheServer.start(),
  ]);
  root = await mkdtemp(join(tmpdir(), 'cdse-restore-'));
  // A PATH where @actions/cache finds tar and gzip but no zstd, so it saves gzip archives.
  noZstd = join(root, 'no-zstd');
  await mkdir(noZstd);
  for (const tool of ['tar', 'gzip']) await symlink(`/usr/bin/${tool}`, join(noZstd, tool));
});
beforeEach(() => {
  identity.resetCounts();
  cache.clear();
  cache.setFault(undefined);
});
after(async () => {
  await Promise.all(jobs.map((j) => j.cleanup()));
  await Promise.all([identity.close(), cache.close()]);
  await rm(root, { recursive: true, force: true });
});

async function job(protocol: 'v1' | 'v2', path: string, env: Record<string, string> = {}) {
  const created = await Job.create({
    runId: '5151',
    inputs: {
      username: 'alice',
      password: PASSWORD,
      'token-url': identity.tokenUrl,
      'cache-secret': CACHE_SECRET,
    },
    env: { ...cache.env(protocol), PATH: path, ...env },
  });
  jobs.push(created);
  return created;
}

/** A folder whose `tar` logs its arguments to `marker`, then runs the real tar. */
async function tarSpy(): Promise<{ dir: string; marker: string }> {
  const dir = await mkdtemp(join(root, 'tar-spy-'));
  const marker = join(dir, 'tar-ran');
  const script = `#!/bin/sh\nprintf '%s\\n' "$*" >> '${marker}'\nexec /usr/bin/tar "$@"\n`;
  await writeFile(join(dir, 'tar'), script, { mode: 0o755 });
  return { dir, marker };
}

const lookups = () =>
  cache.requests.filter((r) => r.api === 'GetCacheEntryDownloadURL' || r.api === 'v1:get');
const warnings = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('::warning::'));

/** No displayed line of these jobs shows the key prefix (the runner masks what was registered). */
function assertPrefixMasked(...of: Job[]): void {
  for (const j of of) {
    const registered = j.logs.join('\n').match(/^::add-mask::(.*)$/gm) ?? [];
    assert.ok(
      registered.some((line) => PREFIX.test(line)),
      'the prefix is registered with the runner',
    );
    for (const line of displayedLines(j.logs)) {
      assert.doesNotMatch(line, PREFIX, `the key prefix shows in the log: ${line}`);
    }
  }
}

const hasZstd = (() => {
  try {
    return statSync('/usr/bin/zstd').isFile();
  } catch {
    return false;
  }
})();

for (const protocol of ['v2', 'v1'] as const) {
  describe(`restore (${protocol})`, () => {
    for (const compression of ['zstd', 'gzip'] as const) {
      test(`a saved login is reused with no token request and no tar (${compression})`, async (t) => {
        if (compression === 'zstd' && !hasZstd) return t.skip('zstd missing (Debian: zstd)');
        const path = compression === 'zstd' ? SYSTEM_PATH : noZstd;
        const first = await mainOk(await job(protocol, path));
        assert.equal(first.outputs.grant, 'password');
        const [entry] = cache.entries;
        assert.ok(entry);
        assert.equal(entry.data.subarray(0, 4).equals(ZSTD_MAGIC), compression === 'zstd');

        identity.resetCounts();
        cache.requests.length = 0;
        const spy = await tarSpy();
        const second = await job(protocol, `${spy.dir}:${path}`, { RUNNER_DEBUG: '1' });
        const result = await mainOk(second);
        assert.equal(result.outputs.grant, 'cache');
        assert.equal(result.outputs['cache-hit'], 'true');
        assert.equal(identity.counts.total, 0);
        assert.equal(existsSync(spy.marker), false, 'tar ran during the restore');
        assert.equal(lookups().length, 1, 'the compression on PATH is looked up first');
        const download = cache.requests.find((r) => r.api === 'blob:get');
        assert.equal(download?.authorized, false);
        assert.deepEqual(warnings(result.stdout), []);
        assertPrefixMasked(second);
      });
    }

    test('a planted entry with an absolute-path member writes nothing; a fresh login follows', async () => {
      const first = await job(protocol, SYSTEM_PATH);
      await mainOk(first);
      const [saved] = cache.entries;
      assert.ok(saved);
      const sealed = extractSealedMember(saved.data, ENTRY_PATH);
      assert.ok(Buffer.isBuffer(sealed), 'the saved entry reads back');
      const prefix = PREFIX.exec(saved.key)?.[0] ?? '';
      assert.ok(prefix);

      // The valid sealed member (it would open!) plus a file at an absolute path.
      const target = join(root, `planted-${protocol}`, 'index.js');
      const poisoned = tar([
        { name: ENTRY_PATH, data: sealed },
        { name: target, data: 'process.exit(42)' },
      ]);
      cache.plant(`${prefix}9999-evil`, zstd(poisoned), saved.version);
      identity.resetCounts();

      const spy = await tarSpy();
      const second = await job(protocol, `${spy.dir}:${SYSTEM_PATH}`, { RUNNER_DEBUG: '1' });
      const result = await mainOk(second);
      assert.equal(existsSync(target), false, 'the planted member was written');
      assert.equal(result.outputs.grant, 'password');
      assert.equal(result.outputs['cache-hit'], 'false');
      assert.equal(identity.counts.password, 1);
      const warned = warnings(result.stdout);
      assert.equal(warned.length, 1, warned.join('\n'));
      assert.match(warned[0] ?? '', /cached CDSE login.*not one cdse-auth wrote/);
      // Only the save of the fresh login ran tar: create, then (debug) list what it created.
      const runs = existsSync(spy.marker)
        ? readFileSync(spy.marker, 'utf8').trim().split('\n')
        : [];
      assert.match(runs[0] ?? '', /^--posix -cf /, 'tar ran before the save');
      for (const run of runs) assert.doesNotMatch(run, /(^| )-x/, `tar extracted: ${run}`);
      assertPrefixMasked(first, second);
      assert.equal(cache.entries.length, 3, 'the fresh login was saved under a new key');
    });

    test('a key the library prints (a refused save) shows masked', async () => {
      cache.setFault({ kind: 'reserve-conflict' });
      const j = await job(protocol, SYSTEM_PATH, { RUNNER_DEBUG: '1' });
      assert.equal((await mainOk(j)).outputs.grant, 'password');
      assert.equal(cache.entries.length, 0);
      const shown = displayedLines(j.logs).filter((l) => l.includes('Unable to reserve cache'));
      assert.ok(shown.length > 0, 'the library logged the refused key');
      for (const line of shown) assert.match(line, /with key \*\*\*/);
      assertPrefixMasked(j);
    });

    test('an oversized planted entry is ignored with one warning', async () => {
      await mainOk(await job(protocol, SYSTEM_PATH));
      cache.setFault({ kind: 'blob-huge', bytes: 16 << 20 });
      identity.resetCounts();
      const result = await mainOk(await job(protocol, SYSTEM_PATH));
      assert.equal(result.outputs.grant, 'password');
      const warned = warnings(result.stdout);
      assert.equal(warned.length, 1, warned.join('\n'));
      assert.match(warned[0] ?? '', /not one cdse-auth wrote \(the archive is too large\)/);
    });
  });
}
