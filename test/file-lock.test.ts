// withFileLock across real processes: children spawned with `process.execPath` import the source.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { FileLockTimeoutError, withFileLock } from '../src/auth/file-lock.ts';

const root = await mkdtemp(join(tmpdir(), 'cdse-lock-'));
after(() => rm(root, { recursive: true, force: true }));
let serial = 0;
/** A fresh directory (not yet created, so the lock must create it) and a file path in it. */
const fresh = () => join(root, `case-${++serial}`, 'credentials.json');

// `count`: one locked read-increment-write, failing if another holder is inside (marker file).
// `hold`: takes the lock, says so, and never lets go.
const WORKER = `
import { open, readFile, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
const [, , module, mode, target] = process.argv;
const { withFileLock } = await import(module);
if (mode === 'count') {
  await withFileLock(target, async () => {
    await (await open(target + '.holder', 'wx')).close();
    const n = Number(await readFile(target, 'utf8'));
    await sleep(5);
    await writeFile(target, String(n + 1));
    await unlink(target + '.holder');
  });
} else {
  await withFileLock(target, async () => {
    setInterval(() => {}, 60_000);
    process.stdout.write('locked\\n');
    await new Promise(() => {});
  });
}
`;
const workerPath = join(root, 'worker.mjs');
await writeFile(workerPath, WORKER);
const moduleUrl = pathToFileURL(join(import.meta.dirname, '../src/auth/file-lock.ts')).href;

