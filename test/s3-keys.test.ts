import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { ConfigurationError } from '../src/auth/errors.ts';
import {
  createKeyPair,
  deleteKeyPair,
  type KeysOptions,
  listKeyPairs,
  S3KeyCapError,
  S3KeysError,
} from '../src/s3/keys.ts';
import { passwordLogin, tokensOf } from './fixtures.ts';
import { IdentityServer } from './servers/identity-server.ts';
import { CAP_DETAIL, S3KeysServer } from './servers/s3-keys-server.ts';

let identity: IdentityServer;
let keys: S3KeysServer;
let alice: string;
let bob: string;
let slept: number[];

async function login(username: string, password: string): Promise<string> {
  return String((await tokensOf(passwordLogin(identity, username, password))).access_token);
}

const options = (extra: KeysOptions = {}): KeysOptions => ({
  sleep: async (ms) => {
    slept.push(ms);
  },
  timeoutMs: 2_000,
  ...extra,
});

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof Error);
    return error;
  }
  assert.fail('expected a rejection');
}

/**
 * What may reach a log: one line, no runner command, none of the secrets. (A literal `%0A` on
 * one line is text: the runner decodes it only inside a command, and `::` cannot survive.)
 */
function assertSafe(message: string, ...secrets: string[]): void {
  assert.doesNotMatch(message, /[\r\n]/);
  assert.doesNotMatch(message, /::|##\[/);
  // A prefix too: a message cut at its length limit can keep the start of a secret.
  for (const secret of secrets) {
    assert.ok(!message.includes(secret.slice(0, 16)), 'a secret leaked');
  }
  assert.ok(message.length < 1000, `message of ${message.length} characters`);
}

before(async () => {
  identity = await IdentityServer.start({
    users: [
      { username: 'alice', password: 'pw-alice' },
      { username: 'bob', password: 'pw-bob' },
    ],
  });
  keys = await S3KeysServer.start({
    authorize: (token) => identity.userOf(token),
  });
  alice = await login('alice', 'pw-alice');
  bob = await login('bob', 'pw-bob');
});

beforeEach(() => {
  slept = [];
  keys.resetCounts();
  keys.maxKeysPerUser = 30;
  keys.listShape = 'array';
  for (const user of ['alice', 'bob']) {
    for (const key of keys.keys(user)) key.deleted = true;
  }
});

after(async () => {
  await keys?.close();
  await identity?.close();
});

describe('createKeyPair / listKeyPairs / deleteKeyPair', () => {
  test('creates, lists and deletes a pair; keys belong to the user, not the login', async () => {
    const pair = await createKeyPair(keys.url, alice, options());
    assert.match(pair.accessKeyId, /^[0-9a-f]{32}$/);
    assert.equal(keys.secretOf(pair.accessKeyId), pair.secretAccessKey);
    assert.ok(pair.expiresAt instanceof Date && pair.expiresAt.getTime() > Date.now());
    assert.equal(keys.requests[0]?.headers.authorization, `Bearer ${alice}`);

    // A second login of the same user sees the pair.
    const again = await login('alice', 'pw-alice');
    const listed = await listKeyPairs(keys.url, again, options());
    assert.deepEqual(
      listed.map((k) => [k.accessKeyId, k.enabled]),
      [[pair.accessKeyId, true]],
    );
    assert.ok(listed[0]?.expiresAt instanceof Date);
    assert.ok(!JSON.stringify(listed).includes(pair.secretAccessKey));

    assert.equal(await deleteKeyPair(keys.url, again, pair.accessKeyId, options()), true);
    assert.equal(keys.secretOf(pair.accessKeyId), undefined);
    assert.deepEqual(await listKeyPairs(keys.url, alice, options()), []);
    // Gone already: not an error, but reported.
    assert.equal(await deleteKeyPair(keys.url, alice, pair.accessKeyId, options()), false);
  });

  test("another user's key is not deleted", async () => {
    const pair = await createKeyPair(keys.url, alice, options());
    assert.equal(await deleteKeyPair(keys.url, bob, pair.accessKeyId, options()), false);
    assert.equal(keys.secretOf(pair.accessKeyId), pair.secretAccessKey);
  });

  test('an id that is not an access key id is refused before anything is sent', async () => {
    for (const id of ['../../admin', 'a/b', 'a b', 'a%0Ab', '', 'x'.repeat(300)]) {
      const error = await rejection(deleteKeyPair(keys.url, alice, id, options()));
      assert.ok(error instanceof S3KeysError);
    }
    assert.equal(keys.counts.total, 0);
  });

  test('https is required except on loopback', async () => {
    for (const url of [
      'http://s3-keys.example/api/user/credentials',
      'ftp://127.0.0.1/x',
      'nope',
    ]) {
      const error = await rejection(createKeyPair(url, alice, options()));
      assert.ok(error instanceof ConfigurationError, error.message);
    }
  });

  test('the list may come wrapped in an object under one key', async () => {
    const pair = await createKeyPair(keys.url, alice, options());
    keys.listShape = { wrap: 'credentials' };
    const listed = await listKeyPairs(keys.url, alice, options());
    assert.deepEqual(
      listed.map((k) => k.accessKeyId),
      [pair.accessKeyId],
    );
  });

  test('list answers that are not a list of keys are one clear line, never a guess', async () => {
    for (const json of [
      { count: 1, results: [{ access_id: 'abc' }] },
      // Paginated: reading the first page as the whole list would hide keys.
      { results: [{ access_id: 'abc' }], next: '/api/user/credentials?page=2' },
      { credentials: { access_id: 'abc' } },
      'abc',
      null,
      [{ id: 'abc' }],
      [{ access_id: 'a\n::error::x' }],
    ]) {
      keys.inject({ kind: 'status', status: 200, json, on: 'list' });
      const error = await rejection(listKeyPairs(keys.url, alice, options()));
      assert.ok(error instanceof S3KeysError, error.message);
      assert.match(error.message, /^Could not list S3 key pairs/);
      assertSafe(error.message, alice, '::error');
    }
    keys.inject({
      kind: 'status',
      status: 200,
      json: { ['a\n::warning::'.repeat(50)]: 1, b: 2 },
      on: 'list',
    });
    const error = await rejection(listKeyPairs(keys.url, alice, options()));
    assertSafe(error.message, alice);
  });

  test('odd expiries are dropped or read, never fatal; extra fields are tolerated', async () => {
    keys.inject({ kind: 'tamper', set: { expiration_date: 'soon', extra: { nested: true } } });
    const odd = await createKeyPair(keys.url, alice, options());
    assert.equal(odd.expiresAt, undefined);
    keys.inject({ kind: 'tamper', set: { expiration_date: undefined, expires_at: 1_900_000_000 } });
    const epoch = await createKeyPair(keys.url, alice, options());
    assert.equal(epoch.expiresAt?.toISOString(), new Date(1_900_000_000_000).toISOString());
  });
});

describe('the cap and refusals', () => {
  test(`403 "${CAP_DETAIL}" is an S3KeyCapError that counts the keys and says what to do`, async () => {
    keys.maxKeysPerUser = 2;
    await createKeyPair(keys.url, alice, options());
    await createKeyPair(keys.url, alice, options());
    const error = await rejection(createKeyPair(keys.url, alice, options()));
    assert.ok(error instanceof S3KeyCapError);
    assert.equal(error.keyCount, 2);
    assert.equal(error.status, 403);
    assert.match(error.message, /maximum number of key pairs is reached \(2 exist\)/);
    assert.match(error.message, /cdse-auth s3 list/);
    assert.match(error.message, /cdse-auth s3 delete/);
    assert.ok(error.hint);
    assertSafe(error.message, alice);
    assert.equal(keys.counts.create, 3, 'a cap answer is not retried');
  });

  test('the cap error stands even when the keys cannot be listed', async () => {
    keys.maxKeysPerUser = 0;
    keys.inject({ kind: 'reset', on: 'list' });
    const error = await rejection(createKeyPair(keys.url, alice, options()));
    assert.ok(error instanceof S3KeyCapError);
    assert.equal(error.keyCount, undefined);
    assert.doesNotMatch(error.message, /exist\)/);
  });

  test('an invalid access token is a clear 401, without the token', async () => {
    const error = await rejection(createKeyPair(keys.url, 'not-a-token-at-all', options()));
    assert.ok(error instanceof S3KeysError);
    assert.ok(!(error instanceof S3KeyCapError));
    assert.equal(error.status, 401);
    assert.match(error.message, /HTTP 401/);
    assert.match(error.message, /access token was not accepted/);
    assertSafe(error.message, 'not-a-token-at-all');
    assert.equal(keys.counts.create, 1, 'a 401 is not retried');
  });

  test('another 403 is not mistaken for the cap', async () => {
    keys.inject({ kind: 'status', status: 403, json: { detail: 'Forbidden' } });
    const error = await rejection(createKeyPair(keys.url, alice, options()));
    assert.ok(error instanceof S3KeysError);
    assert.ok(!(error instanceof S3KeyCapError));
    assert.match(error.message, /HTTP 403 \(Forbidden\)/);
  });

  test('a hostile detail is redacted and made one harmless line', async () => {
    const details = [
      `bad token ${alice}\n::set-output name=x::${alice}`,
      `%0A::error::${encodeURIComponent(alice)}`,
      `##[error]${'x'.repeat(3 * 1024 * 1024)}`,
      ['a', { msg: `token ${alice}` }],
    ];
    for (const detail of details) {
      keys.inject({ kind: 'status', status: 400, json: { detail } });
      const error = await rejection(createKeyPair(keys.url, alice, options()));
      assert.ok(error instanceof S3KeysError);
      assertSafe(error.message, alice, encodeURIComponent(alice));
      assertSafe(error.errorDescription ?? '', alice);
    }
  });
});

