// The restore-side cache client against the emulator: protocol choice as @actions/cache makes
// it, lookups by prefix for v2 and v1, downloads without credentials and with a size cap.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { Agent } from 'undici';
import {
  CacheServiceError,
  cacheService,
  cacheVersion,
  compressionOrder,
  downloadArchive,
  findEntry,
  type RequestContext,
  validKeys,
} from '../src/action/cache-service.ts';
import { CacheServer } from './servers/cache-server.ts';

let server: CacheServer;
const dispatcher = new Agent();
const context = (ms = 5_000): RequestContext => ({ dispatcher, signal: AbortSignal.timeout(ms) });

before(async () => {
  server = await CacheServer.start();
});
beforeEach(() => {
  server.clear();
  server.setFault(undefined);
});
after(async () => {
  await dispatcher.close();
  await server.close();
});

test('protocol and URL are chosen as @actions/cache 6 chooses them', () => {
  const base = { ACTIONS_RESULTS_URL: 'https://results/', ACTIONS_CACHE_URL: 'https://cache/' };
  const cases: Array<[Record<string, string>, string | undefined]> = [
    [{ ...base, ACTIONS_CACHE_SERVICE_V2: 'true' }, 'v2 https://results/'],
    [{ ...base, ACTIONS_CACHE_SERVICE_V2: '' }, 'v1 https://cache/'],
    [{ ...base }, 'v1 https://cache/'],
    [
      { ...base, ACTIONS_CACHE_SERVICE_V2: '1', GITHUB_SERVER_URL: 'https://ghes.corp' },
      'v1 https://cache/',
    ],
    [
      { ...base, ACTIONS_CACHE_SERVICE_V2: '1', GITHUB_SERVER_URL: 'https://x.ghe.com' },
      'v2 https://results/',
    ],
    [
      { ...base, ACTIONS_CACHE_SERVICE_V2: '1', GITHUB_SERVER_URL: 'http://a.localhost' },
      'v2 https://results/',
    ],
    [{ ACTIONS_CACHE_SERVICE_V2: '1', ACTIONS_CACHE_URL: 'https://cache/' }, undefined],
    [{ ACTIONS_RESULTS_URL: 'https://results/' }, undefined],
  ];
  for (const [env, expected] of cases) {
    const service = cacheService(env);
    assert.equal(service && `${service.protocol} ${service.url}`, expected, JSON.stringify(env));
  }
});

test('the version hash and key rules', () => {
  // sha256('.cdse-auth-cache/token.sealed|gzip|1.0'), as getCacheVersion computes it.
  const gzip = cacheVersion(['.cdse-auth-cache/token.sealed'], 'gzip', 'linux');
  assert.match(gzip, /^[0-9a-f]{64}$/);
  assert.notEqual(cacheVersion(['.cdse-auth-cache/token.sealed'], 'gzip', 'win32'), gzip);
  assert.notEqual(
    cacheVersion(['.cdse-auth-cache/token.sealed'], 'zstd-without-long', 'linux'),
    gzip,
  );
  assert.equal(validKeys(['a', 'b']), true);
  assert.equal(validKeys(['a,b']), false);
  assert.equal(validKeys(['x'.repeat(513)]), false);
  assert.equal(validKeys(Array.from({ length: 11 }, () => 'k')), false);
});

test('zstd first only when an executable zstd is on PATH', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cdse-zstd-'));
  try {
    assert.deepEqual(compressionOrder({ PATH: dir }), ['gzip', 'zstd-without-long']);
    writeFileSync(join(dir, 'zstd'), '#!/bin/sh\n', { mode: 0o644 });
    assert.deepEqual(compressionOrder({ PATH: dir }), ['gzip', 'zstd-without-long']);
    chmodSync(join(dir, 'zstd'), 0o755);
    assert.deepEqual(compressionOrder({ PATH: `/nowhere:${dir}` }), ['zstd-without-long', 'gzip']);
    rmSync(join(dir, 'zstd'));
    mkdirSync(join(dir, 'zstd'));
    assert.deepEqual(compressionOrder({ PATH: dir }), ['gzip', 'zstd-without-long']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const protocol of ['v2', 'v1'] as const) {
  describe(`lookup and download (${protocol})`, () => {
    const service = () =>
      cacheService(server.env(protocol)) as NonNullable<ReturnType<typeof cacheService>>;

    test('the newest entry under the prefix, with its key; a miss is undefined', async () => {
      server.plant('cdse-auth-p-1', Buffer.from('old'), 'V', Date.now() - 1000);
      server.plant('cdse-auth-p-2', Buffer.from('new'), 'V');
      server.plant('cdse-auth-p-3', Buffer.from('other version'), 'W', Date.now() + 1000);
      const found = await findEntry(service(), 'cdse-auth-p-', ['cdse-auth-p-'], 'V', context());
      assert.equal(found?.key, 'cdse-auth-p-2');
      const archive = await downloadArchive(found?.archiveUrl ?? '', 1 << 20, context());
      assert.equal(archive?.toString(), 'new');
      assert.equal(await findEntry(service(), 'nothing-', [], 'V', context()), undefined);
      const [lookup, download] = server.requests;
      assert.equal(lookup?.authorized, true, 'the service gets the runtime token');
      assert.equal(download?.api, 'blob:get');
      assert.equal(download?.authorized, false, 'the signed URL gets no Authorization header');
    });

    test('a download over the cap is refused without reading it all', async () => {
      server.plant('cdse-auth-big-1', Buffer.from('x'), 'V');
      server.setFault({ kind: 'blob-huge', bytes: 32 << 20 });
      const found = await findEntry(service(), 'cdse-auth-big-', [], 'V', context());
      assert.equal(await downloadArchive(found?.archiveUrl ?? '', 1 << 20, context()), undefined);
    });

    test('faults throw CacheServiceError or a network error, never hang', async () => {
      server.setFault({ kind: 'status', status: 503 });
      await assert.rejects(findEntry(service(), 'k', [], 'V', context()), CacheServiceError);
      server.setFault({ kind: 'garbage' });
      await assert.rejects(findEntry(service(), 'k', [], 'V', context()), /not JSON|unexpected/);
      server.setFault({ kind: 'slow', ms: 10_000 });
      const started = performance.now();
      await assert.rejects(findEntry(service(), 'k', [], 'V', context(300)));
      assert.ok(performance.now() - started < 2_000);
      server.setFault(undefined);
      const noToken = { ...service(), token: '' };
      await assert.rejects(findEntry(noToken, 'k', [], 'V', context()), /ACTIONS_RUNTIME_TOKEN/);
      await assert.rejects(findEntry(service(), 'a,b', [], 'V', context()), /not valid/);
      await assert.rejects(downloadArchive('file:///etc/passwd', 1 << 20, context()), /http/);
    });
  });
}
