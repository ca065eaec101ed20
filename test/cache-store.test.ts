// ActionsCacheTokenStore.load() in process against the emulator: every call looks up the newest
// entry afresh, the other compression's version is found too, a hostile archive is one warning,
// and a restore writes nothing to disk.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import { cacheService, cacheVersion, compressionOrder } from '../src/action/cache-service.ts';
import { ActionsCacheTokenStore, ENTRY_PATH } from '../src/action/cache-store.ts';
import { seal } from '../src/action/seal.ts';
import { gzip, type TarMember, tar, zstd } from './archives.ts';
import { RecordingRunner } from './fixtures.ts';
import { CacheServer } from './servers/cache-server.ts';

const KEY = randomBytes(32);
const IDENTITY = 'cdse-auth cache v1\nhttps://idp.test/token\ncdse-public\nuser:alice';
const PREFIX = 'cdse-auth-0123456789abcdef01234567-';

let server: CacheServer;
let workspace = '';
let recorder = new RecordingRunner();
const warnings = () => recorder.said('warning');

before(async () => {
  server = await CacheServer.start();
});
beforeEach(() => {
  server.clear();
  server.setFault(undefined);
  recorder = new RecordingRunner();
  workspace = mkdtempSync(join(tmpdir(), 'cdse-store-'));
});
afterEach(() => rmSync(workspace, { recursive: true, force: true }));
after(async () => {
  await server.close();
});

function store(protocol: 'v1' | 'v2' = 'v2', timeoutMs = 5_000) {
  return new ActionsCacheTokenStore({
    service: cacheService(server.env(protocol)) as NonNullable<ReturnType<typeof cacheService>>,
    prefix: PREFIX,
    key: KEY,
    identity: IDENTITY,
    workspace,
    timeoutMs,
    read: true,
    write: false,
    runner: recorder,
    env: { PATH: process.env.PATH ?? '' },
  });
}

function sealedMember(accessToken: string): TarMember {
  const tokenSet = { accessToken, tokenType: 'Bearer', expiresAt: new Date(Date.now() + 3600e3) };
  return { name: ENTRY_PATH, data: seal(Buffer.from(JSON.stringify({ tokenSet })), KEY, IDENTITY) };
}

const [preferred, other] = compressionOrder();
const version = (method = preferred) => cacheVersion([ENTRY_PATH], method ?? 'gzip');

for (const protocol of ['v2', 'v1'] as const) {
  test(`every load() looks up the newest entry afresh (${protocol})`, async () => {
    const s = store(protocol);
    assert.equal(await s.load(), undefined);
    server.plant(`${PREFIX}1`, zstd(tar([sealedMember('token-one')])), version(), Date.now() - 10);
    assert.equal((await s.load())?.accessToken, 'token-one');
    assert.equal(s.matchedKey, `${PREFIX}1`);
    server.plant(`${PREFIX}2`, gzip(tar([sealedMember('token-two')])), version());
    assert.equal((await s.load())?.accessToken, 'token-two');
    assert.equal(s.matchedKey, `${PREFIX}2`);
    assert.deepEqual(warnings(), []);
    assert.deepEqual(readdirSync(workspace), [], 'a restore writes nothing');
  });
}

test('an entry saved with the other compression is found second', async () => {
  server.plant(`${PREFIX}1`, gzip(tar([sealedMember('other')])), version(other));
  assert.equal((await store().load())?.accessToken, 'other');
  const versions = server.requests.filter((r) => r.api === 'GetCacheEntryDownloadURL').length;
  assert.equal(versions, 2);
});

test('a hostile archive: one warning, no token set, nothing on disk', async () => {
  const hostile = tar([sealedMember('x'), { name: join(workspace, 'pwned'), data: 'x' }]);
  server.plant(`${PREFIX}1`, zstd(hostile), version());
  const s = store();
  assert.equal(await s.load(), undefined);
  assert.equal(s.matchedKey, undefined);
  assert.equal(warnings().length, 1);
  assert.match(warnings()[0] ?? '', /not one cdse-auth wrote \(more than one member\)/);
  assert.doesNotMatch(warnings()[0] ?? '', /cdse-auth-0123/);
  assert.deepEqual(readdirSync(workspace), []);
});

test('an entry sealed with another key: the "does not open" warning', async () => {
  const member = { name: ENTRY_PATH, data: seal(Buffer.from('{}'), randomBytes(32), IDENTITY) };
  server.plant(`${PREFIX}1`, zstd(tar([member])), version());
  assert.equal(await store().load(), undefined);
  assert.equal(warnings().length, 1);
  assert.match(warnings()[0] ?? '', /does not open with this job/);
});

test('a slow service is abandoned after timeoutMs with one warning', async () => {
  server.setFault({ kind: 'slow', ms: 10_000 });
  const started = performance.now();
  assert.equal(await store('v2', 400).load(), undefined);
  assert.ok(performance.now() - started < 2_000);
  assert.equal(warnings().length, 1);
  assert.match(warnings()[0] ?? '', /did not answer the restore within 0.4 s/);
});

test('a failing service: one warning naming no URL or key', async () => {
  server.setFault({ kind: 'status', status: 500 });
  assert.equal(await store('v1').load(), undefined);
  assert.deepEqual(warnings(), [
    'The Actions cache restore failed (cache lookup answered 500); going on without it.',
  ]);
  server.setFault({ kind: 'reset' });
  recorder = new RecordingRunner();
  assert.equal(await store('v2').load(), undefined);
  assert.equal(warnings().length, 1);
  assert.doesNotMatch(warnings()[0] ?? '', /127\.0\.0\.1|twirp|cdse-auth-/);
});
