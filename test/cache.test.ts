// The workflow cache end to end: the bundled action (node dist/...) run as jobs of one workflow,
// the real @actions/cache talking to the cache-service emulator, logins against the identity
// server. Counts come from the servers' request logs, never from the action's own word.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, beforeEach, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { expireStoredAccess, mainOk, readStored, refreshTokenFrom } from './fixtures.ts';
import { assertNoLeaks } from './leaks.ts';
import { Job, type JobOptions } from './runner.ts';
import { CacheServer } from './servers/cache-server.ts';
import { IdentityServer } from './servers/identity-server.ts';

const PASSWORD = 'cache-test-password-Q7';
const CACHE_SECRET = 'bW9yZS10aGFuLTMyLWJ5dGVzLW9mLWVudHJvcHktaGVyZQ==';

let identity: IdentityServer;
let cache: CacheServer;
const jobs: Job[] = [];

before(async () => {
  [identity, cache] = await Promise.all([
    IdentityServer.start({
      users: [
        { username: 'alice', password: PASSWORD },
        { username: 'bob', password: PASSWORD },
      ],
    }),
    CacheServer.start(),
  ]);
});
beforeEach(() => {
  identity.resetCounts();
  cache.clear();
  cache.setFault(undefined);
});
after(async () => {
  await Promise.all(jobs.map((j) => j.cleanup()));
  await Promise.all([identity.close(), cache.close()]);
});

async function job(
  options: JobOptions & { protocol?: 'v1' | 'v2'; inputs?: Record<string, string> } = {},
): Promise<Job> {
  const { protocol = 'v2', inputs, env, ...rest } = options;
  const created = await Job.create({
    runId: '4242',
    ...rest,
    inputs: {
      username: 'alice',
      password: PASSWORD,
      'token-url': identity.tokenUrl,
      'cache-secret': CACHE_SECRET,
      ...inputs,
    },
    env: { ...cache.env(protocol), ...env },
  });
  jobs.push(created);
  return created;
}

const saves = () => cache.requests.filter((r) => /CreateCacheEntry|v1:reserve/.test(r.api)).length;
const grants = () => ({ ...identity.counts });

describe('one login serves the workflow', () => {
  for (const protocol of ['v2', 'v1'] as const) {
    test(`job 1 logs in and saves; job 2 reuses it with no token request (${protocol})`, async () => {
      const first = await mainOk(await job({ protocol }));
      assert.equal(first.outputs.grant, 'password');
      assert.equal(first.outputs['cache-hit'], 'false');
      assert.equal(cache.entries.length, 1);
      assert.ok(cache.entries[0]?.key.startsWith('cdse-auth-'));

      identity.resetCounts();
      const second = await mainOk(await job({ protocol }));
      assert.equal(second.outputs.grant, 'cache');
      assert.equal(second.outputs['cache-hit'], 'true');
      assert.equal(second.outputs['access-token'], first.outputs['access-token']);
      assert.equal(identity.counts.total, 0);
      assert.equal(cache.entries.length, 1, 'a cache hit saves nothing new');
      assert.match(second.summary, /reused the cached login/);
    });
  }

  // 100 jobs are in the bench; the test needs only enough to show the count does not grow.
  test('25 sequential jobs make exactly one password grant', async () => {
    const sessions = identity.activeSessions();
    for (let i = 0; i < 25; i++) await mainOk(await job({ job: `job-${i}` }));
    assert.deepEqual([grants().password, grants().refresh_token], [1, 0]);
    assert.equal(identity.activeSessions(), sessions + 1);
  });

  test('8 parallel jobs after a seeded cache make no password grant', async () => {
    await mainOk(await job({ job: 'login' }));
    identity.resetCounts();
    const results = await Promise.all(
      Array.from({ length: 8 }, async (_, i) =>
        (await job({ job: 'matrix', runAttempt: '1' })).runMain().then((r) => [i, r] as const),
      ),
    );
    for (const [, r] of results) {
      assert.equal(r.code, 0, r.stdout);
      assert.equal(r.outputs.grant, 'cache');
    }
    assert.equal(identity.counts.password, 0);
  });

  test('after access expiry a job refreshes and saves; the next job reuses the refreshed set', async () => {
    const short = await IdentityServer.start({
      accessLifetime: 31,
      users: [{ username: 'alice', password: PASSWORD }],
    });
    try {
      const inputs = { 'token-url': short.tokenUrl };
      await mainOk(await job({ inputs })); // valid for 31 - 30 (skew) = 1 s
      await new Promise((r) => setTimeout(r, 1_100));
      const refreshed = await mainOk(await job({ inputs }));
      assert.equal(refreshed.outputs.grant, 'refresh_token');
      assert.equal(refreshed.outputs['cache-hit'], 'true');
      assert.equal(cache.entries.length, 2);
      assert.deepEqual([short.counts.password, short.counts.refresh_token], [1, 1]);
    } finally {
      await short.close();
    }
  });

  test('a token refreshed by a later step is saved by the post step', async () => {
    const j = await job();
    const main = await mainOk(j);
    await expireStoredAccess(main.outputs['credentials-file'] as string, -1); // an hour passes
    const later = await j.runStep('cdse-auth', ['token']);
    assert.equal(later.code, 0, later.stderr);
    assert.equal(identity.counts.refresh_token, 1);
    assert.notEqual(later.stdout.trim(), main.outputs['access-token']);
    assert.equal((await j.runPost()).code, 0);
    assert.equal(cache.entries.length, 2, 'post saved the refreshed set');
    const next = await mainOk(await job());
    assert.equal(next.outputs.grant, 'cache');
    assert.equal(next.outputs['access-token'], later.stdout.trim());
  });

  test('logout in the last job leaves a tombstone: the next job logs in afresh', async () => {
    await mainOk(await job());
    const sessions = identity.activeSessions();
    const last = await job({ inputs: { logout: 'true' } });
    assert.equal((await mainOk(last)).outputs.grant, 'cache');
    assert.equal((await last.runPost()).code, 0);
    assert.equal(identity.counts.logout, 1);
    assert.equal(identity.activeSessions(), sessions - 1);
    identity.resetCounts();
    const next = await mainOk(await job());
    assert.equal(next.outputs.grant, 'password');
    assert.equal(next.outputs['cache-hit'], 'false');
  });

  test('without cache-secret a private repository derives the key from the password', async () => {
    const inputs = { 'cache-secret': '' };
    await mainOk(await job({ inputs }));
    const second = await mainOk(await job({ inputs }));
    assert.equal(second.outputs.grant, 'cache');
    assert.equal(identity.counts.password, 1);
  });
});

