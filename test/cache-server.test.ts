// Runs the real @actions/cache against the emulator in test/servers/cache-server.ts, for both
// protocols, to pin down the library behaviour the action relies on.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import * as cache from '@actions/cache';
import { BlockBlobClient } from '@azure/storage-blob';
import { CacheServer } from './servers/cache-server.ts';

const TWIRP = '/twirp/github.actions.results.api.v1.CacheService/';

// @actions/cache reads process.env at call time, so each test sets and restores it.
function setEnv(vars: Record<string, string>): () => void {
  const saved = new Map<string, string | undefined>();
  for (const [name, value] of Object.entries(vars)) {
    saved.set(name, process.env[name]);
    process.env[name] = value;
  }
  return () => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

// The library reports through @actions/core workflow commands on stdout (strings). The test
// runner's own child-process stream is made of Buffers, so only strings are swallowed.
async function quietly<T>(
  run: () => Promise<T>,
): Promise<{ value: T; output: string; ms: number }> {
  const write = process.stdout.write;
  const captured: string[] = [];
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string') {
      captured.push(chunk);
      const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }
    return (write as (...args: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
  }) as typeof process.stdout.write;
  const start = performance.now();
  try {
    const value = await run();
    return { value, output: captured.join(''), ms: Math.round(performance.now() - start) };
  } finally {
    process.stdout.write = write;
  }
}

