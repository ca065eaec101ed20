// One S3 key pair per workflow, against the built dist/ in the runner harness: a login job, ten
// run jobs sharing the cached login, and a logout job. Counts come from the keys-manager peer,
// the proof of use from the real AWS SDK in a later step. Run `npm run build` after changing src/.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { assertNoLeaks } from './leaks.ts';
import { Job } from './runner.ts';
import {
  OBJECT_BODY,
  OBJECT_KEY,
  PASSWORD,
  type Peers,
  peerInputs,
  SDK_ISOLATION,
  SDK_SCRIPT,
  startPeers,
  USER,
} from './s3-peers.ts';
import { CacheServer } from './servers/cache-server.ts';

const CACHE_SECRET = 'czMtbWF0cml4LWNhY2hlLXNlY3JldC0zMi1ieXRlcy1oZXJl';
const RUNS = 10;

let peers: Peers;
let cache: CacheServer;
const jobs: Job[] = [];

before(async () => {
  [peers, cache] = await Promise.all([startPeers(), CacheServer.start()]);
});
after(async () => {
  await Promise.all(jobs.map((j) => j.cleanup()));
  await Promise.all([peers.close(), cache.close()]);
});

async function job(name: string, runId: string, inputs: Record<string, string>): Promise<Job> {
  const created = await Job.create({
    runId,
    job: name,
    inputs: peerInputs(peers, {
      cache: 'true',
      'cache-secret': CACHE_SECRET,
      s3: 'true',
      ...inputs,
    }),
    env: { ...cache.env('v2'), RUNNER_DEBUG: '1' },
  });
  jobs.push(created);
  return created;
}

const ok = (step: { code: number; stdout: string; stderr: string }, what: string) =>
  assert.equal(step.code, 0, `${what}:\n${step.stdout}\n${step.stderr}`.slice(0, 4000));

/** The later step: the AWS SDK, configured only from the environment the job exported. */
const sdkStep = (j: Job) => {
  const sdk = import.meta.resolve('@aws-sdk/client-s3');
  const script = SDK_SCRIPT.replace("'@aws-sdk/client-s3'", JSON.stringify(sdk));
  return j.runStep(process.execPath, ['--input-type=module', '-e', script], SDK_ISOLATION);
};

/** The tar inside an archive the cache holds (zstd when the runner has it, else gzip). */
function unpack(archive: Buffer): Promise<Buffer> {
  if (archive[0] === 0x1f && archive[1] === 0x8b) return Promise.resolve(gunzipSync(archive));
  return new Promise((resolve, reject) => {
    const child = spawn('zstd', ['-d', '-c', '-q']);
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', () => resolve(Buffer.concat(out)));
    child.stdin.end(archive);
  });
}

describe('S3 keys across the jobs of one workflow', () => {
  test(`login, ${RUNS} run jobs, logout: 1 pair created, shared, used by the AWS SDK, 1 deleted`, async () => {
    const runId = String(8_000_000 + Math.floor(Math.random() * 1_000_000));
    const login = await job('login', runId, { 'export-env': 'false' });
    const seeded = await login.runMain();
    ok(seeded, 'login main');
    ok(await login.runPost(), 'login post');
    assert.equal(peers.keys.counts.create, 1);

    const runs = await Promise.all(
      Array.from({ length: RUNS }, async (_, i) => {
        const j = await job(`run-${i}`, runId, {});
        const main = await j.runMain();
        ok(main, `run-${i} main`);
        const used = i === 0 ? await sdkStep(j) : undefined;
        ok(await j.runPost(), `run-${i} post`);
        return { j, main, used };
      }),
    );
    const [created] = peers.keys.allKeys().filter((k) => k.user === USER);
    assert.ok(created);
    assert.equal(peers.keys.keys(USER).length, 1, 'the pair lives while the run jobs work');

    const host = new URL(peers.s3.endpoint).host;
    for (const { main } of runs) {
      assert.equal(main.outputs['cache-hit'], 'true');
      assert.deepEqual(
        Object.fromEntries(Object.entries(main.env).filter(([name]) => name.startsWith('AWS_'))),
        {
          AWS_ACCESS_KEY_ID: created.accessId,
          AWS_SECRET_ACCESS_KEY: created.secret,
          AWS_ENDPOINT_URL_S3: peers.s3.endpoint,
          AWS_REGION: 'default',
          AWS_S3_ENDPOINT: host,
          AWS_VIRTUAL_HOSTING: 'FALSE',
          AWS_HTTPS: 'NO', // the peer is on loopback http
        },
      );
    }
    const used = runs[0]?.used;
    assert.ok(used);
    ok(used, 'the AWS SDK step');
    assert.deepEqual(JSON.parse(used.stdout), { key: OBJECT_KEY, body: OBJECT_BODY });
    assert.ok(
      peers.s3.requests.some((r) => r.accessKeyId === created.accessId && r.status === 200),
    );

    const logout = await job('logout', runId, { 'export-env': 'false', logout: 'true' });
    ok(await logout.runMain(), 'logout main');
    const ended = await logout.runPost();
    ok(ended, 'logout post');
    assert.match(ended.stdout, /Deleted the S3 key pair/);
    assert.deepEqual(
      { create: peers.keys.counts.create, delete: peers.keys.counts.delete },
      { create: 1, delete: 1 },
    );
    assert.equal(peers.keys.keys(USER).length, 0, 'nothing left behind');

    const cacheKeys = cache.entries.map((e) => e.key);
    for (const j of [login, ...runs.map((r) => r.j), logout]) {
      assertNoLeaks(j.logs, j.summary, [created.secret, created.accessId, PASSWORD, CACHE_SECRET], {
        state: [j.stateText],
        cacheKeys,
      });
    }
    // The sealed entries hold the pair only encrypted.
    for (const entry of cache.entries) {
      const tar = await unpack(entry.data);
      assert.ok(tar.includes('CDSEAUTH1'), 'a sealed entry');
      assert.ok(!tar.includes(created.secret) && !tar.includes(created.accessId));
    }
  });

  test('cache off: a later step fails, the post step still deletes the pair', async () => {
    const j = await job('alone', '1', { cache: 'false' });
    const before = peers.keys.counts.delete;
    const main = await j.runMain();
    ok(main, 'main');
    const failing = await j.runStep('/bin/bash', ['-c', 'echo "pipeline broke" >&2; exit 3']);
    assert.equal(failing.code, 3);
    const post = await j.runPost();
    ok(post, 'post');
    assert.equal(peers.keys.counts.delete, before + 1);
    assert.equal(peers.keys.keys(USER).length, 0);
    const secret = main.env.AWS_SECRET_ACCESS_KEY;
    assert.ok(secret);
    assertNoLeaks(j.logs, j.summary, [secret, PASSWORD], { state: [j.stateText] });
  });
});
