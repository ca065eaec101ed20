import { randomUUID } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, rm, rmdir, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import * as z from 'zod/mini';
import { CdseAuthError } from './errors.ts';

export interface FileLockOptions {
  /** Give up waiting after this long (ms) and throw a {@link FileLockTimeoutError}. Default 120 s. */
  waitMs?: number;
  /** A lock older than this (ms) is stale: its holder hung or was killed, and it is broken. Default 180 s. */
  staleMs?: number;
  /** Injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  /** Injectable for tests: the clock for lock ages and the wait deadline. */
  now?: () => number;
}

/** Another process held the lock for longer than we were willing to wait. */
export class FileLockTimeoutError extends CdseAuthError {
  override readonly name = 'FileLockTimeoutError';
  readonly lockPath: string;

  constructor(lockPath: string, waitMs: number, holder: string) {
    super(`Gave up after ${waitMs} ms waiting for the lock ${lockPath}${holder}.`);
    this.lockPath = lockPath;
  }
}

const DEFAULT_WAIT_MS = 120_000;
const DEFAULT_STALE_MS = 180_000;
// A holder writes its owner file before the lock becomes visible, so an unreadable one means a
// crash or a foreign writer; the grace only covers clock and filesystem-timestamp slop.
const UNREADABLE_GRACE_MS = 2_000;
const FIRST_POLL_MS = 10;
const posix = process.platform !== 'win32';
const MAX_POLL_MS = 100;

const OwnerSchema = z.object({
  pid: z.int().check(z.positive()),
  hostname: z.string(),
  createdAt: z.number(),
  nonce: z.string(),
  pidNamespace: z.optional(z.string()),
});
type Owner = z.infer<typeof OwnerSchema>;

type Observed =
  | { state: 'free' }
  | { state: 'empty' }
  | { state: 'held'; entry: string; owner: Owner | undefined; mtimeMs: number };

/**
 * Runs `work` while holding an exclusive lock on `path` shared by every process on this machine
 * (and, on a shared filesystem, others), then releases it even if `work` throws.
 *
 * The lock is the directory `${path}.lock` holding one owner file `<nonce>.json` (mode 0600) with
 * `{pid, hostname, createdAt, nonce}`. It is built aside and renamed into place, so it is never
 * visible half-written, and a planted symlink at the lock path is replaced by nothing and followed
 * by nothing. Because the owner file's name is unique to one holding, deleting it by name is an
 * atomic compare-and-delete: a release or a stale-lock break can only ever remove the holding it
 * inspected, never a successor's, however many processes race.
 *
 * A lock is stale when its holder's PID is dead on this host (a killed process), or when it is older
 * than `staleMs` (a hung one); stale locks are broken. Not reentrant: nesting on the same path
 * waits for itself until `waitMs`.
 */
export async function withFileLock<T>(
  path: string,
  work: () => Promise<T>,
  options: FileLockOptions = {},
): Promise<T> {
  const lockPath = `${path}.lock`;
  const nonce = await acquire(lockPath, options);
  try {
    return await work();
  } finally {
    await release(lockPath, nonce);
  }
}

async function acquire(lockPath: string, options: FileLockOptions): Promise<string> {
  const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const now = options.now ?? Date.now;
  await mkdir(dirname(lockPath), { recursive: true, mode: 0o700 });
  const deadline = now() + waitMs;
  for (let pollMs = FIRST_POLL_MS; ; pollMs = Math.min(pollMs * 2, MAX_POLL_MS)) {
    let observed: Observed = { state: 'free' };
    // A few immediate retries: breaking a stale lock or losing a rename race needs no sleep.
    for (let round = 0; round < 4; round++) {
      observed = await observe(lockPath);
      if (observed.state === 'held') {
        if (!isStale(observed, now(), staleMs)) break;
        await removeEntry(lockPath, observed.entry);
        continue;
      }
      // An empty directory is a release or break caught halfway: free, but Windows will not
      // rename over it, so clear it first (a no-op if a new holder already renamed over it).
      if (observed.state === 'empty') await rmdir(lockPath).catch(() => {});
      const nonce = await tryCreate(lockPath, now());
      if (nonce) return nonce;
    }
    const left = deadline - now();
    if (left <= 0) throw new FileLockTimeoutError(lockPath, waitMs, describe(observed));
    // Jitter keeps a crowd of waiters woken by one release from retrying in lockstep.
    await sleep(Math.max(1, Math.min(left, Math.round(pollMs * (0.75 + Math.random() * 0.5)))));
  }
}

