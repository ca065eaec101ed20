import { inspect } from 'node:util';
// zod/mini: the same schemas at a fraction of the bundle size (the action's main step loads them).
import * as z from 'zod/mini';
import {
  authorizationHeader,
  MAX_TOKEN_LENGTH,
  TOKEN_PATTERN,
  TOKEN_TYPE_PATTERN,
} from './token-format.ts';

export { MAX_TOKEN_LENGTH };

export const GrantType = z.enum(['password', 'refresh_token', 'client_credentials']);
export type GrantType = z.infer<typeof GrantType>;

/** A token as it may be stored or used: see token-format.ts. */
export const TokenString = z
  .string()
  .check(z.minLength(1), z.maxLength(MAX_TOKEN_LENGTH), z.regex(TOKEN_PATTERN));
export const TokenType = z.string().check(z.regex(TOKEN_TYPE_PATTERN));
/**
 * Non-secret text that is shown to people (`cdse-auth status`): printable ASCII on one line, and
 * never the legacy `##[name]` command form, which the runner honours anywhere in a line.
 */
export const PrintableText = (max: number) =>
  z.string().check(z.maxLength(max), z.regex(/^(?:(?!##\[)[\x20-\x7e])*$/));
/** Keycloak's `session_state` (a UUID): a session id that names the login without revealing it. */
export const SessionId = z.string().check(z.regex(/^[A-Za-z0-9._:-]{1,128}$/));

/** The persisted shape of a token set: what stores write and read back. */
export const TokenSetSchema = z.object({
  accessToken: TokenString,
  tokenType: z._default(TokenType, 'Bearer'),
  /** Absolute access-token expiry. */
  expiresAt: z.coerce.date(),
  refreshToken: z.optional(TokenString),
  /** Absolute refresh-token expiry; absent means unknown or never (Keycloak offline tokens). */
  refreshExpiresAt: z.optional(z.coerce.date()),
  scope: z.optional(PrintableText(4096)),
  /** The server's session this token set belongs to, when it said (Keycloak `session_state`). */
  sessionId: z.optional(SessionId),
  /**
   * Where the tokens came from. A manager ignores a stored set from another endpoint or client, so
   * a credentials file shared by two configurations never sends one server's token to the other.
   */
  tokenUrl: z.optional(PrintableText(2048)),
  clientId: z.optional(PrintableText(256)),
});
export type TokenSetData = z.output<typeof TokenSetSchema>;
export type TokenSetInput = z.input<typeof TokenSetSchema>;

// The class adds behaviour to the schema's fields; merging keeps one definition of the fields.
export interface TokenSet extends Readonly<TokenSetData> {}
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the constructor assigns every field from the parsed schema
export class TokenSet {
  /** Throws a `ZodError` (which names fields, never values) when `data` is not a token set. */
  constructor(data: TokenSetInput) {
    Object.assign(this, TokenSetSchema.parse(data));
    Object.freeze(this);
  }

  /** Parses stored JSON data; `undefined` when it is not a valid token set. */
  static from(data: unknown): TokenSet | undefined {
    const parsed = TokenSetSchema.safeParse(data);
    return parsed.success ? new TokenSet(parsed.data) : undefined;
  }

  get authorizationHeader(): string {
    return authorizationHeader(this.tokenType, this.accessToken);
  }

  /** Whether the access token is usable for at least `skew` more seconds. */
  accessValid(skew = 0, now = Date.now()): boolean {
    return now + skew * 1000 < this.expiresAt.getTime();
  }

  /** Whether a refresh grant can still succeed `skew` seconds from now. */
  refreshValid(skew = 0, now = Date.now()): boolean {
    if (this.refreshToken === undefined) return false;
    return (
      this.refreshExpiresAt === undefined || now + skew * 1000 < this.refreshExpiresAt.getTime()
    );
  }

  /** The values to mask wherever this token set is used: both tokens and the header value. */
  secrets(): string[] {
    const values = [this.accessToken, this.authorizationHeader];
    if (this.refreshToken) values.push(this.refreshToken);
    return values;
  }

  toJSON(): TokenSetData {
    return { ...this };
  }

  // console.log(tokenSet) in a user's script must not print the tokens.
  [inspect.custom](): string {
    const refresh = this.refreshToken
      ? `, refresh until ${this.refreshExpiresAt?.toISOString() ?? 'unknown'}`
      : '';
    return `TokenSet { ${this.tokenType} ***, expires ${this.expiresAt.toISOString()}${refresh} }`;
  }
}