describe('hostile create answers', () => {
  const hostile: Array<[string, Record<string, unknown>]> = [
    ['a newline in access_id', { access_id: 'AKIA\n::add-mask::x' }],
    ['a command in secret', { secret: 'abc::set-env name=X::1' }],
    ['a percent-encoded newline', { secret: 'abc%0A%3A%3Aerror' }],
    ['a ## command', { access_id: 'x##[error]y' }],
    ['a space', { secret: 'has space' }],
    ['a 100 kB access_id', { access_id: 'A'.repeat(100_000) }],
    ['a number', { access_id: 12345 }],
    ['no secret', { secret: undefined }],
    ['a slash in access_id', { access_id: 'a/b' }],
  ];
  for (const [name, set] of hostile) {
    test(`${name} is refused, naming the field only`, async () => {
      keys.inject({ kind: 'tamper', set });
      const error = await rejection(createKeyPair(keys.url, alice, options()));
      assert.ok(error instanceof S3KeysError, error.message);
      assert.match(error.message, /unusable answer \(bad or missing: (access_id|secret)\)/);
      assertSafe(error.message, alice);
      for (const value of Object.values(set)) {
        if (typeof value === 'string') assert.ok(!error.message.includes(value));
      }
    });
  }

  test('a body over 1 MiB is cut off, not buffered whole, and then is not JSON', async () => {
    keys.inject({ kind: 'tamper', set: { secret: 'A'.repeat(2 << 20) } });
    const error = await rejection(createKeyPair(keys.url, alice, options()));
    assert.match(error.message, /HTTP 200 with a body that is not JSON/);
  });

  test('a body that is not JSON is reported as such', async () => {
    keys.inject({ kind: 'garbage' });
    const error = await rejection(createKeyPair(keys.url, alice, options()));
    assert.match(error.message, /HTTP 200 with a body that is not JSON/);
    keys.inject({
      kind: 'status',
      status: 200,
      body: '<html>login</html>',
      contentType: 'text/html',
    });
    assert.match(
      (await rejection(createKeyPair(keys.url, alice, options()))).message,
      /an HTML page/,
    );
  });

  test('a secret with base64 characters is accepted as is', async () => {
    keys.inject({ kind: 'tamper', set: { secret: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY==' } });
    const pair = await createKeyPair(keys.url, alice, options());
    assert.equal(pair.secretAccessKey, 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY==');
  });
});

describe('faults and retries', () => {
  test('5xx and resets are retried with bounded backoff', async () => {
    keys.inject({ kind: 'status', status: 503, on: 'list' }, { kind: 'reset', on: 'list' });
    await listKeyPairs(keys.url, alice, options());
    assert.equal(keys.counts.list, 3);
    assert.equal(slept.length, 2);
    for (const ms of slept) assert.ok(ms > 0 && ms <= 8_000, `slept ${ms}`);
  });

  test('429 honours Retry-After', async () => {
    keys.inject({ kind: 'status', status: 429, retryAfter: '3', json: { detail: 'slow down' } });
    await createKeyPair(keys.url, alice, options());
    assert.deepEqual(slept, [3_000]);
  });

  test('a Retry-After beyond a minute is not waited for', async () => {
    keys.inject({ kind: 'status', status: 429, retryAfter: '3600', json: { detail: 'slow down' } });
    const error = await rejection(createKeyPair(keys.url, alice, options()));
    assert.match(error.message, /HTTP 429 \(slow down\); the server asks to retry after 3600 s/);
    assert.deepEqual(slept, []);
  });

  test('4xx other than 408/429 is never retried', async () => {
    keys.inject({ kind: 'status', status: 400, json: { detail: 'bad' } });
    await rejection(createKeyPair(keys.url, alice, options()));
    assert.equal(keys.counts.create, 1);
  });

  test('the attempt budget ends with one line naming the host', async () => {
    keys.inject(
      ...Array.from({ length: 3 }, () => ({ kind: 'reset' as const, on: 'list' as const })),
    );
    const error = await rejection(listKeyPairs(keys.url, alice, options({ maxAttempts: 3 })));
    assert.ok(error instanceof S3KeysError);
    assert.equal(error.attempts, 3);
    assert.match(
      error.message,
      /^S3 keys manager: Could not reach 127\.0\.0\.1:\d+: .* \(after 3 attempts\)\.$/,
    );
  });

  test('a slow answer times out and is retried', async () => {
    keys.inject({ kind: 'delay', ms: 1_000, on: 'list' });
    const listed = await listKeyPairs(keys.url, alice, options({ timeoutMs: 100 }));
    assert.deepEqual(listed, []);
    assert.equal(keys.counts.list, 2);
  });

  test('5xx past the budget reports the status and the attempts', async () => {
    keys.inject(...Array.from({ length: 2 }, () => ({ kind: 'status' as const, status: 502 })));
    const error = await rejection(
      deleteKeyPair(keys.url, alice, 'abc', options({ maxAttempts: 2 })),
    );
    assert.match(error.message, /HTTP 502 after 2 attempts/);
    assert.equal(error.constructor, S3KeysError);
  });
});
