/** Names of the values main hands to post through GITHUB_STATE. None of them is secret. */
export const STATE = {
  /** The job's private folder (credentials file, launcher). */
  dir: 'dir',
  /** Access expiry of the token set the cache holds, to tell whether a later step refreshed it. */
  cachedExpiry: 'cached-expiry',
} as const;
