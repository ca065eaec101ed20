/** Names of the values main hands to post through GITHUB_STATE. None of them is secret. */
export const STATE = {
  /** The job's private folder (credentials file, launcher). */
  dir: 'dir',
  /** Access expiry of the token set the cache holds, to tell whether a later step refreshed it. */
  cachedExpiry: 'cached-expiry',
  /**
   * A digest of the S3 pair the workflow cache holds (the id itself is masked): a pair in the
   * file that is not this one belongs to this job alone, and the post step deletes it.
   */
  s3Shared: 's3-shared',
  /** `true` when main created the pair: its post step checks that the cache kept it. */
  s3Created: 's3-created',
} as const;
