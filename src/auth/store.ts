import type { TokenSet } from './token-set.ts';

/** Where a `TokenManager` keeps its token set between calls (and, for some stores, processes). */
export abstract class TokenStore {
  /** The stored token set, or `undefined` when there is none or it is unusable. */
  abstract load(): Promise<TokenSet | undefined>;
  abstract save(tokenSet: TokenSet): Promise<void>;
  abstract clear(): Promise<void>;
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
