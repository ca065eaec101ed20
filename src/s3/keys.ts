// The client of CDSE's S3 keys manager (facts: shared/reference/cdse-s3-keys.md). The API has no
// public reference, so answers are validated strictly where a value reaches a log, an
// environment variable or a URL, and leniently everywhere else (extra fields, odd expiries).
import { type Dispatcher, getGlobalDispatcher } from 'undici';
import * as z from 'zod/mini';
import { checkEndpointUrl } from '../auth/endpoint.ts';
import { CdseAuthError } from '../auth/errors.ts';
import { attemptsNote, type FormResponse, type HttpRequest, sendWithRetry } from '../auth/http.ts';
import { oneLine, type Redact, redactor, serverText } from '../auth/redact.ts';

export const DEFAULT_S3_KEYS_URL = 'https://s3-keys-manager.cloudferro.com/api/user/credentials';
const KEYS_UI = 'https://eodata-s3keysmanager.dataspace.copernicus.eu/';

const MAX_KEY_LENGTH = 256;
/**
 * An access key id goes into SigV4's `Credential=id/date/...` and into a URL path, so no `/`;
 * like tokens (token-format.ts) neither may hold whitespace, `:`, `#` or `%`, so a value can
 * neither end a log line nor be read by the runner as a command.
 */
const ACCESS_ID_PATTERN = /^[A-Za-z0-9\-._~]+$/;
/** AWS-style secrets are base64: `+`, `/` and `=` are ordinary characters there. */
const SECRET_PATTERN = /^[A-Za-z0-9\-._~+/=]+$/;

export const AccessKeyId = z
  .string()
  .check(z.minLength(1), z.maxLength(MAX_KEY_LENGTH), z.regex(ACCESS_ID_PATTERN));
export const SecretAccessKey = z
  .string()
  .check(z.minLength(1), z.maxLength(MAX_KEY_LENGTH), z.regex(SECRET_PATTERN));

/** ISO 8601 text or epoch seconds/milliseconds; an expiry we cannot read is dropped, not fatal. */
const Expiry = z.catch(
  z.optional(
    z.pipe(
      z.union([z.string().check(z.maxLength(64)), z.number()]),
      z.transform((value): Date | undefined => {
        const ms =
          typeof value === 'number' ? (value < 1e12 ? value * 1000 : value) : Date.parse(value);
        const date = new Date(ms);
        return Number.isFinite(date.getTime()) ? date : undefined;
      }),
    ),
  ),
  undefined,
);

// Clients report `expiration_date`; the other names cover a renamed field without guessing more.
const expiryFields = {
  expiration_date: Expiry,
  expires_at: Expiry,
  expiry: Expiry,
};

export const CreatedKeyResponse = z.object({
  access_id: AccessKeyId,
  secret: SecretAccessKey,
  ...expiryFields,
});

const ListedKey = z.object({
  access_id: AccessKeyId,
  enabled: z.catch(z.optional(z.boolean()), undefined),
  ...expiryFields,
});

const ErrorBody = z.object({ detail: z.optional(z.unknown()), message: z.optional(z.unknown()) });

export interface KeyPair {
  accessKeyId: string;
  secretAccessKey: string;
  expiresAt?: Date;
}

export interface KeyInfo {
  accessKeyId: string;
  expiresAt?: Date;
  enabled?: boolean;
}

export interface KeysOptions {
  dispatcher?: Dispatcher;
  /** Per request, ms. Default 30 s. */
  timeoutMs?: number;
  /** Requests per operation for network faults, 408, 429 and 5xx. Default 5. */
  maxAttempts?: number;
  /** Waits between attempts (tests pass a recording one). */
  sleep?: (ms: number) => Promise<unknown>;
  /** Further secrets to keep out of messages (the access token is always redacted). */
  secrets?: () => Iterable<string | undefined>;
}

/** The keys manager failed or refused; the message names no secret. */
export class S3KeysError extends CdseAuthError {
  override readonly name: string = 'S3KeysError';
}

/** The user holds as many key pairs as CDSE allows; only deleting some helps. */
export class S3KeyCapError extends S3KeysError {
  override readonly name = 'S3KeyCapError';
  /** How many key pairs the user holds, when listing them worked. */
  readonly keyCount: number | undefined;

