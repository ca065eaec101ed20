import * as z from 'zod/mini';
import { FileTokenStore, type FileTokenStoreOptions, type TokenSet } from '../auth/index.ts';
import { StoredKeyPair } from '../s3/pair.ts';

/** Bounds of the numeric settings, shared by the action's inputs and the CLI's flags. */
export const LIMITS = {
  timeout: { min: 1, max: 600, unit: 'seconds' },
  maxAttempts: { min: 1, max: 10, unit: 'attempts' },
  expirySkew: { min: 0, max: 3000, unit: 'seconds' },
} as const;
const bounded = (name: keyof typeof LIMITS) =>
  z.optional(z.int().check(z.gte(LIMITS[name].min), z.lte(LIMITS[name].max)));

/**
 * What a login's later processes inherit from the step that made it (the credentials file's
 * `meta`), and what they report about it. One secret lives here, the S3 key pair: later steps must
 * print it (`cdse-auth s3`) and delete it, and this file is 0600 and removed at job end, like the
 * tokens beside it. Every front end that reads it masks it first. The client secret travels only
 * through CDSE_CLIENT_SECRET.
 */
export const SessionSettings = z.object({
  tokenUrl: z.optional(z.string()),
  clientId: z.optional(z.string()),
  scope: z.optional(z.string()),
  timeout: bounded('timeout'),
  maxAttempts: bounded('maxAttempts'),
  expirySkew: bounded('expirySkew'),
  /** Whether the job's login came from the workflow cache. */
  fromCache: z.optional(z.boolean()),
  /** Token requests that returned tokens, over every process of this login. */
  tokenRequests: z.optional(z.int().check(z.nonnegative())),
  s3KeysUrl: z.optional(z.string()),
  s3Endpoint: z.optional(z.string()),
  /** The S3 key pair cdse-auth created for this login (see above), until it is deleted. */
  // A damaged pair drops alone: the login and its other settings stay usable.
  s3: z.catch(z.optional(StoredKeyPair), undefined),
});
export type SessionSettings = z.infer<typeof SessionSettings>;

/** The credentials file of a login: a `FileTokenStore` whose meta is `SessionSettings`. */
export class SessionFile extends FileTokenStore {
  constructor(path: string, settings: SessionSettings | undefined, options: FileTokenStoreOptions) {
    super(path, { ...options, ...(settings && { meta: settings }) });
  }

  /** The settings as last loaded (an unusable meta counts as none). */
  get settings(): SessionSettings {
    const parsed = SessionSettings.safeParse(this.meta ?? {});
    return parsed.success ? parsed.data : {};
  }

  /** Writes a token set this login did not request (one restored from the cache). */
  adopt(tokenSet: TokenSet, settings: SessionSettings): Promise<void> {
    this.meta = { ...this.settings, ...settings };
    return super.save(tokenSet);
  }

  /**
   * Changes settings of the stored login without a token request (the S3 pair): inside the
   * file's lock, after reading what other processes wrote (a function sees those and may do
   * its work under the lock). False when there is no login to keep them with, and then a
   * function is not called.
   */
  updateSettings(
    change: SessionSettings | ((current: SessionSettings) => Promise<SessionSettings>),
  ): Promise<boolean> {
    return this.exclusive(async () => {
      const tokenSet = await this.load();
      if (!tokenSet) return false;
      const current = this.settings;
      const changed = typeof change === 'function' ? await change(current) : change;
      this.meta = { ...current, ...changed };
      await super.save(tokenSet);
      return true;
    });
  }

  // Called once per token request that returned tokens, inside the renewal's lock, after the
  // load that brought in what other processes counted.
  override save(tokenSet: TokenSet): Promise<void> {
    this.meta = { ...this.settings, tokenRequests: (this.settings.tokenRequests ?? 0) + 1 };
    return super.save(tokenSet);
  }
}