describe('what the cache holds', () => {
  test('no token, password or their base64 forms in the stored bytes, keys or logs', async () => {
    const j = await job({ env: { RUNNER_DEBUG: '1' } });
    const result = await mainOk(j);
    await j.runPost();
    const archive = cache.entries[0]?.data;
    assert.ok(archive);
    const plain = await decompress(archive);
    const secrets = [result.outputs['access-token'], PASSWORD, CACHE_SECRET];
    const stored = identity.requests.length ? await lastRefreshToken(j) : undefined;
    for (const secret of [...secrets, stored]) {
      if (!secret) continue;
      for (const form of [
        secret,
        Buffer.from(secret).toString('base64').slice(0, 40),
        Buffer.from(secret).toString('base64url').slice(0, 40),
      ]) {
        assert.equal(plain.includes(form), false, 'a secret is in the archive');
        assert.equal(archive.includes(form), false);
      }
    }
    assert.ok(plain.includes('CDSEAUTH1'), 'the archive holds the sealed entry');
    assertNoLeaks(j.logs, j.summary, secrets, {
      state: [j.stateText],
      cacheKeys: cache.entries.map((e) => e.key),
    });
    assert.doesNotMatch(cache.entries[0]?.key ?? '', /alice/);
  });

  test('a tampered entry is ignored with a warning and a fresh login follows', async () => {
    await mainOk(await job());
    const entry = cache.entries[0];
    assert.ok(entry);
    entry.data = await tamper(entry.data);
    identity.resetCounts();
    const second = await mainOk(await job());
    assert.equal(second.outputs.grant, 'password');
    assert.equal(second.outputs['cache-hit'], 'false');
    assert.match(second.stdout, /::warning::Ignoring the cached CDSE login/);
  });

  test('a wrong cache-secret or another user never opens an entry', async () => {
    const shared = { 'cache-key': 'shared-prefix-' };
    await mainOk(await job({ inputs: shared }));
    for (const inputs of [
      { ...shared, 'cache-secret': 'another-secret-of-enough-length-000' },
      { ...shared, username: 'bob' },
    ]) {
      identity.resetCounts();
      const r = await mainOk(await job({ inputs }));
      assert.equal(r.outputs.grant, 'password');
      assert.match(r.stdout, /::warning::Ignoring the cached CDSE login/);
      assert.equal(identity.counts.password, 1);
    }
    // With the default prefix a different secret does not even find the entry.
    identity.resetCounts();
    const r = await mainOk(
      await job({ inputs: { 'cache-secret': 'yet-another-secret-0000000000000' } }),
    );
    assert.equal(r.outputs['cache-hit'], 'false');
    assert.doesNotMatch(r.stdout, /::warning::/);
  });
});

test('refresh-token logins of two accounts sharing a cache-secret never share an entry', async () => {
  const refreshTokenOf = (username: string) => refreshTokenFrom(identity, username, PASSWORD);
  const refreshOnly = (token: string) => ({ username: '', password: '', 'refresh-token': token });
  const alice = await mainOk(await job({ inputs: refreshOnly(await refreshTokenOf('alice')) }));
  assert.equal(alice.outputs.grant, 'refresh_token');
  const bob = await mainOk(await job({ inputs: refreshOnly(await refreshTokenOf('bob')) }));
  assert.equal(bob.outputs.grant, 'refresh_token', "bob must not get alice's cached login");
  assert.notEqual(bob.outputs['access-token'], alice.outputs['access-token']);
});