/** What is at the lock path now. Anything we would not have created there is refused loudly. */
async function observe(lockPath: string): Promise<Observed> {
  let entries: string[];
  try {
    const stat = await lstat(lockPath);
    if (!stat.isDirectory()) throw foreign(lockPath, 'it is not a directory');
    entries = await readdir(lockPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'free' };
    throw error;
  }
  const entry = entries[0];
  if (entry === undefined) return { state: 'empty' };
  const file = join(lockPath, entry);
  let mtimeMs: number;
  let text: string;
  try {
    const stat = await lstat(file);
    mtimeMs = stat.mtimeMs;
    // Never follow a planted symlink or read a huge file: such an entry is just unreadable.
    text = stat.isFile() && stat.size <= 4096 ? await readFile(file, 'utf8') : '';
  } catch (error) {
    // Released between readdir and read: look again.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return observe(lockPath);
    throw error;
  }
  let owner: Owner | undefined;
  try {
    const parsed = OwnerSchema.safeParse(JSON.parse(text));
    if (parsed.success && `${parsed.data.nonce}.json` === entry) owner = parsed.data;
  } catch {
    // Unparseable: judged by its age alone.
  }
  return { state: 'held', entry, owner, mtimeMs };
}

function isStale(
  observed: Extract<Observed, { state: 'held' }>,
  now: number,
  staleMs: number,
): boolean {
  const { owner } = observed;
  if (!owner) return now - observed.mtimeMs > UNREADABLE_GRACE_MS;
  if (
    owner.hostname === hostname() &&
    owner.pidNamespace === pidNamespace() &&
    !isAlive(owner.pid)
  ) {
    return true;
  }
  return now - owner.createdAt > staleMs;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive but someone else's. Anything unexpected (some Windows setups) errs on alive,
    // leaving the lock to the age rule.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

let cachedPidNamespace: string | undefined | null = null;
/**
 * Containers sharing a hostname (host networking) do not share PIDs: a PID is only meaningful
 * within its PID namespace, so the dead-PID rule must not judge a holder from another one.
 */
function pidNamespace(): string | undefined {
  if (cachedPidNamespace === null) {
    try {
      cachedPidNamespace =
        process.platform === 'linux' ? readlinkSync('/proc/self/ns/pid') : undefined;
    } catch {
      cachedPidNamespace = undefined;
    }
  }
  return cachedPidNamespace;
}

/** Builds a complete lock aside and renames it into place; undefined if someone else got there. */
async function tryCreate(lockPath: string, createdAt: number): Promise<string | undefined> {
  const nonce = randomUUID();
  const temp = join(dirname(lockPath), `.${basename(lockPath)}.${nonce}.tmp`);
  const owner: Owner = { pid: process.pid, hostname: hostname(), createdAt, nonce };
  const namespace = pidNamespace();
  if (namespace !== undefined) owner.pidNamespace = namespace;
  try {
    await mkdir(temp, { mode: 0o700 });
    const file = await open(join(temp, `${nonce}.json`), 'wx', 0o600);
    try {
      await file.writeFile(`${JSON.stringify(owner)}\n`);
    } finally {
      await file.close();
    }
    // Atomic, and only replaces an absent or empty directory: a held lock is never empty.
    await rename(temp, lockPath);
    return nonce;
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    const { code, syscall } = error as NodeJS.ErrnoException;
    // Only the rename can meet a holder; anything before it (say EACCES) is a real error.
    if (syscall === 'rename') {
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return undefined;
      // Windows refuses to rename over any existing directory, and briefly over a busy one.
      if (!posix && (code === 'EPERM' || code === 'EACCES' || code === 'EBUSY')) return undefined;
      if (code === 'ENOTDIR') throw foreign(lockPath, 'it is not a directory');
    }
    throw error;
  }
}

/** Removes one holding by its unique name, then the directory if nothing else moved in. */
async function removeEntry(lockPath: string, entry: string): Promise<boolean> {
  try {
    await unlink(join(lockPath, entry));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  // Fails harmlessly (ENOTEMPTY) when a new holder has already renamed its lock over the empty one.
  await rmdir(lockPath).catch(() => {});
  return true;
}

async function release(lockPath: string, nonce: string): Promise<void> {
  // False when our lock was broken as stale: whatever is there now belongs to someone else.
  await removeEntry(lockPath, `${nonce}.json`).catch(() => {});
}

function describe(observed: Observed): string {
  if (observed.state !== 'held' || !observed.owner) return '';
  const { pid, hostname: host, createdAt } = observed.owner;
  const since = new Date(createdAt);
  const when = Number.isNaN(since.getTime()) ? '' : ` since ${since.toISOString()}`;
  return `, held by process ${pid} on ${host}${when}`;
}

function foreign(lockPath: string, reason: string): CdseAuthError {
  return new CdseAuthError(
    `Cannot use the lock ${lockPath}: ${reason}; remove it if no process is using it.`,
  );
}