  constructor(message: string, keyCount: number | undefined, details: { attempts?: number }) {
    super(message, {
      status: 403,
      error: 'credentials_cap',
      hint: 'Delete unused key pairs: `cdse-auth s3 list`, then `cdse-auth s3 delete ID`.',
      ...details,
    });
    this.keyCount = keyCount;
  }
}

const CAP_DETAIL = /max(imum)? number of credentials/i;

/** Creates a key pair for the user the access token belongs to. */
export async function createKeyPair(
  url: string,
  accessToken: string,
  options: KeysOptions = {},
): Promise<KeyPair> {
  const base = checkEndpointUrl(url, 's3-keys-url').toString();
  const redact = redactor(() => [accessToken, ...(options.secrets?.() ?? [])]);
  const response = await call(base, { method: 'POST' }, accessToken, options);
  if (response.status === 403 && CAP_DETAIL.test(detailOf(response) ?? '')) {
    throw await capError(base, accessToken, options, response.attempts);
  }
  if (response.status !== 200 && response.status !== 201) {
    throw httpError('create an S3 key pair', response, redact);
  }
  const parsed = CreatedKeyResponse.safeParse(parseJson(response, 'create an S3 key pair'));
  if (!parsed.success) throw invalidAnswer('create an S3 key pair', response, parsed.error.issues);
  const { access_id, expiration_date, expires_at, expiry } = parsed.data;
  const expiresAt = expiration_date ?? expires_at ?? expiry;
  return {
    accessKeyId: access_id,
    secretAccessKey: parsed.data.secret,
    ...(expiresAt !== undefined && { expiresAt }),
  };
}

/** The user's key pairs (ids and expiries; the manager never shows a secret again). */
export async function listKeyPairs(
  url: string,
  accessToken: string,
  options: KeysOptions = {},
): Promise<KeyInfo[]> {
  const base = checkEndpointUrl(url, 's3-keys-url').toString();
  const redact = redactor(() => [accessToken, ...(options.secrets?.() ?? [])]);
  const response = await call(base, { method: 'GET' }, accessToken, options);
  if (response.status !== 200) throw httpError('list S3 key pairs', response, redact);
  const items = listItems(parseJson(response, 'list S3 key pairs'), redact);
  const parsed = z.array(ListedKey).safeParse(items);
  if (!parsed.success) throw invalidAnswer('list S3 key pairs', response, parsed.error.issues);
  return parsed.data.map((item) => {
    const expiresAt = item.expiration_date ?? item.expires_at ?? item.expiry;
    return {
      accessKeyId: item.access_id,
      ...(expiresAt !== undefined && { expiresAt }),
      ...(item.enabled !== undefined && { enabled: item.enabled }),
    };
  });
}

/**
 * Deletes one key pair by id. Answers false when the manager does not know the id (already
 * deleted, expired, or another user's): the goal, no such key, holds either way.
 */
export async function deleteKeyPair(
  url: string,
  accessToken: string,
  accessKeyId: string,
  options: KeysOptions = {},
): Promise<boolean> {
  const base = checkEndpointUrl(url, 's3-keys-url').toString();
  if (!AccessKeyId.safeParse(accessKeyId).success) {
    throw new S3KeysError('Not an S3 access key id (letters, digits and -._~ only).');
  }
  const redact = redactor(() => [accessToken, ...(options.secrets?.() ?? [])]);
  const target = `${base.replace(/\/+$/, '')}/access_id/${encodeURIComponent(accessKeyId)}`;
  const response = await call(target, { method: 'DELETE' }, accessToken, options);
  if (response.status === 200 || response.status === 204) return true;
  // A retried DELETE whose first attempt was served answers 404: deleted all the same.
  if (response.status === 404) return false;
  throw httpError(`delete S3 key pair ${accessKeyId}`, response, redact);
}

function call(
  url: string,
  init: HttpRequest,
  accessToken: string,
  options: KeysOptions,
): Promise<FormResponse> {
  return sendWithRetry(
    url,
    { ...init, headers: { authorization: `Bearer ${accessToken}` } },
    {
      dispatcher: options.dispatcher ?? getGlobalDispatcher(),
      timeoutMs: options.timeoutMs ?? 30_000,
      maxAttempts: options.maxAttempts ?? 5,
      ...(options.sleep && { sleep: options.sleep }),
      unreachable: (message, attempts) =>
        new S3KeysError(`S3 keys manager: ${message}`, { attempts }),
    },
  );
}

