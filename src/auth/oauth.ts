import * as z from 'zod/mini';
import { InvalidResponseError, TokenEndpointError } from './errors.ts';
import { type FormResponse, type HttpOptions, postForm } from './http.ts';

/** RFC 6749 §5.1, with Keycloak's `refresh_expires_in`. */
export const TokenResponse = z.object({
  access_token: z.string().check(z.minLength(1)),
  token_type: z.optional(z.string().check(z.minLength(1))),
  expires_in: z.coerce.number().check(z.positive()),
  refresh_token: z.optional(z.string().check(z.minLength(1))),
  refresh_expires_in: z.optional(z.coerce.number().check(z.nonnegative())),
  scope: z.optional(z.string()),
});
export type TokenResponse = z.infer<typeof TokenResponse>;

/** RFC 6749 §5.2, plus the `message` of CDSE's gateway (WAF) answers. */
const ErrorBody = z.object({
  error: z.optional(z.string()),
  error_description: z.optional(z.string()),
  message: z.optional(z.string()),
});

export type Redact = (text: string) => string;

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
  const error = body.error;
  const description = clean(body.error_description ?? body.message, redact);
  const said = [error, description && `(${description})`].filter(Boolean).join(' ');
  const tries = response.attempts > 1 ? ` after ${response.attempts} attempts` : '';
  const wait =
    response.retryAfter !== undefined
      ? `; the server asks to retry after ${response.retryAfter} s`
      : '';
  return new TokenEndpointError(
    `The token endpoint answered HTTP ${response.status}${tries}${said ? `: ${said}` : ''}${wait}.`,
    {
      status: response.status,
      ...(error !== undefined && { error }),
      ...(description !== undefined && { errorDescription: description }),
      attempts: response.attempts,
    },
  );
}

function contentTypeNote(response: FormResponse): string {
  const type = response.contentType.split(';')[0]?.trim();
  return type ? ` (${type})` : '';
}

// Server text goes into our messages: keep it short, single-line and free of secrets.
function clean(text: string | undefined, redact: Redact): string | undefined {
  if (!text) return undefined;
  const line = redact(text)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it strips
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
