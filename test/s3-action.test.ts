// The action's S3 keys in-process (main and post through run(deps) with a recording runner)
// against the identity, keys-manager and S3 peers, with the cache off: this job is the only user
// of its pair. The workflow-wide sharing runs against the built dist/ in s3-matrix.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { run as runMain } from '../src/action/main.ts';
import { run as runPost } from '../src/action/post.ts';
import { s3Probe } from '../src/s3/ready.ts';
import { actionInputs, stepDeps } from './fixtures.ts';
import { assertNoLeaks } from './leaks.ts';
import {
  PASSWORD,
  type Peers,
  peerInputs,
  startPeers,
  TranscriptRunner,
  USER,
} from './s3-peers.ts';

let peers: Peers;
let runnerTemp: string;

before(async () => {
  peers = await startPeers();
  runnerTemp = await mkdtemp(join(tmpdir(), 'cdse-s3-action-'));
});
beforeEach(() => {
  peers.keys.resetCounts();
  peers.keys.maxKeysPerUser = 30;
  peers.keys.propagationMs = 0;
  for (const key of peers.keys.keys(USER)) key.deleted = true;
});
after(async () => {
  await peers.close();
  await rm(runnerTemp, { recursive: true, force: true });
});

const env = () => ({ RUNNER_TEMP: runnerTemp, GITHUB_ACTIONS: 'true', RUNNER_DEBUG: '1' });

/** main, then post with what main saved, as one job. */
async function job(inputs: Record<string, string>, between?: (main: TranscriptRunner) => unknown) {
  const given = await actionInputs(peerInputs(peers, inputs));
  const main = new TranscriptRunner(given);
  const started = performance.now();
  await runMain(stepDeps(main, env()));
  const mainMs = performance.now() - started;
  await between?.(main);
  const post = new TranscriptRunner(given, { ...main.state });
  await runPost(stepDeps(post, env()));
  return { main, post, mainMs };
}