async function capError(
  url: string,
  accessToken: string,
  options: KeysOptions,
  attempts: number,
): Promise<S3KeyCapError> {
  let count: number | undefined;
  try {
    count = (await listKeyPairs(url, accessToken, { ...options, maxAttempts: 1 })).length;
  } catch {
    // The count only makes the message friendlier; the cap is the error to report.
  }
  const held = count === undefined ? '' : ` (${count} exist)`;
  return new S3KeyCapError(
    `The S3 keys manager refused a new key pair: the maximum number of key pairs is reached${held}. Delete unused ones with \`cdse-auth s3 list\` and \`cdse-auth s3 delete ID\`, or at ${KEYS_UI}.`,
    count,
    { attempts },
  );
}

function detailOf(response: FormResponse): string | undefined {
  try {
    const body = ErrorBody.parse(JSON.parse(response.body));
    const said = body.detail ?? body.message;
    // FastAPI puts validation errors in `detail` as a list of objects.
    return typeof said === 'string' ? said : said === undefined ? undefined : JSON.stringify(said);
  } catch {
    return undefined;
  }
}

function httpError(what: string, response: FormResponse, redact: Redact): S3KeysError {
  const said = serverText(detailOf(response), redact);
  const { tries, wait } = attemptsNote(response);
  const hint =
    response.status === 401 || response.status === 403
      ? 'The access token was not accepted: is it expired, or from another identity server than CDSE?'
      : response.status === 404 || response.status === 405
        ? 'Is s3-keys-url the keys manager (.../api/user/credentials)?'
        : undefined;
  return new S3KeysError(
    `Could not ${what}: the S3 keys manager answered HTTP ${response.status}${tries}${said ? ` (${said})` : ''}${wait}.${hint ? ` ${hint}` : ''}`,
    {
      status: response.status,
      attempts: response.attempts,
      ...(said !== undefined && { errorDescription: said }),
      ...(hint !== undefined && { hint }),
    },
  );
}

function parseJson(response: FormResponse, what: string): unknown {
  try {
    return JSON.parse(response.body);
  } catch {
    const kind = response.body.trimStart().startsWith('<')
      ? 'an HTML page'
      : 'a body that is not JSON';
    throw new S3KeysError(
      `Could not ${what}: the S3 keys manager answered HTTP ${response.status} with ${kind}.`,
      { status: response.status, attempts: response.attempts },
    );
  }
}

function invalidAnswer(
  what: string,
  response: FormResponse,
  issues: ReadonlyArray<{ path: PropertyKey[] }>,
): S3KeysError {
  // Paths name fields (and list indexes), never values: safe to show.
  const fields = [
    ...new Set(issues.map((i) => oneLine(i.path.map(String).join('.'), 64) || 'body')),
  ];
  return new S3KeysError(
    `Could not ${what}: the S3 keys manager answered HTTP ${response.status} with an unusable answer (bad or missing: ${fields.slice(0, 5).join(', ')}).`,
    { status: response.status, attempts: response.attempts },
  );
}

/**
 * The list answer's items: an array, or an object holding one array under one key. Anything
 * else is reported, not guessed at: a paginated answer read as complete would hide keys.
 */
function listItems(body: unknown, redact: Redact): unknown[] {
  if (Array.isArray(body)) return body;
  if (body !== null && typeof body === 'object') {
    const entries = Object.entries(body);
    const [only] = entries;
    if (entries.length === 1 && only !== undefined && Array.isArray(only[1])) return only[1];
    const keys = entries.map(([key]) => key).slice(0, 8);
    throw new S3KeysError(
      `Could not list S3 key pairs: the S3 keys manager answered an object this client does not understand (fields: ${serverText(keys.join(', '), redact) ?? 'none'}); expected a list of key pairs.`,
      { status: 200 },
    );
  }
  throw new S3KeysError(
    `Could not list S3 key pairs: the S3 keys manager answered ${body === null ? 'null' : typeof body} instead of a list of key pairs.`,
    { status: 200 },
  );
}
