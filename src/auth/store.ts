import type { TokenSet } from './token-set.ts';

/** Where a `TokenManager` keeps its token set between calls (and, for some stores, processes). */
export abstract class TokenStore {
  /** The stored token set, or `undefined` when there is none or it is unusable. */
  abstract load(): Promise<TokenSet | undefined>;
  abstract save(tokenSet: TokenSet): Promise<void>;
  abstract clear(): Promise<void>;

  /**
   * Runs `work` (load, renew, save) as the only renewal of this store. A store that several
   * processes share (a file) holds a lock across them; the default is for stores that only one
   * manager uses, whose single-flight already serialises renewals.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return work();
  }

  /**
   * Called (inside `exclusive`) after `refused`'s refresh token was rejected: the token set that
   * replaced it, if another process or job renewed meanwhile (with rotation on, the first renewal
   * of a shared login makes everyone else's copy of the refresh token dead).
   */
  async successorOf(refused: TokenSet): Promise<TokenSet | undefined> {
    const current = await this.load();
    return current?.refreshToken !== refused.refreshToken ? current : undefined;
  }
}

/** The default store: lives and dies with the process, touches no filesystem. */
export class MemoryTokenStore extends TokenStore {
  #tokenSet: TokenSet | undefined;

  async load(): Promise<TokenSet | undefined> {
    return this.#tokenSet;
  }

  async save(tokenSet: TokenSet): Promise<void> {
    this.#tokenSet = tokenSet;
  }

  async clear(): Promise<void> {
    this.#tokenSet = undefined;
  }
}