function worker(mode: 'count' | 'hold', target: string): ChildProcess {
  return spawn(process.execPath, [workerPath, moduleUrl, mode, target], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function exitOf(child: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const [code] = await once(child, 'exit');
  return { code, stderr };
}

/** Holds the lock in this process until the returned `release` is called. */
async function holdInProcess(path: string, options = {}) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let entered!: () => void;
  const inside = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const done = withFileLock(
    path,
    async () => {
      entered();
      await gate;
    },
    options,
  );
  await inside;
  return { release, done };
}

describe('withFileLock', () => {
  test('runs work, returns its value, propagates its error, always releases', async () => {
    const path = fresh();
    assert.equal(await withFileLock(path, async () => 42), 42);
    await assert.rejects(
      withFileLock(path, async () => {
        const [entry] = await readdir(`${path}.lock`);
        if (process.platform !== 'win32') {
          assert.equal((await lstat(join(path, '..'))).mode & 0o777, 0o700);
          assert.equal((await lstat(`${path}.lock`)).mode & 0o777, 0o700);
          assert.equal((await lstat(join(`${path}.lock`, String(entry)))).mode & 0o777, 0o600);
        }
        const owner = JSON.parse(await readFile(join(`${path}.lock`, String(entry)), 'utf8'));
        assert.equal(owner.pid, process.pid);
        throw new Error('boom');
      }),
      /boom/,
    );
    await assert.rejects(lstat(`${path}.lock`), { code: 'ENOENT' });
  });

  test('16 processes racing to break a stale lock: mutual exclusion, no lost update', async () => {
    const path = fresh();
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, '0');
    // A stale lock (ancient, from another host) that all 16 find at once and race to break.
    const ancient = { pid: 1, hostname: 'elsewhere', createdAt: 0, nonce: 'ancient' };
    await mkdir(`${path}.lock`);
    await writeFile(join(`${path}.lock`, 'ancient.json'), JSON.stringify(ancient));
    const children = Array.from({ length: 16 }, () => exitOf(worker('count', path)));
    for (const { code, stderr } of await Promise.all(children)) assert.equal(code, 0, stderr);
    assert.equal(await readFile(path, 'utf8'), '16');
    assert.deepEqual(await readdir(join(path, '..')), ['credentials.json']);
  });

  test('a lock left by a killed process is broken at once (dead PID)', async () => {
    const path = fresh();
    const child = worker('hold', path);
    const exited = exitOf(child);
    assert.ok(child.stdout);
    const [chunk] = await once(child.stdout, 'data');
    assert.match(String(chunk), /locked/);
    child.kill('SIGKILL');
    await exited;
    assert.equal((await readdir(`${path}.lock`)).length, 1, 'the killed holder left its lock');
    // The holder is not old: only the dead-PID rule can free the lock within waitMs.
    assert.equal(await withFileLock(path, async () => 'mine', { waitMs: 10_000 }), 'mine');
  });

  test('a live holder older than staleMs is broken; its late release spares the new lock', async () => {
    const path = fresh();
    const a = await holdInProcess(path);
    const [aEntry] = await readdir(`${path}.lock`);
    const later = () => Date.now() + 60_000;
    await withFileLock(
      path,
      async () => {
        const [bEntry] = await readdir(`${path}.lock`);
        assert.notEqual(bEntry, aEntry);
        a.release();
        await a.done;
        assert.deepEqual(await readdir(`${path}.lock`), [bEntry]);
      },
      { staleMs: 30_000, now: later, waitMs: 5_000 },
    );
    await assert.rejects(lstat(`${path}.lock`), { code: 'ENOENT' });
  });

  test('a waiter that loses a race to break a stale lock spares the winner', async () => {
    const path = fresh();
    const lock = `${path}.lock`;
    const owner = (nonce: string, host: string, createdAt: number) =>
      JSON.stringify({ pid: process.pid, hostname: host, createdAt, nonce });
    mkdirSync(lock, { recursive: true });
    writeFileSync(join(lock, 'ancient.json'), owner('ancient', 'elsewhere', 0));
    // The clock is read between seeing the stale lock and breaking it: another waiter breaks it
    // and takes the lock right there.
    let reads = 0;
    const now = () => {
      if (++reads === 2) {
        rmSync(lock, { recursive: true });
        mkdirSync(lock);
        writeFileSync(join(lock, 'winner.json'), owner('winner', hostname(), Date.now()));
      }
      return Date.now();
    };
    await assert.rejects(
      withFileLock(path, async () => {}, { now, waitMs: 50 }),
      FileLockTimeoutError,
    );
    assert.ok(reads > 2);
    assert.deepEqual(await readdir(lock), ['winner.json']);
  });

  test('an unreadable lock is respected briefly, then broken', async () => {
    const path = fresh();
    await mkdir(`${path}.lock`, { recursive: true });
    await writeFile(join(`${path}.lock`, 'garbage.json'), '{"pid":');
    // A clock behind the file's mtime: however slow this machine, the lock is still young.
    const earlier = () => Date.now() - 10_000;
    await assert.rejects(
      withFileLock(path, async () => {}, { waitMs: 50, now: earlier }),
      FileLockTimeoutError,
    );
    const later = () => Date.now() + 5_000;
    assert.equal(await withFileLock(path, async () => 1, { waitMs: 5_000, now: later }), 1);
  });

  test('waitMs exceeded: FileLockTimeoutError, one line, polling backs off to a cap', async () => {
    const path = fresh();
    const a = await holdInProcess(path);
    let clock = 0;
    const sleeps: number[] = [];
    const error = await withFileLock(path, async () => {}, {
      waitMs: 3_000,
      now: () => clock,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
        await new Promise((resolve) => setImmediate(resolve));
      },
    }).catch((e: unknown) => e);
    a.release();
    await a.done;
    assert.ok(error instanceof FileLockTimeoutError);
    assert.equal(error.name, 'FileLockTimeoutError');
    assert.equal(error.lockPath, `${path}.lock`);
    assert.doesNotMatch(error.message, /\n/);
    assert.ok(error.message.includes(`${path}.lock`));
    assert.match(error.message, new RegExp(`held by process ${process.pid} `));
    const first = sleeps[0] ?? 0;
    assert.ok(first >= 7 && first <= 13, `first poll ${first} ms`);
    assert.ok(Math.max(...sleeps) <= 125, `polls ${sleeps}`);
    assert.ok(sleeps.length >= 24 && sleeps.length <= 100, `${sleeps.length} polls`);
    assert.equal(clock, 3_000);
  });

  test('a symlink planted at the lock path is neither followed nor replaced', {
    skip: process.platform === 'win32' && 'symlinks need privileges on Windows',
  }, async () => {
    const path = fresh();
    await mkdir(join(path, '..'), { recursive: true });
    const victims = join(root, `victims-${serial}`);
    await mkdir(victims);
    for (const target of [join(victims, 'file'), victims]) {
      await rm(`${path}.lock`, { force: true });
      await symlink(target, `${path}.lock`);
      await assert.rejects(
        withFileLock(path, async () => {}, { waitMs: 1_000 }),
        (e: Error) => {
          assert.match(e.message, /not a directory/);
          assert.doesNotMatch(e.message, /\n/);
          return true;
        },
      );
      assert.ok((await lstat(`${path}.lock`)).isSymbolicLink());
      assert.deepEqual(await readdir(victims), []);
    }
    assert.deepEqual(await readdir(join(path, '..')), ['credentials.json.lock']);
  });
});
