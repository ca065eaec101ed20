// Waiting for a new key to propagate: the wait must follow the actual delay (counted on a fake
// clock through the probes), not a fixed sleep, and stay bounded.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createKeyPair } from '../src/s3/keys.ts';
import { type ProbeAnswer, s3Probe, waitUntilUsable } from '../src/s3/ready.ts';
import { passwordLogin, tokensOf } from './fixtures.ts';
import { IdentityServer } from './servers/identity-server.ts';
import { S3KeysServer } from './servers/s3-keys-server.ts';
import { S3Server } from './servers/s3-server.ts';

let identity: IdentityServer;
let keys: S3KeysServer;
let s3: S3Server;
let token: string;
const clock = { ms: 0 };
const fake = {
  now: () => clock.ms,
  sleep: async (ms: number) => {
    clock.ms += ms;
  },
};

before(async () => {
  identity = await IdentityServer.start({ users: [{ username: 'alice', password: 'pw-alice' }] });
  keys = await S3KeysServer.start({
    authorize: (token) => identity.userOf(token),
    now: () => clock.ms,
  });
  // The S3 peer checks request dates on the real clock; only propagation runs on the fake one.
  s3 = await S3Server.start({ secretOf: (id) => keys.secretOf(id) });
  token = String((await tokensOf(passwordLogin(identity, 'alice', 'pw-alice'))).access_token);
});

beforeEach(() => {
  clock.ms = Date.UTC(2025, 0, 1);
});

after(async () => {
  await s3?.close();
  await keys?.close();
  await identity?.close();
});

async function probeFor(propagationMs: number) {
  keys.propagationMs = propagationMs;
  const pair = await createKeyPair(keys.url, token);
  const probe = s3Probe({ ...pair, endpoint: s3.endpoint });
  const answers: ProbeAnswer[] = [];
  return {
    answers,
    probe: async () => {
      const answer = await probe();
      answers.push(answer);
      return answer;
    },
  };
}

describe('waitUntilUsable with the S3 peer', () => {
  for (const delayMs of [0, 1_000, 5_000, 12_000]) {
    test(`a propagation delay of ${delayMs} ms is waited for about that long`, async () => {
      const { probe, answers } = await probeFor(delayMs);
      const result = await waitUntilUsable(probe, fake);
      assert.equal(result.usable, true);
      assert.ok(result.waitedMs >= delayMs, `waited ${result.waitedMs}`);
      // Overshoot is at most one backoff step (2 s at most), never a fixed sleep.
      assert.ok(result.waitedMs < delayMs + 2_000, `waited ${result.waitedMs}`);
      assert.equal(result.probes, answers.length);
      assert.deepEqual(answers.at(-1), { status: 200 });
      for (const early of answers.slice(0, -1)) {
        assert.deepEqual(early, { status: 403, code: 'InvalidAccessKeyId' });
      }
      if (delayMs === 0) assert.equal(result.probes, 1);
      // Short steps first: a key that takes 1 s is found within a handful of probes.
      if (delayMs === 1_000) assert.ok(result.probes <= 5, `${result.probes} probes`);
      assert.ok(result.probes <= 3 + delayMs / 1_000, `${result.probes} probes`);
    });
  }

  test('a key that never propagates gives up at the deadline with the last answer', async () => {
    const { probe } = await probeFor(3_600_000);
    const result = await waitUntilUsable(probe, { ...fake, deadlineMs: 30_000 });
    assert.equal(result.usable, false);
    assert.equal(result.waitedMs, 30_000);
    assert.deepEqual(result.last, { status: 403, code: 'InvalidAccessKeyId' });
    assert.ok(result.probes < 25, `${result.probes} probes`);
  });

  test('network faults and 5xx are asked again', async () => {
    const { probe } = await probeFor(0);
    s3.inject({ kind: 'reset' }, { kind: 'status', status: 503, code: 'SlowDown' });
    const result = await waitUntilUsable(probe, fake);
    assert.equal(result.usable, true);
    assert.equal(result.probes, 3);
  });

  test('the probe signs with our SigV4 and is accepted by the peer', async () => {
    const { probe } = await probeFor(0);
    assert.deepEqual(await probe(), { status: 200 });
    assert.equal(s3.requests.at(-1)?.url, '/eodata?list-type=2&max-keys=0');
    assert.equal(s3.requests.at(-1)?.region, 'default');
  });

  test('a wrong secret is SignatureDoesNotMatch, not usable', async () => {
    keys.propagationMs = 0;
    const pair = await createKeyPair(keys.url, token);
    const probe = s3Probe({
      ...pair,
      secretAccessKey: `${pair.secretAccessKey.startsWith('A') ? 'B' : 'A'}${pair.secretAccessKey.slice(1)}`,
      endpoint: s3.endpoint,
    });
    const result = await waitUntilUsable(probe, { ...fake, deadlineMs: 1_000 });
    assert.equal(result.usable, false);
    assert.deepEqual(result.last, { status: 403, code: 'SignatureDoesNotMatch' });
  });
});
