// The sealed cache entry with an S3 pair beside the token set, restored in-process against the
// cache-service emulator: a valid pair comes back, a malformed one is dropped with one warning
// (the login stays usable), and an entry written before pairs existed stays valid.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { cacheService, cacheVersion } from '../src/action/cache-service.ts';
import { ActionsCacheTokenStore, ENTRY_PATH } from '../src/action/cache-store.ts';
import { seal } from '../src/action/seal.ts';
import { gzip, tar } from './archives.ts';
import { RecordingRunner } from './fixtures.ts';
import { CacheServer } from './servers/cache-server.ts';

const KEY = randomBytes(32);
const IDENTITY = 'cdse-auth cache v1\nhttps://idp.test/token\ncdse-public\nuser:alice';
const PREFIX = 'cdse-auth-s3entry0123456789abcdef-';
const tokenSet = {
  accessToken: 'access-1',
  tokenType: 'Bearer',
  expiresAt: new Date(Date.now() + 3600e3),
};
const pair = {
  accessKeyId: '0123456789abcdef0123456789abcdef',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  expiresAt: new Date(Date.now() + 86_400e3).toISOString(),
  keysUrl: 'https://s3-keys-manager.cloudferro.com/api/user/credentials',
};

let server: CacheServer;
let workspace = '';
let recorder = new RecordingRunner();

before(async () => {
  server = await CacheServer.start();
});
beforeEach(() => {
  server.clear();
  recorder = new RecordingRunner();
  workspace = mkdtempSync(join(tmpdir(), 'cdse-s3-entry-'));
});
after(async () => {
  rmSync(workspace, { recursive: true, force: true });
  await server.close();
});

function restore(entry: unknown) {
  const member = {
    name: ENTRY_PATH,
    data: seal(Buffer.from(JSON.stringify(entry)), KEY, IDENTITY),
  };
  server.plant(`${PREFIX}1`, gzip(tar([member])), cacheVersion([ENTRY_PATH], 'gzip'));
  return new ActionsCacheTokenStore({
    service: cacheService(server.env('v2')) as NonNullable<ReturnType<typeof cacheService>>,
    prefix: PREFIX,
    key: KEY,
    identity: IDENTITY,
    workspace,
    timeoutMs: 5_000,
    read: true,
    write: false,
    runner: recorder,
    env: { PATH: '' }, // no zstd on PATH: gzip entries only
  }).loadEntry();
}

test('an entry with a pair: token set and pair come back', async () => {
  const login = await restore({ tokenSet, s3: pair });
  assert.equal(login?.tokenSet.accessToken, 'access-1');
  assert.deepEqual(login?.s3, pair);
  assert.deepEqual(recorder.said('warning'), []);
});

test('an entry without a pair (older versions) stays valid', async () => {
  const login = await restore({ tokenSet });
  assert.equal(login?.tokenSet.accessToken, 'access-1');
  assert.equal(login?.s3, undefined);
});

for (const [what, bad] of [
  ['a secret that could break a shell line', { ...pair, secretAccessKey: "x'; id; '" }],
  ['an id with a newline', { ...pair, accessKeyId: 'abc\n::warning::x' }],
  ['a keys URL over http to a remote host', { ...pair, keysUrl: 'http://evil.example/keys' }],
  ['no secret', { accessKeyId: pair.accessKeyId, keysUrl: pair.keysUrl }],
] as const) {
  test(`a malformed pair (${what}): dropped with one warning, the login is kept`, async () => {
    const login = await restore({ tokenSet, s3: bad });
    assert.equal(login?.tokenSet.accessToken, 'access-1');
    assert.equal(login?.s3, undefined);
    const warnings = recorder.said('warning');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /S3 key pair in the cached CDSE login: it is malformed/);
    assert.ok(!warnings[0]?.includes("x'; id"));
  });
}
