// extractSealedMember in process: what the real @actions/cache archives (zstd and gzip) gives
// back the sealed file; every hostile shape a planted entry could take is refused.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { extractSealedMember } from '../src/action/archive.ts';
import { cacheVersion } from '../src/action/cache-service.ts';
import { ENTRY_PATH } from '../src/action/cache-store.ts';
import { gzip, type TarMember, type TarOptions, tar, zstd } from './archives.ts';
import { CacheServer } from './servers/cache-server.ts';

const SEALED = Buffer.concat([Buffer.from('CDSEAUTH1'), randomBytes(300)]);
const good: TarMember = { name: ENTRY_PATH, data: SEALED };

function tampered(archive: Buffer, reason: RegExp): void {
  const result = extractSealedMember(archive, ENTRY_PATH);
  assert.ok(!Buffer.isBuffer(result), 'a hostile archive was accepted');
  assert.match(result.tampered, reason);
}

const both = (members: TarMember[], options?: TarOptions) => {
  const stream = tar(members, options);
  return [zstd(stream), gzip(stream)];
};

describe('well-formed archives', () => {
  test('one regular member, zstd and gzip', () => {
    for (const archive of both([good])) {
      assert.deepEqual(extractSealedMember(archive, ENTRY_PATH), SEALED);
    }
  });

  test('pax path, GNU long name and `./` spellings of the same path', () => {
    const cases: TarMember[][] = [
      [{ ...good, name: 'short', pax: { path: ENTRY_PATH, mtime: '1.5' } }],
      [{ ...good, name: 'short', longName: ENTRY_PATH }],
      [{ ...good, name: `./${ENTRY_PATH}` }],
    ];
    for (const members of cases) {
      assert.deepEqual(extractSealedMember(zstd(tar(members)), ENTRY_PATH), SEALED);
    }
    const global = tar([{ ...good, name: 'other' }], { global: { path: ENTRY_PATH } });
    assert.deepEqual(extractSealedMember(gzip(global), ENTRY_PATH), SEALED);
  });
});

describe('hostile archives', () => {
  const cases: Array<[string, Buffer[], RegExp]> = [
    ['an absolute-path member', both([{ name: '/tmp/pwned', data: 'x' }]), /absolute/],
    [
      'the sealed member plus an absolute path',
      both([good, { name: '/tmp/x', data: 'x' }]),
      /more than one/,
    ],
    ['a `../` member', both([{ name: `../${ENTRY_PATH}`, data: SEALED }]), /\.\./],
    ['a `..` inside the path', both([{ name: `.cdse-auth-cache/../../x`, data: 'x' }]), /\.\./],
    ['a pax path that is absolute', both([{ ...good, pax: { path: '/etc/x' } }]), /absolute/],
    ['a GNU long name with `..`', both([{ ...good, longName: '../../x' }]), /\.\./],
    [
      'a symlink named like the entry',
      both([{ name: ENTRY_PATH, type: '2', linkname: '/' }]),
      /symbolic link/,
    ],
    ['a hard link', both([{ name: ENTRY_PATH, type: '1', linkname: '/etc/passwd' }]), /hard link/],
    ['a character device', both([{ name: ENTRY_PATH, type: '3' }]), /character device/],
    ['a block device', both([{ name: ENTRY_PATH, type: '4' }]), /block device/],
    ['a FIFO', both([{ name: ENTRY_PATH, type: '6' }]), /FIFO/],
    ['a directory', both([{ name: '.cdse-auth-cache/', type: '5' }]), /directory/],
    ['an unknown type', both([{ ...good, type: 'Z' }]), /unknown type/],
    ['two members', both([good, { name: 'dist/post/index.js', data: 'evil()' }]), /more than one/],
    ['the entry twice', both([good, good]), /more than one/],
    ['another name', both([{ ...good, name: 'token.sealed' }]), /unexpected member/],
    ['a Windows path', both([{ ...good, name: 'C:/x' }]), /Windows/],
    ['no member', both([]), /no member/],
    ['a checksum mismatch', both([{ ...good, checksumDelta: 1 }]), /checksum/],
    ['a pax sparse file', both([{ ...good, pax: { 'GNU.sparse.size': '9' } }]), /sparse/],
    ['a malformed pax record', both([{ ...good, pax: { '': 'x' } }]), /pax/],
    ['a pax size past the end', both([{ ...good, pax: { size: '99999' } }]), /truncated/],
    ['no end marker', both([good], { endBlocks: 0, record: 512 }), /end marker/],
    ['one end block only', both([good], { endBlocks: 1, record: 512 }), /end marker/],
    [
      'data after the end marker',
      both([good], { record: 512, trailer: Buffer.alloc(512, 1) }),
      /after the end/,
    ],
    ['a tar stream cut mid-block', both([good], { trailer: Buffer.from('x') }), /truncated/],
  ];
  for (const [name, archives, reason] of cases) {
    test(name, () => {
      for (const archive of archives) tampered(archive, reason);
    });
  }

  test('a member cut short', () => {
    const stream = tar([{ ...good, data: randomBytes(4000) }], { endBlocks: 0, record: 512 });
    tampered(zstd(stream.subarray(0, 1024)), /truncated/);
  });

  test('a truncated zstd or gzip stream', () => {
    for (const archive of both([good])) tampered(archive.subarray(0, -6), /decompress/);
  });

  test('garbage, and garbage behind the right magic bytes', () => {
    tampered(randomBytes(2000), /not a zstd or gzip/);
    tampered(
      Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(100)]),
      /decompress/,
    );
    tampered(Buffer.concat([Buffer.from([0x1f, 0x8b]), randomBytes(100)]), /decompress/);
    tampered(tar([good]), /not a zstd or gzip/);
  });

  test('a decompression bomb (64 MiB of zeros) stops at 1 MiB', () => {
    const bomb = tar([{ ...good, data: Buffer.alloc(64 << 20) }]);
    const started = performance.now();
    for (const archive of [zstd(bomb), gzip(bomb)]) tampered(archive, /too many bytes/);
    assert.ok(performance.now() - started < 5_000);
  });

  test('an archive over 1 MiB is not even decompressed', () => {
    tampered(zstd(tar([{ ...good, data: randomBytes(1_100_000) }])), /too large/);
  });
});