describe('when the cache is not used', () => {
  const fork = {
    repository: { full_name: 'owner/repo', private: true },
    pull_request: {
      head: { repo: { full_name: 'mallory/repo', fork: true } },
      base: { repo: { full_name: 'owner/repo' } },
    },
  };
  const cases: Array<[string, JobOptions]> = [
    ['pull_request from a fork', { eventName: 'pull_request', eventPayload: fork }],
    ['pull_request_target', { eventName: 'pull_request_target' }],
    ['workflow_run', { eventName: 'workflow_run' }],
    ['issue_comment', { eventName: 'issue_comment' }],
    ['ACTIONS_CACHE_MODE=none', { env: { ACTIONS_CACHE_MODE: 'none' } }],
    [
      'a public repository without cache-secret',
      {
        eventPayload: { repository: { private: false, visibility: 'public' } },
        inputs: { 'cache-secret': '' },
      },
    ],
    ['cache: false', { inputs: { cache: 'false' } }],
  ];
  for (const [name, options] of cases) {
    test(`${name}: no cache request at all, the job still logs in`, async () => {
      const r = await mainOk(await job(options));
      assert.equal(r.outputs.grant, 'password');
      assert.equal(r.outputs['cache-hit'], 'false');
      assert.deepEqual(cache.requests, []);
      if (!name.startsWith('cache:') && !name.startsWith('ACTIONS')) {
        assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('::notice::')).length, 1);
      }
    });
  }

  test('read-only cache mode restores but never saves', async () => {
    await mainOk(await job());
    const before = saves();
    const r = await mainOk(
      await job({
        env: { ACTIONS_CACHE_MODE: 'read' },
        inputs: { 'cache-secret': 'a-different-one-so-it-must-log-in-0' },
      }),
    );
    assert.equal(r.outputs.grant, 'password');
    assert.equal(saves(), before);
  });
});

// Each fault on a cache service of its own, all at once: the tests mostly wait on time limits.
describe('cache faults never fail or stall the job', { concurrency: true }, () => {
  const faults = [
    { kind: 'status', status: 503 },
    { kind: 'garbage' },
    { kind: 'reset' },
    { kind: 'slow', ms: 20_000 },
  ] as const;
  for (const fault of faults) {
    test(`${fault.kind}${'status' in fault ? ` ${fault.status}` : ''}: the job logs in within seconds`, async (t) => {
      const faulty = await CacheServer.start();
      t.after(() => faulty.close());
      faulty.setFault(fault);
      const r = await mainOk(await job({ stepTimeoutMs: 60_000, env: faulty.env('v2') }));
      assert.equal(r.outputs.grant, 'password');
      // Restore and save are each abandoned after 5 s, instead of the library's ~30 s of retries.
      assert.ok(r.durationMs < 15_000, `took ${Math.round(r.durationMs)} ms`);
    });
  }

  test('an unreachable cache service', async () => {
    const r = await mainOk(
      await job({
        env: {
          ACTIONS_RESULTS_URL: 'http://127.0.0.1:9/',
          ACTIONS_CACHE_URL: 'http://127.0.0.1:9/',
        },
      }),
    );
    assert.equal(r.outputs.grant, 'password');
    assert.ok(r.durationMs < 15_000, `took ${Math.round(r.durationMs)} ms`);
  });
});

// --- helpers --------------------------------------------------------------------------------

async function lastRefreshToken(j: Job): Promise<string | undefined> {
  const file = j.steps[0]?.outputs['credentials-file'];
  if (!file) return undefined;
  try {
    return (await readStored(file)).tokenSet.refreshToken;
  } catch {
    return undefined; // the post step removed it
  }
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

function pipeThrough(command: string, args: string[], input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args);
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${command} ${code}`)),
    );
    child.stdin.end(input);
  });
}

/** The tar stream inside an archive (zstd when the runner has it, else gzip). */
function decompress(archive: Buffer): Promise<Buffer> {
  return archive.subarray(0, 4).equals(ZSTD_MAGIC)
    ? pipeThrough('zstd', ['-d', '-c', '-q'], archive)
    : Promise.resolve(gunzipSync(archive));
}

/** Flips one byte of the sealed ciphertext inside the archive and packs it again. */
async function tamper(archive: Buffer): Promise<Buffer> {
  const zstd = archive.subarray(0, 4).equals(ZSTD_MAGIC);
  const tar = Buffer.from(await decompress(archive));
  const at = tar.indexOf('CDSEAUTH1');
  assert.ok(at > 0);
  tar[at + 9 + 12 + 16 + 3] = (tar[at + 9 + 12 + 16 + 3] ?? 0) ^ 0x01; // a ciphertext byte, past magic, IV and tag
  if (zstd) return pipeThrough('zstd', ['-c', '-q'], tar);
  const { gzipSync } = await import('node:zlib');
  return gzipSync(tar);
}
