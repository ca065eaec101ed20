import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TokenSet, TokenStore } from '../auth/index.ts';
import { StoredKeyPair } from '../s3/pair.ts';
import { extractSealedMember, MAX_ARCHIVE_BYTES, type Tampered } from './archive.ts';
import {
  type CacheService,
  CacheServiceError,
  cacheVersion,
  compressionOrder,
  createDispatcher,
  downloadArchive,
  findEntry,
} from './cache-service.ts';
import type { Runner } from './runner.ts';
import { seal, unseal } from './seal.ts';

type ActionsCache = typeof import('@actions/cache');

// The entry lives here only while tar reads it for a save; it holds ciphertext only.
const ENTRY_DIR = '.cdse-auth-cache';
const ENTRY_FILE = 'token.sealed';
/** The path saved (hashed into the cache version) and the member name tar stores. */
export const ENTRY_PATH = `${ENTRY_DIR}/${ENTRY_FILE}`;
/** Shorter values are not masked: the runner would hide every occurrence of them in the log. */
const MIN_MASKED_LENGTH = 8;

export interface ActionsCacheTokenStoreOptions {
  /** Key prefix; every save appends a fresh suffix because cache keys are immutable. */
  prefix: string;
  key: Buffer;
  identity: string;
  /**
   * The working folder (GITHUB_WORKSPACE). The cache version hashes the path *string*, so the
   * entry's path is a fixed name relative to it: the same in every job on every runner layout,
   * where RUNNER_TEMP differs between self-hosted runners.
   */
  workspace: string;
  /** Each cache operation is abandoned after this long; the job goes on without the cache. */
  timeoutMs: number;
  read: boolean;
  write: boolean;
  /** Warnings, masks and the folded log group of a save go here. */
  runner: Runner;
  /** The job's environment (run id, job name for fresh keys; zstd on PATH; proxies). */
  env: NodeJS.ProcessEnv;
  /** Where entries are looked up. */
  service: CacheService;
  /**
   * Loads `@actions/cache`, which only saving uses (~260 ms to import). Default: a dynamic
   * import, so a job that only restores never loads it, nor tar, nor the Azure SDK.
   */
  loadCache?: () => Promise<ActionsCache>;
}

/** What one sealed entry holds: a login, and the S3 key pair made from it if any. */
export interface CachedLogin {
  tokenSet: TokenSet;
  s3?: StoredKeyPair;
}

/**
 * A token store in the workflow's Actions cache, so every job of a workflow reuses one login.
 * Entries are sealed with AES-256-GCM; an entry that does not open is ignored with a warning.
 * Restoring reads the archive in memory (see archive.ts): anyone who can write the cache can
 * plant an entry under our prefix, so nothing of it touches the disk before it opens.
 * `clear()` saves a tombstone, the newest entry, since entries cannot be deleted.
 */
export class ActionsCacheTokenStore extends TokenStore {
  readonly #options: ActionsCacheTokenStoreOptions;
  readonly #dir: string;
  readonly #file: string;
  #matchedKey: string | undefined;

  constructor(options: ActionsCacheTokenStoreOptions) {
    super();
    this.#options = options;
    this.#dir = join(options.workspace, ENTRY_DIR);
    this.#file = join(this.#dir, ENTRY_FILE);
    // The default prefix is the target a planted entry needs: the library prints keys, so the
    // runner must mask it before any save or restore.
    this.#mask(options.prefix);
  }

  /** The key of the entry the last `load()` opened, if it opened one. */
  get matchedKey(): string | undefined {
    return this.#matchedKey;
  }

  /** The newest entry's token set, looked up afresh on every call. */
  async load(): Promise<TokenSet | undefined> {
    return (await this.loadEntry())?.tokenSet;
  }

