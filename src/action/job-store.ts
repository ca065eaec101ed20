import { setTimeout as sleep } from 'node:timers/promises';
import { type TokenSet, TokenStore } from '../auth/index.ts';
import type { SessionFile } from '../front/session-file.ts';
import type { WorkflowCache } from './workflow-cache.ts';

// After a refused refresh, how long to wait for the job that won the renewal to save its token
// set to the cache (an @actions/cache save takes a second or more on a busy runner): ~8 s in all, only on that path.
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
  #restored = false;
  readonly #mask: (tokenSet: TokenSet) => void;

  /** `mask` registers a restored token set's secrets before anything could print them. */
  constructor(file: SessionFile, cache: WorkflowCache, mask: (tokenSet: TokenSet) => void) {
    super();
    this.file = file;
    this.cache = cache;
    this.#mask = mask;
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
    await this.cache.save(tokenSet);
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
      if (cached && cached.refreshToken !== refused.refreshToken) return this.#adopt(cached);
    }
    return undefined;
  }

  async #adopt(tokenSet: TokenSet): Promise<TokenSet> {
    this.#mask(tokenSet);
    this.fromCache = true;
    await this.file.adopt(tokenSet, { fromCache: true });
    return tokenSet;
  }
}