// --- the archives the real library makes ------------------------------------------------------

describe('archives saved by the real @actions/cache', () => {
  let server: CacheServer;
  let root = '';
  const saved = process.env;
  const cwd = process.cwd();

  before(async () => {
    server = await CacheServer.start();
    root = mkdtempSync(join(tmpdir(), 'cdse-archive-test-'));
    // A PATH with tar and gzip but no zstd: the library falls back to gzip.
    mkdirSync(join(root, 'no-zstd'));
    for (const tool of ['tar', 'gzip'])
      symlinkSync(`/usr/bin/${tool}`, join(root, 'no-zstd', tool));
  });
  after(async () => {
    process.env = saved;
    process.chdir(cwd);
    await server.close();
    rmSync(root, { recursive: true, force: true });
  });

  for (const [label, withZstd] of [
    ['zstd', true],
    ['gzip', false],
  ] as const) {
    test(`${label}: the stored archive gives back the file; our version matches`, async (t) => {
      if (withZstd && !hasZstd()) return t.skip('zstd is not installed (Debian package zstd)');
      const workspace = join(root, `ws-${label}`);
      mkdirSync(join(workspace, '.cdse-auth-cache'), { recursive: true });
      mkdirSync(join(root, `temp-${label}`));
      writeFileSync(join(workspace, ENTRY_PATH), SEALED);
      process.env = {
        ...saved,
        ...server.env('v2'),
        GITHUB_WORKSPACE: workspace,
        RUNNER_TEMP: join(root, `temp-${label}`),
        PATH: withZstd ? '/usr/bin:/bin' : join(root, 'no-zstd'),
      };
      // The action runs with the workspace as its working folder; the library globs from there.
      process.chdir(workspace);
      server.clear();
      const cache = await import('@actions/cache');
      const id = await quietly(() => cache.saveCache([ENTRY_PATH], `cdse-auth-${label}-1`));
      assert.ok(id > 0, `save returned ${id}`);
      const [entry] = server.entries;
      assert.ok(entry);
      assert.equal(
        entry.version,
        cacheVersion([ENTRY_PATH], withZstd ? 'zstd-without-long' : 'gzip'),
      );
      const magic = withZstd ? [0x28, 0xb5, 0x2f, 0xfd] : [0x1f, 0x8b];
      assert.deepEqual([...entry.data.subarray(0, magic.length)], magic);
      assert.deepEqual(extractSealedMember(entry.data, ENTRY_PATH), SEALED);
    });
  }
});

function hasZstd(): boolean {
  try {
    return statSync('/usr/bin/zstd').isFile();
  } catch {
    return false;
  }
}

// The library reports through workflow commands on stdout; the test runner's stream is Buffers.
async function quietly<T>(run: () => Promise<T>): Promise<T> {
  const write = process.stdout.write;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk !== 'string') {
      return (write as (...args: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
    }
    (rest.find((arg) => typeof arg === 'function') as (() => void) | undefined)?.();
    return true;
  }) as typeof process.stdout.write;
  try {
    return await run();
  } finally {
    process.stdout.write = write;
  }
}