describe('s3: true with the cache off', () => {
  test('main creates one pair and hands it out by value; post deletes it; nothing leaks', async () => {
    let live = 0;
    const { main, post } = await job({ s3: 'true' }, () => {
      live = peers.keys.keys(USER).length;
    });
    assert.equal(main.failed, false, main.transcript.join('\n'));
    assert.equal(live, 1, 'the pair lived while the job ran');
    const [created] = peers.keys.allKeys().filter((k) => k.user === USER && k.deleted);
    assert.ok(created, 'the post step deleted the pair');
    assert.deepEqual(peers.keys.counts, { create: 1, list: 0, delete: 1, other: 0, total: 2 });

    const host = new URL(peers.s3.endpoint).host;
    assert.deepEqual(main.exported, {
      ...main.exported,
      AWS_ACCESS_KEY_ID: created.accessId,
      AWS_SECRET_ACCESS_KEY: created.secret,
      AWS_ENDPOINT_URL_S3: peers.s3.endpoint,
      AWS_REGION: 'default',
      AWS_S3_ENDPOINT: host,
      AWS_VIRTUAL_HOSTING: 'FALSE',
      AWS_HTTPS: 'NO', // http only because the peer is on loopback
    });
    assert.equal(main.outputs['s3-access-key-id'], created.accessId);
    assert.equal(main.outputs['s3-secret-access-key'], created.secret);
    assert.equal(main.outputs['s3-endpoint'], peers.s3.endpoint);
    // Masked before anything could print them.
    assert.ok(main.secrets.includes(created.secret) && main.secrets.includes(created.accessId));
    const state = JSON.stringify(main.state);
    assert.ok(!state.includes(created.secret) && !state.includes(created.accessId));
    assert.ok(post.said('info').some((l) => /Deleted the S3 key pair/.test(l)));
    assertNoLeaks(
      [main.transcript.join('\n'), post.transcript.join('\n')],
      main.summary + post.summary,
      [created.secret, created.accessId, PASSWORD],
      { state: [state] },
    );
  });

  test('s3: false makes no request to the keys manager', async () => {
    const { main, post } = await job({ s3: 'false' });
    assert.equal(main.failed, false);
    assert.equal(peers.keys.counts.total, 0);
    assert.equal(main.outputs['s3-access-key-id'], undefined);
    assert.equal(main.exported.AWS_ACCESS_KEY_ID, undefined);
    assert.deepEqual(post.said('warning'), []);
  });

  test('export-env false: outputs only, no AWS variables', async () => {
    const { main } = await job({ s3: 'true', 'export-env': 'false' });
    assert.ok(main.outputs['s3-secret-access-key']);
    assert.deepEqual(Object.keys(main.exported), []);
  });

  test('the cap: one error line with the count and the commands; the job fails; no key made', async () => {
    peers.keys.maxKeysPerUser = 3;
    for (let i = 0; i < 3; i++) peers.keys.addKey(USER);
    const { main, post } = await job({ s3: 'true' });
    assert.equal(main.failed, true);
    const errors = main.said('error');
    assert.equal(errors.length, 1, errors.join('\n'));
    const [line] = errors as [string];
    assert.doesNotMatch(line, /[\r\n]/);
    assert.match(line, /3 exist/);
    assert.match(line, /`cdse-auth s3 list`/);
    assert.match(line, /`cdse-auth s3 delete ID`/);
    assert.equal(peers.keys.keys(USER).length, 3, 'no key was created');
    assert.equal(peers.keys.counts.delete, 0, 'the post step deletes nothing it did not create');
    assert.deepEqual(post.said('warning'), []);
  });

  test('propagation: main waits for S3 to know the pair by probing, not by a fixed sleep', async () => {
    const delay = 1_200;
    peers.keys.propagationMs = delay;
    const seen = peers.s3.requests.length;
    let firstUse = 0;
    const { main, mainMs } = await job({ s3: 'true' }, async (m) => {
      const probe = s3Probe({
        accessKeyId: m.outputs['s3-access-key-id'] as string,
        secretAccessKey: m.outputs['s3-secret-access-key'] as string,
        endpoint: peers.s3.endpoint,
      });
      firstUse = (await probe()).status;
    });
    assert.equal(main.failed, false);
    assert.deepEqual(main.said('warning'), []);
    assert.equal(firstUse, 200, 'the first use after main succeeds');
    const probes = peers.s3.requests.slice(seen, -1);
    assert.ok(probes.length >= 2, `${probes.length} probes`);
    assert.ok(probes.slice(0, -1).every((r) => r.code === 'InvalidAccessKeyId'));
    assert.equal(probes.at(-1)?.status, 200);
    // The wait follows the delay: longer than it, shorter than it plus one backoff step (2 s).
    assert.ok(mainMs >= delay && mainMs < delay + 2_500, `main took ${Math.round(mainMs)} ms`);
  });

  test('a pair that never becomes usable: one warning, the job goes on', async () => {
    peers.keys.propagationMs = 60_000;
    const { main } = await job({ s3: 'true', timeout: '1' });
    assert.equal(main.failed, false);
    const warnings = main.said('warning');
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0] as string, /not accepted .* InvalidAccessKeyId/);
  });

  test('a failed deletion is one warning, never a failed post step', async () => {
    const { post } = await job({ s3: 'true', 'max-attempts': '1' }, () =>
      peers.keys.inject({ kind: 'status', status: 503, on: 'delete' }),
    );
    const warnings = post.said('warning');
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0] as string, /could not delete the S3 key pair.*cdse-auth s3 delete/);
    assert.equal(post.failed, false);
  });

  for (const [input, value, said] of [
    ['s3-keys-url', 'http://keys.example.com/api/user/credentials', /https/],
    ['s3-endpoint', 'https://eodata.example.com/eodata', /without a path/],
    ['s3-endpoint', 'not a url', /not a valid URL/],
  ] as const) {
    test(`${input} ${value}: one error naming the input, nothing sent`, async () => {
      const { main } = await job({ s3: 'true', [input]: value });
      assert.equal(main.failed, true);
      assert.match(main.said('error').join('\n'), new RegExp(`Input ${input}:`));
      assert.match(main.said('error').join('\n'), said);
      assert.equal(peers.keys.counts.total, 0);
    });
  }
});
