import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as core from '@actions/core';
import { TokenSet, TokenStore } from '../auth/index.ts';
import { open, seal } from './seal.ts';

type ActionsCache = typeof import('@actions/cache');

// The entry lives here only while tar reads or writes it; it holds ciphertext only.
const ENTRY_DIR = '.cdse-auth-cache';
const ENTRY_FILE = 'token.sealed';
const ENTRY_PATH = `${ENTRY_DIR}/${ENTRY_FILE}`;

export interface ActionsCacheTokenStoreOptions {
  /** The loaded `@actions/cache` module (loaded lazily: it costs ~260 ms of start-up). */
  cache: ActionsCache;
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
  warn: (message: string) => void;
}

/**
 * A token store in the workflow's Actions cache, so every job of a workflow reuses one login.
 * Entries are sealed with AES-256-GCM; an entry that does not open is ignored with a warning.
 * `clear()` saves a tombstone, the newest entry, since entries cannot be deleted.
 */
export class ActionsCacheTokenStore extends TokenStore {
  readonly #o: ActionsCacheTokenStoreOptions;
  readonly #dir: string;
  readonly #file: string;

  constructor(options: ActionsCacheTokenStoreOptions) {
    super();
    this.#o = options;
    this.#dir = join(options.workspace, ENTRY_DIR);
    this.#file = join(this.#dir, ENTRY_FILE);
  }

  async load(): Promise<TokenSet | undefined> {
    if (!this.#o.read) return undefined;
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    let sealed: Buffer;
    try {
      const hit = await this.#bounded('restore', () =>
        this.#o.cache.restoreCache([ENTRY_PATH], this.#o.prefix, [this.#o.prefix]),
      );
      if (!hit) return undefined;
      sealed = await readFile(this.#file);
    } catch {
      return undefined;
    } finally {
      await rm(this.#dir, { recursive: true, force: true });
    }
    const plain = open(sealed, this.#o.key, this.#o.identity);
    let entry: { tokenSet?: unknown } | undefined;
    try {
      entry = plain && JSON.parse(plain.toString('utf8'));
    } catch {
      entry = undefined;
    }
    if (!entry) {
      this.#o.warn(
        'Ignoring the cached CDSE login: it does not open with this job’s key (another cache-secret or password, or a damaged entry). Logging in instead.',
      );
      return undefined;
    }
    return entry.tokenSet === null ? undefined : TokenSet.from(entry.tokenSet);
  }

  async save(tokenSet: TokenSet): Promise<void> {
    await this.#write({ tokenSet });
  }

  async clear(): Promise<void> {
    await this.#write({ tokenSet: null });
  }

  async #write(entry: { tokenSet: TokenSet | null }): Promise<void> {
    if (!this.#o.write) return;
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const sealed = seal(Buffer.from(JSON.stringify(entry)), this.#o.key, this.#o.identity);
    try {
      await writeFile(this.#file, sealed, { mode: 0o600 });
      await this.#bounded('save', () =>
        this.#o.cache.saveCache([ENTRY_PATH], freshKey(this.#o.prefix)),
      );
    } finally {
      await rm(this.#dir, { recursive: true, force: true });
    }
  }

  // The library retries a failing service for up to ~30 s per call; a job must not wait for that.
  async #bounded<T>(what: string, operation: () => Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        this.#o.warn(
          `The Actions cache did not answer the ${what} within ${this.#o.timeoutMs / 1000} s; going on without it.`,
        );
        resolve(undefined);
      }, this.#o.timeoutMs);
    });
    // The library logs tar commands and transfer progress: fold them away in the step log.
    core.startGroup(`Actions cache ${what}`);
    try {
      return await Promise.race([
        operation().catch((error: unknown) => {
          this.#o.warn(
            `The Actions cache ${what} failed (${(error as Error).message}); going on without it.`,
          );
          return undefined;
        }),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
      core.endGroup();
    }
  }
}

/** `<prefix><run id>-<attempt>-<job>-<time>-<random>`: keys are immutable and matrix jobs share a job id. */
function freshKey(prefix: string): string {
  const env = process.env;
  const job = (env.GITHUB_JOB ?? 'job').replace(/[^\w.-]/g, '_').slice(0, 100);
  const random = Math.random().toString(36).slice(2, 8);
  return `${prefix}${env.GITHUB_RUN_ID ?? 0}-${env.GITHUB_RUN_ATTEMPT ?? 1}-${job}-${Date.now()}-${random}`;
}
