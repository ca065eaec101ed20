import * as z from 'zod/mini';
import { InvalidResponseError, TokenEndpointError } from './errors.ts';
import {
  attemptsNote,
  type FormResponse,
  type HttpOptions,
  postForm,
  retryableStatus,
} from './http.ts';
import { type Redact, serverText } from './redact.ts';
import { PrintableText, SessionId, TokenString, TokenType } from './token-set.ts';

// Ten years: Keycloak's lifetimes are minutes to days; a larger number is a lie or a unit error,
// and one that overflows a Date would otherwise surface as a raw validation dump.
const MAX_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;
const Lifetime = z.coerce.number().check(z.nonnegative(), z.lte(MAX_LIFETIME_SECONDS));

/** RFC 6749 §5.1, with Keycloak's `refresh_expires_in` and `session_state`. */
export const TokenResponse = z.object({
  access_token: TokenString,
  token_type: z.optional(TokenType),
  expires_in: Lifetime.check(z.positive()),
  refresh_token: z.optional(TokenString),
  refresh_expires_in: z.optional(Lifetime),
  scope: z.optional(PrintableText(4096)),
  // Only shown to people (which session a job used): an odd value is dropped, not fatal.
  session_state: z.catch(z.optional(SessionId), undefined),
});
export type TokenResponse = z.infer<typeof TokenResponse>;

/** RFC 6749 §5.2, plus the `message` of CDSE's gateway (WAF) answers. */
const ErrorBody = z.object({
  error: z.optional(z.string()),
  error_description: z.optional(z.string()),
  message: z.optional(z.string()),
});

/** Sends a token request and returns the validated response, or throws a typed error. */
export async function requestToken(
  url: string,
  form: Record<string, string>,
  http: HttpOptions,
  redact: Redact,
): Promise<TokenResponse> {
  const response = await postForm(url, form, http);
  if (response.status < 200 || response.status >= 300) throw endpointError(response, redact);
  let json: unknown;
  try {
    json = JSON.parse(response.body);
  } catch {
    const what = response.body.trimStart().startsWith('<')
      ? 'an HTML page'
      : 'a body that is not JSON';
    throw new InvalidResponseError(
      `The token endpoint answered HTTP ${response.status} with ${what}${contentTypeNote(response)} instead of a token response; a proxy or a wrong token URL?`,
      { status: response.status, attempts: response.attempts },
    );
  }
  const parsed = TokenResponse.safeParse(json);
  if (!parsed.success) {
    // Issue paths name fields, never values: safe to show.
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || 'body'))];
    throw new InvalidResponseError(
      `The token endpoint answered HTTP ${response.status} with an invalid token response (bad or missing: ${fields.join(', ')}).`,
      { status: response.status, attempts: response.attempts },
    );
  }
  return parsed.data;
}

/** The error for a non-2xx answer: OAuth fields when the body has them, else the status. */
export function endpointError(response: FormResponse, redact: Redact): TokenEndpointError {
  let body: z.infer<typeof ErrorBody> = {};
  try {
    body = ErrorBody.parse(JSON.parse(response.body));
  } catch {
    // Not OAuth JSON (an HTML error page, a gateway message): the status says enough.
  }
  // Both fields come from the server: a lying one may echo a secret or forge a runner command.
  const error = serverText(body.error, redact)?.slice(0, 64);
  const description = serverText(body.error_description ?? body.message, redact);
  const said = [error, description && `(${description})`].filter(Boolean).join(' ');
  const { tries, wait } = attemptsNote(response);
  const hint =
    !error && [404, 405, 501].includes(response.status)
      ? ' Is the token URL a token endpoint (.../protocol/openid-connect/token)?'
      : '';
  return new TokenEndpointError(
    `The token endpoint answered HTTP ${response.status}${tries}${said ? `: ${said}` : ''}${wait}.${hint}`,
    {
      status: response.status,
      ...(error !== undefined && { error }),
      ...(description !== undefined && { errorDescription: description }),
      attempts: response.attempts,
      retryable: retryableStatus(response.status),
    },
  );
}

function contentTypeNote(response: FormResponse): string {
  // A server-chosen header: keep only what a media type can hold.
  const type = response.contentType
    .split(';')[0]
    ?.trim()
    .replace(/[^\w.+/-]/g, '')
    .slice(0, 64);
  return type ? ` (${type})` : '';
}
