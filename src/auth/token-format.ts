// The shapes a token may take, without a schema library: the CLI's hot path checks a stored
// token with these alone, and the zod schemas in token-set.ts are built from them.

/**
 * An exported variable of 128 kB or more makes every later process of a job fail to start
 * (E2BIG); real tokens are a few kB.
 */
export const MAX_TOKEN_LENGTH = 16 * 1024;
/**
 * RFC 6750's b64token (what JWTs and opaque tokens are made of): no whitespace, no `:` and no
 * `#`, so a token can neither end a log line nor be read by the runner as a command, whether
 * `::name::` at a line start or the legacy `##[name]` anywhere in one.
 */
export const TOKEN_PATTERN = /^[A-Za-z0-9\-._~+/]+=*$/;
/** `Bearer`, or another auth scheme name (RFC 9110 token characters). */
export const TOKEN_TYPE_PATTERN = /^[A-Za-z0-9!#$&'*+.^_`|~-]{1,64}$/;

export const isToken = (value: unknown): value is string =>
  typeof value === 'string' &&
  value.length > 0 &&
  value.length <= MAX_TOKEN_LENGTH &&
  TOKEN_PATTERN.test(value);

/** The Authorization header value; servers disagree on the case of "bearer" (RFC 6750 says Bearer). */
export const authorizationHeader = (tokenType: string, accessToken: string): string =>
  `${tokenType.toLowerCase() === 'bearer' ? 'Bearer' : tokenType} ${accessToken}`;