  /** The newest entry under the prefix, looked up afresh on every call. */
  async loadEntry(): Promise<CachedLogin | undefined> {
    this.#matchedKey = undefined;
    if (!this.#options.read) return undefined;
    const found = await this.#fetch();
    if (!found) return undefined;
    if ('tampered' in found) {
      this.#options.runner.warning(
        `Ignoring the cached CDSE login: the cache entry is not one cdse-auth wrote (${found.tampered}). Logging in instead.`,
      );
      return undefined;
    }
    const plain = unseal(found.sealed, this.#options.key, this.#options.identity);
    let entry: { tokenSet?: unknown; s3?: unknown } | undefined;
    try {
      entry = plain && JSON.parse(plain.toString('utf8'));
    } catch {
      entry = undefined;
    }
    if (!entry) {
      this.#options.runner.warning(
        'Ignoring the cached CDSE login: it does not open with this job’s key (another cache-secret or password, or a damaged entry). Logging in instead.',
      );
      return undefined;
    }
    this.#matchedKey = found.key;
    const tokenSet = entry.tokenSet === null ? undefined : TokenSet.from(entry.tokenSet);
    if (!tokenSet) return undefined;
    if (entry.s3 === undefined) return { tokenSet };
    // Checked like the tokens: its values reach the log masker, the environment and a URL.
    const s3 = StoredKeyPair.safeParse(entry.s3);
    if (!s3.success) {
      this.#options.runner.warning(
        'Ignoring the S3 key pair in the cached CDSE login: it is malformed. This job creates its own.',
      );
      return { tokenSet };
    }
    return { tokenSet, s3: s3.data };
  }

  /** Looks the prefix up and reads the sealed member; the whole of it bounded by timeoutMs. */
  async #fetch(): Promise<{ key: string; sealed: Buffer } | Tampered | undefined> {
    const { service, env } = this.#options;
    const dispatcher = createDispatcher(env);
    const context = { dispatcher, signal: AbortSignal.timeout(this.#options.timeoutMs) };
    const { prefix } = this.#options;
    try {
      for (const method of compressionOrder(env)) {
        const version = cacheVersion([ENTRY_PATH], method);
        // As restoreCache(paths, prefix, [prefix]) asked: newest entry under the prefix.
        const entry = await findEntry(service, prefix, [prefix], version, context);
        if (!entry) continue;
        // Only a key under our prefix: a string from the service must not hide others in the log.
        if (entry.key.startsWith(prefix)) this.#mask(entry.key);
        const archive = await downloadArchive(entry.archiveUrl, MAX_ARCHIVE_BYTES, context);
        if (!archive) return { tampered: 'the archive is too large' };
        const member = extractSealedMember(archive, ENTRY_PATH);
        return Buffer.isBuffer(member) ? { key: entry.key, sealed: member } : member;
      }
      this.#options.runner.debug('No cached CDSE login in the Actions cache.');
      return undefined;
    } catch (error) {
      this.#options.runner.warning(
        context.signal.aborted
          ? `The Actions cache did not answer the restore within ${this.#options.timeoutMs / 1000} s; going on without it.`
          : `The Actions cache restore failed (${describe(error)}); going on without it.`,
      );
      return undefined;
    } finally {
      dispatcher.destroy().catch(() => {});
    }
  }

  #mask(value: string): void {
    if (value.length >= MIN_MASKED_LENGTH) this.#options.runner.setSecret(value);
  }

  async save(tokenSet: TokenSet, s3?: StoredKeyPair): Promise<void> {
    await this.#write({ tokenSet, ...(s3 && { s3 }) });
  }

  async clear(): Promise<void> {
    await this.#write({ tokenSet: null });
  }

  async #write(entry: { tokenSet: TokenSet | null; s3?: StoredKeyPair }): Promise<void> {
    if (!this.#options.write) return;
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const sealed = seal(
      Buffer.from(JSON.stringify(entry)),
      this.#options.key,
      this.#options.identity,
    );
    try {
      await writeFile(this.#file, sealed, { mode: 0o600 });
      const key = freshKey(this.#options.prefix, this.#options.env);
      this.#mask(key); // the library logs the key when the service refuses the save
      await this.#bounded('save', async () => {
        const cache = await (this.#options.loadCache ?? (() => import('@actions/cache')))();
        return cache.saveCache([ENTRY_PATH], key);
      });
    } finally {
      await rm(this.#dir, { recursive: true, force: true });
    }
  }

  // The library retries a failing service for up to ~30 s per call; a job must not wait for that.
  // Only saving uses the library now; restoring bounds its own requests.
  async #bounded<T>(what: string, operation: () => Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        this.#options.runner.warning(
          `The Actions cache did not answer the ${what} within ${this.#options.timeoutMs / 1000} s; going on without it.`,
        );
        resolve(undefined);
      }, this.#options.timeoutMs);
    });
    // The library logs tar commands and transfer progress: fold them away in the step log.
    this.#options.runner.startGroup(`Actions cache ${what}`);
    try {
      return await Promise.race([
        operation().catch((error: unknown) => {
          this.#options.runner.warning(
            `The Actions cache ${what} failed (${(error as Error).message}); going on without it.`,
          );
          return undefined;
        }),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
      this.#options.runner.endGroup();
    }
  }
}

/** `<prefix><run id>-<attempt>-<job>-<time>-<random>`: keys are immutable and matrix jobs share a job id. */
function freshKey(prefix: string, env: NodeJS.ProcessEnv): string {
  const job = (env.GITHUB_JOB ?? 'job').replace(/[^\w.-]/g, '_').slice(0, 100);
  const random = Math.random().toString(36).slice(2, 8);
  return `${prefix}${env.GITHUB_RUN_ID ?? 0}-${env.GITHUB_RUN_ATTEMPT ?? 1}-${job}-${Date.now()}-${random}`;
}

/** A restore failure for the log: our own messages, else only an error code (no URL or key). */
function describe(error: unknown): string {
  if (error instanceof CacheServiceError) return error.message;
  const code =
    (error as { code?: unknown })?.code ?? (error as { cause?: { code?: unknown } })?.cause?.code;
  return typeof code === 'string' ? code : 'a network error';
}
