import { setTimeout as sleep } from 'node:timers/promises';
import { type TokenSet, TokenStore } from '../auth/index.ts';
import type { SessionFile } from '../front/session-file.ts';
import type { StoredKeyPair } from '../s3/pair.ts';
import type { CachedLogin } from './cache-store.ts';
import type { WorkflowCache } from './workflow-cache.ts';

// After a refused refresh, how long to wait for the job that won the renewal to save its token
// set to the cache (an @actions/cache save takes a second or more on a busy runner): ~8 s in
// all, and only on that path.
const SUCCESSOR_POLLS_MS = [0, 250, 500, 1000, 1500, 2000, 2500];

/**
 * The main step's store: the job's credentials file, seeded from the workflow cache and saved
 * back to it. The manager above it neither knows nor cares where tokens live.
 */
export class JobTokenStore extends TokenStore {
  readonly file: SessionFile;
  readonly cache: WorkflowCache;
  /** Whether the login this job uses came from the cache. */
  fromCache = false;
  /** The workflow's S3 key pair: restored with the login, or set once this job made one. */
  s3: StoredKeyPair | undefined;
  #restored = false;
  readonly #mask: (login: CachedLogin) => void;
  readonly #holdSaves: boolean;
  #held: TokenSet | undefined;

  /**
   * `mask` registers a restored login's secrets before anything could print them. `holdSaves`
   * keeps a new token set from the cache until `flush`: with S3 keys on, the entry should carry
   * the pair too, and one save costs a second or more.
   */
  constructor(
    file: SessionFile,
    cache: WorkflowCache,
    mask: (login: CachedLogin) => void,
    options: { holdSaves?: boolean } = {},
  ) {
    super();
    this.file = file;
    this.cache = cache;
    this.#mask = mask;
    this.#holdSaves = options.holdSaves ?? false;
  }

  async load(): Promise<TokenSet | undefined> {
    if (!this.#restored) {
      this.#restored = true;
      const cached = await this.cache.restore();
      if (cached) return this.#adopt(cached);
    }
    return this.file.load();
  }

  async save(tokenSet: TokenSet): Promise<void> {
    await this.file.save(tokenSet);
    if (this.#holdSaves) this.#held = tokenSet;
    else await this.#saveToCache(tokenSet);
  }

  /** Saves a held token set, or `current` when the pair is new: later jobs need both. */
  async flush(current: TokenSet, pairIsNew: boolean): Promise<void> {
    const tokenSet = this.#held ?? (pairIsNew ? current : undefined);
    this.#held = undefined;
    if (tokenSet) await this.#saveToCache(tokenSet);
  }

  #saveToCache(tokenSet: TokenSet): Promise<void> {
    return this.cache.save({ tokenSet, ...(this.s3 && { s3: this.s3 }) });
  }

  clear(): Promise<void> {
    return this.file.clear();
  }

  override exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.file.exclusive(work);
  }

  /** Another process of this job, or another job through the cache, may hold the successor. */
  override async successorOf(refused: TokenSet): Promise<TokenSet | undefined> {
    const local = await this.file.load();
    if (local && local.refreshToken !== refused.refreshToken) return local;
    if (!this.cache.active) return undefined;
    for (const delay of SUCCESSOR_POLLS_MS) {
      await sleep(delay);
      const cached = await this.cache.restore();
      if (cached && cached.tokenSet.refreshToken !== refused.refreshToken) {
        return this.#adopt(cached);
      }
    }
    return undefined;
  }

  async #adopt(login: CachedLogin): Promise<TokenSet> {
    this.#mask(login);
    this.fromCache = true;
    // The pair goes to the file even when this job hands out no keys: a job that ends the login
    // must know it to delete it.
    if (login.s3) this.s3 = login.s3;
    await this.file.adopt(login.tokenSet, { fromCache: true, ...(login.s3 && { s3: login.s3 }) });
    return login.tokenSet;
  }
}
