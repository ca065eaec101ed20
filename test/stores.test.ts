import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { FileTokenStore, MemoryTokenStore, TokenSet } from '../src/auth/index.ts';

const sample = () =>
  new TokenSet({
    accessToken: 'access-abc',
    expiresAt: new Date(Date.now() + 600_000),
    refreshToken: 'refresh-def',
    refreshExpiresAt: new Date(Date.now() + 3_600_000),
    scope: 'openid',
  });

describe('TokenSet', () => {
  test('validity honours the skew; a missing refresh expiry means no known expiry', () => {
    const now = Date.now();
    const set = new TokenSet({
      accessToken: 'a',
      expiresAt: new Date(now + 60_000),
      refreshToken: 'r',
    });
    assert.equal(set.accessValid(0, now), true);
    assert.equal(set.accessValid(59, now), true);
    assert.equal(set.accessValid(60, now), false);
    assert.equal(set.refreshValid(10 ** 6, now), true);
    assert.equal(
      new TokenSet({ accessToken: 'a', expiresAt: new Date(now) }).refreshValid(),
      false,
    );
  });

  test('authorization header, JSON round trip, and no tokens in inspect output', () => {
    const set = sample();
    assert.equal(set.authorizationHeader, 'Bearer access-abc');
    assert.equal(
      new TokenSet({ ...set.toJSON(), tokenType: 'bearer' }).authorizationHeader,
      'Bearer access-abc',
    );
    const copy = TokenSet.from(JSON.parse(JSON.stringify(set)));
    assert.deepEqual(copy?.toJSON(), set.toJSON());
    assert.doesNotMatch(inspect(set), /access-abc|refresh-def/);
    assert.equal(TokenSet.from({ accessToken: '', expiresAt: 'soon' }), undefined);
  });
});

describe('MemoryTokenStore', () => {
  test('keeps one token set', async () => {
    const store = new MemoryTokenStore();
    assert.equal(await store.load(), undefined);
    const set = sample();
    await store.save(set);
    assert.equal(await store.load(), set);
    await store.clear();
    assert.equal(await store.load(), undefined);
  });
});

describe('FileTokenStore', async () => {
  const root = await mkdtemp(join(tmpdir(), 'cdse-store-'));
  after(() => rm(root, { recursive: true, force: true }));

  test('creates the file 0600 in a new 0700 folder even under a permissive umask', async () => {
    const previous = process.umask(0o000);
    try {
      const path = join(root, 'fresh', 'nested', 'credentials.json');
      const store = new FileTokenStore(path);
      await store.save(sample());
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      assert.equal((await stat(join(root, 'fresh', 'nested'))).mode & 0o777, 0o700);
      assert.equal((await store.load())?.accessToken, 'access-abc');
    } finally {
      process.umask(previous);
    }
  });

  test('replaces an existing 0644 file with a 0600 one', async () => {
    const path = join(root, 'existing.json');
    await writeFile(path, 'old', { mode: 0o644 });
    await chmod(path, 0o644);
    await new FileTokenStore(path).save(sample());
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.match(await readFile(path, 'utf8'), /"version": 1/);
  });

  test('a corrupt, foreign or exposed file loads as empty with a warning', async () => {
    const cases: Array<[string, string, number]> = [
      ['corrupt.json', '{"version":1,', 0o600],
      ['foreign.json', '{"kind":"something else"}', 0o600],
      ['exposed.json', JSON.stringify({ version: 1, tokenSet: sample() }), 0o644],
    ];
    for (const [name, content, mode] of cases) {
      const path = join(root, name);
      await writeFile(path, content, { mode });
      await chmod(path, mode);
      const warnings: string[] = [];
      const store = new FileTokenStore(path, { onWarning: (m) => warnings.push(m) });
      assert.equal(await store.load(), undefined, name);
      assert.equal(warnings.length, 1, name);
      assert.doesNotMatch(warnings[0] ?? '', /access-abc/);
    }
  });

  test('a missing file is simply empty, and clear removes the file', async () => {
    const path = join(root, 'gone.json');
    const warnings: string[] = [];
    const store = new FileTokenStore(path, { onWarning: (m) => warnings.push(m) });
    assert.equal(await store.load(), undefined);
    await store.save(sample());
    await store.clear();
    await assert.rejects(stat(path), { code: 'ENOENT' });
    assert.deepEqual(warnings, []);
  });
});
