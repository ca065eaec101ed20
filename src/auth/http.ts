import { setTimeout as sleep } from 'node:timers/promises';
import { type Dispatcher, request } from 'undici';
import { TokenEndpointError } from './errors.ts';

export interface HttpOptions {
  dispatcher: Dispatcher;
  /** Per-request timeout, ms. */
  timeoutMs: number;
  /** Requests made at most for one operation (retryable faults only). */
  maxAttempts: number;
  /** Waits between attempts; tests pass one that records instead of waiting. */
  sleep?: (ms: number) => Promise<unknown>;
  /** The backoff's jitter, in [0, 1). */
  random?: () => number;
}

export interface FormResponse {
  status: number;
  contentType: string;
  body: string;
  attempts: number;
  /** Seconds the server asked us to wait, when it said so. */
  retryAfter: number | undefined;
}

const BASE_DELAY_MS = 250;
const MAX_BACKOFF_MS = 8_000;
/** A `Retry-After` longer than this is not waited for: the job fails with a clear error instead. */
const MAX_RETRY_AFTER_MS = 60_000;
/** A token response is a few kB; a larger body is not one, and is not buffered whole. */
const MAX_BODY_BYTES = 1 << 20;

const USER_AGENT = 'cdse-auth (+https://github.com/cdse-auth/cdse-auth)';

// Rate limits, gateway and server faults pass; 501/505 would only fail again.
export const retryableStatus = (s: number) =>
  s === 408 || s === 429 || (s >= 500 && s !== 501 && s !== 505);

/**
 * POSTs a form and answers the last response. Network faults, 408/429 and 5xx are retried with
 * exponential backoff and full jitter, honouring `Retry-After`; everything else is returned at
 * once, because a rejected credential must never be sent twice.
 */
export async function postForm(
  url: string,
  form: Record<string, string>,
  options: HttpOptions,
): Promise<FormResponse> {
  return sendWithRetry(
    url,
    {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    },
    options,
  );
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'DELETE';
  /** Sent besides `accept: application/json` and the user agent. */
  headers?: Record<string, string>;
  body?: string;
}

export interface RetryOptions extends HttpOptions {
  /** The error for a server that never answered; the default names the token endpoint. */
  unreachable?: (message: string, attempts: number) => Error;
}

/**
 * Any JSON API request, with `postForm`'s retry rules: the caller decides whether the method is
 * safe to repeat after a fault (a request may have been served when its answer was lost).
 */
export async function sendWithRetry(
  url: string,
  init: HttpRequest,
  options: RetryOptions,
): Promise<FormResponse> {
  const wait = options.sleep ?? sleep;
  for (let attempt = 1; ; attempt++) {
    let delayMs: number;
    try {
      const response = await send(url, init, options);
      const retryAfter = parseRetryAfter(response.retryAfter);
      const giveUp =
        !retryableStatus(response.status) ||
        attempt >= options.maxAttempts ||
        (retryAfter !== undefined && retryAfter * 1000 > MAX_RETRY_AFTER_MS);
      if (giveUp) return { ...response, attempts: attempt, retryAfter };
      delayMs = retryAfter !== undefined ? retryAfter * 1000 : backoff(attempt, options.random);
    } catch (error) {
      const permanent = permanentFault(error);
      if (attempt >= options.maxAttempts || permanent) {
        const tries = `after ${attempt} attempt${attempt === 1 ? '' : 's'}`;
        const message = `Could not reach ${new URL(url).host}: ${describeNetworkError(error)} (${tries}).${permanent ? ` ${permanent}` : ''}`;
        throw options.unreachable
          ? options.unreachable(message, attempt)
          : new TokenEndpointError(message, { attempts: attempt, retryable: !permanent });
      }
      delayMs = backoff(attempt, options.random);
    }
    await wait(delayMs);
  }
}

async function send(url: string, init: HttpRequest, options: HttpOptions) {
  const response = await request(url, {
    method: init.method,
    dispatcher: options.dispatcher,
    headers: {
      ...init.headers,
      accept: 'application/json',
      'user-agent': USER_AGENT,
    },
    ...(init.body !== undefined && { body: init.body }),
    signal: AbortSignal.timeout(options.timeoutMs),
  });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      response.body.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return {
    status: response.statusCode,
    contentType: String(response.headers['content-type'] ?? ''),
    body: Buffer.concat(chunks).toString('utf8'),
    retryAfter: response.headers['retry-after'],
  };
}

/** For an error message: how hard we tried (` after 3 attempts`) and what the server asked. */
export function attemptsNote(response: Pick<FormResponse, 'attempts' | 'retryAfter'>) {
  return {
    tries: response.attempts > 1 ? ` after ${response.attempts} attempts` : '',
    wait:
      response.retryAfter !== undefined
        ? `; the server asks to retry after ${response.retryAfter} s`
        : '',
  };
}

function backoff(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, BASE_DELAY_MS * 2 ** (attempt - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}

const errorCode = (error: unknown): string | undefined =>
  (error as { code?: string })?.code ?? (error as { cause?: { code?: string } })?.cause?.code;

// A name that does not resolve or a certificate that is not trusted fails the same way every
// time: say what to check instead of retrying it for half a minute.
const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/** What to check, for a fault that retrying cannot fix; undefined for one it might. */
function permanentFault(error: unknown): string | undefined {
  const code = errorCode(error);
  if (code === 'ENOTFOUND') return 'Check the host name in the URL (not retried).';
  if (code && TLS_CODES.has(code)) {
    return "The server's TLS certificate is not trusted here: a proxy that inspects TLS needs its CA in NODE_EXTRA_CA_CERTS (not retried).";
  }
  return undefined;
}

/** `Retry-After` as seconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim());
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function describeNetworkError(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError') return 'the request timed out';
    const code = errorCode(error);
    return code ? `${code}` : error.message;
  }
  return String(error);
}