for (const protocol of ['v2', 'v1'] as const) {
  describe(`@actions/cache (${protocol}) against CacheServer`, () => {
    let server: CacheServer;
    let root = '';
    let dir = '';
    let restoreEnv: () => void = () => {};

    before(async () => {
      server = await CacheServer.start();
    });
    after(async () => {
      await server.close();
    });
    beforeEach(() => {
      server.clear();
      server.setFault(undefined);
      root = mkdtempSync(join(tmpdir(), 'cdse-cache-test-'));
      mkdirSync(join(root, 'workspace'));
      mkdirSync(join(root, 'runner-temp'));
      // A fixed path under RUNNER_TEMP, as the action uses: the same string for save and restore.
      dir = join(root, 'runner-temp', 'cdse-auth');
      restoreEnv = setEnv({
        ...server.env(protocol),
        RUNNER_TEMP: join(root, 'runner-temp'),
        GITHUB_WORKSPACE: join(root, 'workspace'),
      });
    });
    afterEach(() => {
      restoreEnv();
      rmSync(root, { recursive: true, force: true });
    });

    async function save(key: string, content: Buffer | string) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'tokens.bin'), content);
      return quietly(() => cache.saveCache([dir], key));
    }

    async function restore(key: string, restoreKeys?: string[]) {
      rmSync(dir, { recursive: true, force: true });
      const result = await quietly(() => cache.restoreCache([dir], key, restoreKeys));
      let content: Buffer | undefined;
      try {
        content = readFileSync(join(dir, 'tokens.bin'));
      } catch {
        content = undefined;
      }
      return { ...result, content };
    }

    const apis = () => server.requests.map((r) => `${r.api} ${r.status}`);

    test('isFeatureAvailable() is true with server.env()', () => {
      assert.equal(cache.isFeatureAvailable(), true);
    });

    test('save then restore into the same path gives back the same bytes', async (t) => {
      const bytes = randomBytes(4096);
      const saved = await save('cdse-auth-rt-1', bytes);
      assert.ok(saved.value > 0, `save returned ${saved.value}`);
      assert.equal(server.entries.length, 1);
      assert.equal(server.entries[0]?.key, 'cdse-auth-rt-1');
      assert.match(server.entries[0]?.version ?? '', /^[0-9a-f]{64}$/);

      const restored = await restore('cdse-auth-rt-1');
      assert.equal(restored.value, 'cdse-auth-rt-1');
      assert.deepEqual(restored.content, bytes);
      assert.deepEqual(
        apis(),
        protocol === 'v2'
          ? [
              'CreateCacheEntry 200',
              'blob:put 201',
              'FinalizeCacheEntryUpload 200',
              'GetCacheEntryDownloadURL 200',
              'blob:get 200',
            ]
          : ['v1:reserve 201', 'v1:upload 204', 'v1:commit 204', 'v1:get 200', 'blob:get 200'],
      );
      t.diagnostic(`${protocol} save ${saved.ms} ms, restore ${restored.ms} ms`);
    });

    test('restore by prefix returns the newest entry', async () => {
      assert.ok((await save('cdse-auth-pfx-1', 'old')).value > 0);
      assert.ok((await save('cdse-auth-pfx-2', 'new')).value > 0);
      const byPrefix = await restore('cdse-auth-pfx-');
      assert.equal(byPrefix.value, 'cdse-auth-pfx-2');
      assert.equal(byPrefix.content?.toString(), 'new');
      const byRestoreKey = await restore('cdse-auth-other', ['cdse-auth-pfx-']);
      assert.equal(byRestoreKey.value, 'cdse-auth-pfx-2');
    });

    test('an exact match beats a newer prefix match, and the primary key also matches by prefix', async () => {
      assert.ok((await save('cdse-auth-k-1', 'one')).value > 0);
      assert.ok((await save('cdse-auth-k-10', 'ten')).value > 0);
      const exact = await restore('cdse-auth-k-1');
      assert.equal(exact.value, 'cdse-auth-k-1');
      assert.equal(exact.content?.toString(), 'one');
      server.entries.splice(0, 1);
      // Callers must compare the returned key with the primary key to tell an exact hit.
      const prefixed = await restore('cdse-auth-k-1');
      assert.equal(prefixed.value, 'cdse-auth-k-10');
      assert.equal(prefixed.content?.toString(), 'ten');
    });

    test('restore keys are tried in order after the primary key', async () => {
      assert.ok((await save('cdse-auth-a-1', 'a')).value > 0);
      assert.ok((await save('cdse-auth-b-1', 'b')).value > 0);
      const hit = await restore('cdse-auth-miss', ['cdse-auth-a-', 'cdse-auth-b-']);
      assert.equal(hit.value, 'cdse-auth-a-1');
      assert.equal(hit.content?.toString(), 'a');
    });

    test('saving an existing key returns -1 and keeps the first entry', async () => {
      assert.ok((await save('cdse-auth-dup', 'first')).value > 0);
      const second = await save('cdse-auth-dup', 'second');
      assert.equal(second.value, -1);
      assert.equal(server.entries.length, 1);
      assert.ok(apis().includes(protocol === 'v2' ? 'CreateCacheEntry 409' : 'v1:reserve 409'));
      assert.equal((await restore('cdse-auth-dup')).content?.toString(), 'first');
    });

    test('a miss returns undefined, and so does a different path list (version)', async () => {
      assert.equal((await restore('cdse-auth-nothing')).value, undefined);
      assert.ok((await save('cdse-auth-ver', 'x')).value > 0);
      const other = join(root, 'runner-temp', 'elsewhere');
      const { value } = await quietly(() => cache.restoreCache([other], 'cdse-auth-ver'));
      assert.equal(value, undefined);
    });

    test('entries pushed into server.entries are served', async () => {
      assert.ok((await save('cdse-auth-seed-1', 'seeded')).value > 0);
      const [first] = server.entries;
      assert.ok(first);
      server.entries.push({ ...first, key: 'cdse-auth-seed-0', createdAt: first.createdAt - 1 });
      server.entries.splice(0, 1);
      const hit = await restore('cdse-auth-seed-');
      assert.equal(hit.value, 'cdse-auth-seed-0');
      assert.equal(hit.content?.toString(), 'seeded');
    });

    test('a wrong runtime token fails save and restore', async () => {
      assert.ok((await save('cdse-auth-auth', 'x')).value > 0);
      const undo = setEnv({ ACTIONS_RUNTIME_TOKEN: 'wrong' });
      try {
        assert.equal((await save('cdse-auth-auth-2', 'y')).value, -1);
        assert.equal((await restore('cdse-auth-auth')).value, undefined);
      } finally {
        undo();
      }
      assert.equal(server.requests.filter((r) => r.status === 401).length, 2);
    });

    test('a persistent 4xx fault fails fast: save -1, restore undefined', async (t) => {
      assert.ok((await save('cdse-auth-4xx', 'x')).value > 0);
      server.setFault({ kind: 'status', status: 403 });
      const saved = await save('cdse-auth-4xx-2', 'y');
      const restored = await restore('cdse-auth-4xx');
      assert.equal(saved.value, -1);
      assert.equal(restored.value, undefined);
      assert.ok(saved.ms < 5000 && restored.ms < 5000, `${saved.ms} / ${restored.ms} ms`);
      assert.match(saved.output, /::warning::|Failed to save/);
      t.diagnostic(`${protocol} 403: save ${saved.ms} ms, restore ${restored.ms} ms`);
    });

    if (protocol === 'v1') {
      test('v1: a 500 is not retried', async (t) => {
        server.setFault({ kind: 'status', status: 500 });
        const saved = await save('cdse-auth-500', 'x');
        const restored = await restore('cdse-auth-500');
        assert.equal(saved.value, -1);
        assert.equal(restored.value, undefined);
        assert.deepEqual(apis(), ['v1:reserve 500', 'v1:get 500']);
        t.diagnostic(`v1 500: save ${saved.ms} ms, restore ${restored.ms} ms`);
      });
    }

    if (protocol === 'v2') {
      // The library retries a failing service for ~30 s per call (documented in
      // shared/reference/actions-cache-protocol.md); the action bounds every cache operation
      // instead, which test/cache.test.ts shows ("cache faults never fail or stall the job").

      test('v2: block + blocklist upload through the Azure SDK', async () => {
        const token = process.env.ACTIONS_RUNTIME_TOKEN ?? '';
        const call = async (method: string, body: unknown) => {
          const res = await fetch(`${server.origin}${TWIRP}${method}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body: JSON.stringify(body),
          });
          assert.equal(res.status, 200);
          return (await res.json()) as Record<string, string>;
        };
        const created = await call('CreateCacheEntry', { key: 'blocks', version: 'v' });
        const blob = new BlockBlobClient(created.signed_upload_url ?? '');
        const ids = ['AAAA', 'AAAB'];
        await blob.stageBlock(ids[0] ?? '', Buffer.from('hello '), 6);
        await blob.stageBlock(ids[1] ?? '', Buffer.from('world'), 5);
        await blob.commitBlockList(ids);
        const done = await call('FinalizeCacheEntryUpload', {
          key: 'blocks',
          version: 'v',
          size_bytes: '11',
        });
        assert.equal(done.ok, true);
        assert.equal(server.entries[0]?.data.toString(), 'hello world');
        const found = await call('GetCacheEntryDownloadURL', { key: 'blo', version: 'v' });
        assert.equal(found.matched_key, 'blocks');
        const download = await fetch(found.signed_download_url ?? '');
        assert.equal(await download.text(), 'hello world');
        assert.equal(download.headers.get('content-length'), '11');
      });

      test('v2: errors are JSON, signed URLs are checked', async () => {
        const unauth = await fetch(`${server.origin}${TWIRP}CreateCacheEntry`, {
          method: 'POST',
          body: '{}',
        });
        assert.equal(unauth.status, 401);
        assert.equal(((await unauth.json()) as { code: string }).code, 'unauthenticated');
        const nowhere = await fetch(`${server.origin}/nowhere`);
        assert.equal(nowhere.status, 404);
        assert.ok(((await nowhere.json()) as { msg: string }).msg);
        const forged = await fetch(`${server.origin}/blob/cache/1?sp=r&sig=forged`);
        assert.equal(forged.status, 403);
      });
    }
  });
}
