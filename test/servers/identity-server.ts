// A CDSE-compatible Keycloak token endpoint built from the facts in
// shared/reference/cdse-identity.md. Only Node built-ins: it is also the embedded identity
// server of `npm run demo`, and its TOTP check must stay independent of the client's library.
//
// Test hooks, beyond the plain Keycloak behaviour:
// - `inject(...faults)`: each fault answers one later request. A request takes the first
//   queued fault whose `on` (grant names or 'logout'; absent = any request) matches it, so a
//   fault aimed at refreshes waits while logins pass. Besides transport faults there are
//   hostile answers: `echo` (secrets reflected into the error), `tamper` (a real success with
//   fields overridden), and `status` with a `json` body of arbitrary content.
// - Lifetimes: `accessLifetime`, `refreshLifetime` (idle), `sessionMaxSeconds` (SSO Session
//   Max, counted from the login), all on the injectable `now`.
// - Sessions: `sessionIds()`, `sessionOf(token)`, `sessionInfo(id)`, `endSession(id)`, and
//   `requests[i].session`, so tests can tell which login a token or request belongs to.
// - Rotation: `rotateRefreshTokens`, `refreshTokenMaxReuse`, `onRefreshReuse`.
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer, listenOnLoopback } from './loopback.ts';

export interface IdentityUser {
  username: string;
  password: string;
  /** base32 RFC 6238 secret; when set the password grant requires `totp` (or `otp`). */
  totpSecret?: string;
}

export interface IdentityClient {
  clientId: string;
  /** Absent = public client. */
  clientSecret?: string;
  /** May use client_credentials. */
  serviceAccount?: boolean;
}

/** What a fault can be aimed at: a token grant, or the logout endpoint. */
export type FaultTarget = 'password' | 'refresh_token' | 'client_credentials' | 'logout';

/**
 * How `echo` reflects what the client sent:
 * - 'body': the raw form-encoded request body (`password=correct+horse%40battery&...`).
 * - 'secret': the request's secret as sent (password, else client_secret, else
 *   refresh_token, else the HTTP Basic secret), plain JSON string escaping.
 * - 'secret-json': the secret's JSON string literal as the value, quotes included, so the
 *   parsed field reads `"p\"w"` for `p"w`: a mask of the exact secret misses it.
 * - 'secret-unicode': the secret, every character written as `\uXXXX` in the raw body: the
 *   parsed value is the secret, the raw text never contains it verbatim.
 */
export type EchoVariant = 'body' | 'secret' | 'secret-json' | 'secret-unicode';

export type Fault = (
  | {
      kind: 'status';
      status: number;
      retryAfter?: string;
      /** Raw body, sent as is. */
      body?: string;
      /** Any value, sent as JSON (e.g. an OAuth error with newlines or megabytes). */
      json?: unknown;
      contentType?: string;
    }
  | { kind: 'html' }
  | { kind: 'invalid-json' }
  | { kind: 'truncated' }
  | { kind: 'no-access-token' }
  | { kind: 'reset' }
  | { kind: 'delay'; ms: number }
  | {
      /** Rejects the request (nothing is checked, no session is made), reflecting its secret. */
      kind: 'echo';
      /** Default 'body'. */
      variant?: EchoVariant;
      /** Default: error_description for 'body', error for the secret variants. */
      into?: 'error' | 'error_description';
      /** Default 401, Keycloak's status for a rejected password. */
      status?: number;
    }
  | {
      /**
       * The request is served for real (session, counts, rotation as usual); if it succeeds the
       * JSON answer gets these overrides. `undefined` deletes a field. Default `on`: the three
       * grants (a logout answer has no body to tamper with). A failed grant is sent unchanged.
       */
      kind: 'tamper';
      set?: Record<string, unknown>;
      /** Raw JSON text per field, for values JSON.stringify cannot make (`1e999`, `-0`). */
      raw?: Record<string, string>;
      /**
       * Default true: a forged string access_token/refresh_token stands for the real one
       * (sessionOf, accessTokenValid, refresh and logout accept it), so a client can carry on.
       * False: the forged tokens are unknown, as a real Keycloak would find them.
       */
      acceptForged?: boolean;
    }
) & { on?: FaultTarget | FaultTarget[] };

export interface IdentityServerOptions {
  port?: number;
  users?: IdentityUser[];
  clients?: IdentityClient[];
  accessLifetime?: number;
  /** 0 => refresh tokens never expire and responses carry refresh_expires_in: 0. */
  refreshLifetime?: number;
  rotateRefreshTokens?: boolean;
  omitOptionalFields?: boolean;
  clientCredentialsRefreshToken?: boolean;
  /**
   * Keycloak's refreshTokenMaxReuse (rotation only): how many more times the token last used
   * may be used again. Default 0.
   */
  refreshTokenMaxReuse?: number;
  /**
   * What a rejected reuse (rotation only) does to the session. 'reject-token' (default): only
   * that request fails. 'detach-session': Keycloak's real behaviour (TokenManager detaches the
   * client session), so every later refresh of the session answers 400 invalid_grant "Session
   * doesn't have required client"; logout still ends it, and it still counts as active, as
   * Keycloak keeps the empty user session until it expires.
   */
  onRefreshReuse?: 'reject-token' | 'detach-session';
  /**
   * Keycloak's SSO Session Max: the session ends this long after its login, whatever refreshes
   * happened. As in Keycloak, token lifetimes (exp, expires_in, refresh_expires_in) are cut to
   * the session's end, so a refresh after it answers 400 invalid_grant "Token is not active".
   * Absent or 0: no maximum.
   */
  sessionMaxSeconds?: number;
  /** CDSE allows 100 active sessions per user; lower it to test the cap cheaply. */
  maxSessionsPerUser?: number;
  now?: () => number;
}

export interface IdentityCounts {
  password: number;
  refresh_token: number;
  client_credentials: number;
  logout: number;
  other: number;
  total: number;
}

export interface IdentityRequest {
  path: string;
  grant?: string;
  status: number;
  fault?: string;
  headers: Record<string, string | string[] | undefined>;
  form: Record<string, string>;
  /** The session the request created or named by its token, when there was one. */
  session?: string;
}

export interface SessionInfo {
  id: string;
  username: string;
  clientId: string;
  /** `now()` at the login. */
  startedAt: number;
  active: boolean;
  /** A rejected reuse detached it (onRefreshReuse 'detach-session'). */
  detached: boolean;
  /** Token and logout requests that created the session or named one of its tokens. */
  requests: number;
  /** Successful refreshes. */
  refreshes: number;
}

interface Session {
  id: string;
  subject: string;
  username: string;
  clientId: string;
  startedAt: number;
  /** SSO Session Max end; Infinity without a maximum. */
  maxEndsAt: number;
  ended: boolean;
  detached: boolean;
  expiresAt: number;
  /** Keycloak's clientSession.currentRefreshToken and its use count. */
  currentRefresh?: RefreshRecord;
  currentUses: number;
  /** Issue sequence number of the last refresh (Keycloak's clientSession timestamp). */
  refreshedSeq: number;
  requests: number;
  refreshes: number;
}

interface RefreshRecord {
  sessionId: string;
  clientId: string;
  expiresAt: number;
  /**
   * Issue order. Keycloak compares whole seconds, so it lets an older token through when it
   * was issued in the same second as the last refresh; ordering instead keeps frozen-clock
   * tests deterministic.
   */
  seq: number;
}

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

const REALM_PATH = '/auth/realms/CDSE';
const TOKEN_PATH = `${REALM_PATH}/protocol/openid-connect/token`;
const LOGOUT_PATH = `${REALM_PATH}/protocol/openid-connect/logout`;
const DISCOVERY_PATH = `${REALM_PATH}/.well-known/openid-configuration`;
const SCOPE = 'AUDIENCE_PUBLIC email profile user-context';
const TOTP_STEP_SECONDS = 30;
const TOTP_DIGITS = 6;
// Keycloak's default look-around window: one step either side of the current one.
const TOTP_WINDOW = 1;
const MAX_BODY_BYTES = 1 << 20;

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32Decode(input: string): Buffer {
  const clean = input.replace(/[\s=-]/g, '').toUpperCase();
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const index = BASE32_ALPHABET.indexOf(ch);
    if (index < 0) throw new Error('invalid base32 secret');
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  if (out.length === 0) throw new Error('empty base32 secret');
  return Buffer.from(out);
}

function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32_ALPHABET[(value >>> bits) & 31];
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

// RFC 4226 HOTP with RFC 6238 time steps.
function hotp(key: Buffer, counter: number, digits = TOTP_DIGITS): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', key).update(message).digest();
  const offset = (mac[mac.length - 1] ?? 0) & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

function timeStep(timeMs: number): number {
  return Math.floor(timeMs / 1000 / TOTP_STEP_SECONDS);
}

/** The current RFC 6238 code (HMAC-SHA1, 6 digits, 30 s step) for a base32 secret. */
export function totpCode(base32Secret: string, timeMs: number = Date.now()): string {
  return hotp(base32Decode(base32Secret), timeStep(timeMs));
}

/** A fresh 160-bit secret in base32, as authenticator apps expect. */
export function randomBase32Secret(): string {
  return base32Encode(randomBytes(20));
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

// Hashing first makes the comparison constant-time regardless of the lengths involved.
function secretEquals(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return {
    status,
    headers: {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      pragma: 'no-cache',
      ...headers,
    },
    body: JSON.stringify(body),
  };
}

function oauthError(status: number, error: string, description: string): Reply {
  return json(status, { error, error_description: description });
}

const invalidClient = (): Reply =>
  oauthError(401, 'invalid_client', 'Invalid client or Invalid client credentials');
const invalidUserCredentials = (): Reply =>
  oauthError(401, 'invalid_grant', 'Invalid user credentials');
const wafRateLimit = (): Reply =>
  json(429, { error: 'WAF', message: 'Rate limit exceeded', status: 429 });

function htmlPage(status: number, title: string): string {
  return `<!DOCTYPE html>\n<html><head><title>${status} ${title}</title></head><body><h1>${status} ${title}</h1><hr><center>nginx</center></body></html>\n`;
}

function formFromBody(req: IncomingMessage, body: string): Record<string, string> {
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  if (!type.startsWith('application/x-www-form-urlencoded')) return {};
  const form: Record<string, string> = {};
  // First occurrence wins, so a duplicated field cannot override what came first.
  for (const [key, value] of new URLSearchParams(body)) {
    if (!(key in form)) form[key] = value;
  }
  return form;
}

const TAMPER_TARGETS: FaultTarget[] = ['password', 'refresh_token', 'client_credentials'];

function faultApplies(fault: Fault, target: FaultTarget | undefined): boolean {
  const on = fault.on ?? (fault.kind === 'tamper' ? TAMPER_TARGETS : undefined);
  if (on === undefined) return true;
  if (target === undefined) return false;
  return Array.isArray(on) ? on.includes(target) : on === target;
}

function basicSecret(req: IncomingMessage): string | undefined {
  const match = /^Basic\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (match?.[1] === undefined) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

// JSON.stringify escapes only what it must; writing every character as \uXXXX keeps the
// parsed value while the raw text no longer contains the secret anywhere.
function unicodeEscaped(text: string): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    out += `\\u${text.charCodeAt(i).toString(16).padStart(4, '0')}`;
  }
  return `${out}"`;
}

function echoReply(
  fault: Extract<Fault, { kind: 'echo' }>,
  rawBody: string,
  form: Record<string, string>,
  req: IncomingMessage,
): Reply {
  const variant = fault.variant ?? 'body';
  const into = fault.into ?? (variant === 'body' ? 'error_description' : 'error');
  const secret =
    form.password ?? form.client_secret ?? form.refresh_token ?? basicSecret(req) ?? '';
  const other = into === 'error' ? 'error_description' : 'error';
  const fields: Record<string, string> = {
    error: 'invalid_grant',
    error_description: 'Invalid user credentials',
  };
  let rawValue: string;
  if (variant === 'body') rawValue = JSON.stringify(rawBody);
  else if (variant === 'secret') rawValue = JSON.stringify(secret);
  else if (variant === 'secret-json') rawValue = JSON.stringify(JSON.stringify(secret));
  else rawValue = unicodeEscaped(secret);
  // Written by hand so the echoed value keeps the exact escaping its variant chose.
  const body = `{${JSON.stringify(into)}:${rawValue},${JSON.stringify(other)}:${JSON.stringify(fields[other])}}`;
  return {
    status: fault.status ?? 401,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    body,
  };
}

type ClientAuth = { ok: true; client: IdentityClient } | { ok: false; reply: Reply };

export class IdentityServer {
  readonly origin: string;
  readonly issuer: string;
  readonly tokenUrl: string;
  readonly logoutUrl: string;
  readonly counts: IdentityCounts = {
    password: 0,
    refresh_token: 0,
    client_credentials: 0,
    logout: 0,
    other: 0,
    total: 0,
  };
  readonly requests: IdentityRequest[] = [];

  readonly #server: Server;
  readonly #now: () => number;
  #accessLifetime: number;
  readonly #refreshLifetime: number;
  readonly #rotate: boolean;
  readonly #maxReuse: number;
  readonly #reuseDetaches: boolean;
  readonly #sessionMaxMs: number;
  readonly #omitOptional: boolean;
  readonly #ccRefresh: boolean;
  readonly #maxSessions: number;
  readonly #signingKey = randomBytes(32);
  readonly #keyId = randomUUID();
  readonly #users = new Map<string, IdentityUser>();
  readonly #clients = new Map<string, IdentityClient>();
  readonly #subjects = new Map<string, string>();
  readonly #usedTotpSteps = new Map<string, Set<number>>();
  readonly #sessions = new Map<string, Session>();
  readonly #refreshTokens = new Map<string, RefreshRecord>();
  readonly #accessTokens = new Map<string, { sessionId: string; expiresAt: number }>();
  readonly #faults: Fault[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  #seq = 0;
  // The request being served; set only for the synchronous span of one grant or logout.
  #entry: IdentityRequest | undefined;
  #closed = false;

  private constructor(server: Server, options: IdentityServerOptions) {
    this.#server = server;
    const { port } = server.address() as AddressInfo;
    this.origin = `http://127.0.0.1:${port}`;
    this.issuer = this.origin + REALM_PATH;
    this.tokenUrl = this.origin + TOKEN_PATH;
    this.logoutUrl = this.origin + LOGOUT_PATH;
    this.#now = options.now ?? Date.now;
    this.#accessLifetime = options.accessLifetime ?? 600;
    this.#refreshLifetime = options.refreshLifetime ?? 3600;
    this.#rotate = options.rotateRefreshTokens ?? false;
    this.#maxReuse = options.refreshTokenMaxReuse ?? 0;
    this.#reuseDetaches = options.onRefreshReuse === 'detach-session';
    const max = options.sessionMaxSeconds ?? 0;
    this.#sessionMaxMs = max > 0 ? max * 1000 : Number.POSITIVE_INFINITY;
    this.#omitOptional = options.omitOptionalFields ?? false;
    this.#ccRefresh = options.clientCredentialsRefreshToken ?? false;
    this.#maxSessions = options.maxSessionsPerUser ?? 100;
    for (const user of options.users ?? []) this.addUser(user);
    for (const client of options.clients ?? [{ clientId: 'cdse-public' }]) this.addClient(client);
  }

  static async start(options: IdentityServerOptions = {}): Promise<IdentityServer> {
    const server = await listenOnLoopback(options.port);
    const identity = new IdentityServer(server, options);
    server.on('request', (req, res) => identity.#handle(req, res));
    return identity;
  }

  /** Access tokens issued from now on live this long (s): a test can expire one set, not the next. */
  setAccessLifetime(seconds: number): void {
    this.#accessLifetime = seconds;
  }

  inject(...faults: Fault[]): void {
    this.#faults.push(...faults);
  }

  addUser(user: IdentityUser): void {
    if (user.totpSecret !== undefined) base32Decode(user.totpSecret);
    this.#users.set(user.username, { ...user });
  }

  addClient(client: IdentityClient): void {
    this.#clients.set(client.clientId, { ...client });
  }

  activeSessions(): number {
    let count = 0;
    const now = this.#now();
    for (const session of this.#sessions.values()) if (this.#isActive(session, now)) count++;
    return count;
  }

  endAllSessions(): void {
    for (const session of this.#sessions.values()) session.ended = true;
  }

  /** Ids of the active sessions, in login order. */
  sessionIds(): string[] {
    const now = this.#now();
    return [...this.#sessions.values()].filter((s) => this.#isActive(s, now)).map((s) => s.id);
  }

  /** The session (its `session_state`) an access or refresh token of this server belongs to. */
  sessionOf(token: string): string | undefined {
    return this.#refreshTokens.get(token)?.sessionId ?? this.#accessTokens.get(token)?.sessionId;
  }

  sessionInfo(id: string): SessionInfo | undefined {
    const session = this.#sessions.get(id);
    if (session === undefined) return undefined;
    return {
      id: session.id,
      username: session.username,
      clientId: session.clientId,
      startedAt: session.startedAt,
      active: this.#isActive(session, this.#now()),
      detached: session.detached,
      requests: session.requests,
      refreshes: session.refreshes,
    };
  }

  /** Ends one session, as an admin would: its refresh then answers "Session not active". */
  endSession(id: string): boolean {
    const session = this.#sessions.get(id);
    if (session === undefined) return false;
    session.ended = true;
    return true;
  }

  /** True while an access token this server issued is unexpired (resource servers check only the JWT). */
  accessTokenValid(token: string): boolean {
    const record = this.#accessTokens.get(token);
    return record !== undefined && this.#now() < record.expiresAt;
  }

  /** The user a valid access token belongs to: how a resource server (the S3 keys peer) checks a bearer. */
  userOf(accessToken: string): string | undefined {
    if (!this.accessTokenValid(accessToken)) return undefined;
    const session = this.sessionOf(accessToken);
    return session === undefined ? undefined : this.sessionInfo(session)?.username;
  }

  resetCounts(): void {
    for (const key of Object.keys(this.counts) as Array<keyof IdentityCounts>) this.counts[key] = 0;
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await closeServer(this.#server, this.#timers);
  }

  #isActive(session: Session, now: number): boolean {
    return !session.ended && now < session.expiresAt && now < session.maxEndsAt;
  }

  #touch(session: Session): void {
    session.requests++;
    if (this.#entry !== undefined) this.#entry.session = session.id;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('error', () => req.socket.destroy());
    req.on('end', () => {
      const body = tooLarge ? '' : Buffer.concat(chunks).toString('utf8');
      this.#dispatch(req, res, body, tooLarge);
    });
  }

  #dispatch(req: IncomingMessage, res: ServerResponse, body: string, tooLarge: boolean): void {
    const path = new URL(req.url ?? '/', this.origin).pathname;
    const form = formFromBody(req, body);
    const entry: IdentityRequest = { path, status: 0, headers: { ...req.headers }, form };
    this.requests.push(entry);

    const isToken = path === TOKEN_PATH;
    const isLogout = path === LOGOUT_PATH;
    if (!isToken && !isLogout) {
      const reply =
        path === DISCOVERY_PATH && req.method === 'GET'
          ? json(200, this.#discovery())
          : json(404, {
              error: 'Unable to find matching target resource method',
              error_description: 'For more on this error consult the server log.',
            });
      this.#send(res, entry, reply);
      return;
    }

    let target: FaultTarget | undefined;
    if (isToken) {
      const grant = form.grant_type;
      if (grant !== undefined) entry.grant = grant;
      if (grant === 'password' || grant === 'refresh_token' || grant === 'client_credentials') {
        this.counts[grant]++;
        target = grant;
      } else {
        this.counts.other++;
      }
    } else {
      this.counts.logout++;
      target = 'logout';
    }
    this.counts.total++;

    const run = (): Reply => {
      if (req.method !== 'POST') {
        return json(405, { error: 'HTTP 405 Method Not Allowed' }, { allow: 'POST' });
      }
      if (tooLarge) return json(413, { error: 'Request Entity Too Large' });
      this.#entry = entry;
      try {
        return isToken ? this.#token(form, req) : this.#logout(form, req);
      } finally {
        this.#entry = undefined;
      }
    };

    const index = this.#faults.findIndex((f) => faultApplies(f, target));
    if (index < 0) {
      this.#send(res, entry, run());
      return;
    }
    const [fault] = this.#faults.splice(index, 1) as [Fault];
    entry.fault = fault.kind;
    this.#applyFault(fault, res, entry, run, { body, form, req });
  }

  #applyFault(
    fault: Fault,
    res: ServerResponse,
    entry: IdentityRequest,
    run: () => Reply,
    request: { body: string; form: Record<string, string>; req: IncomingMessage },
  ): void {
    switch (fault.kind) {
      case 'status': {
        const headers: Record<string, string> = {};
        if (fault.retryAfter !== undefined) headers['retry-after'] = fault.retryAfter;
        let body: string;
        let contentType: string;
        if (fault.status === 429) {
          body = JSON.stringify({ error: 'WAF', message: 'Rate limit exceeded', status: 429 });
          contentType = 'application/json';
        } else if (fault.status >= 500) {
          body = htmlPage(fault.status, 'Server Error');
          contentType = 'text/html';
        } else {
          body = JSON.stringify({ error: 'fault', status: fault.status });
          contentType = 'application/json';
        }
        if (fault.json !== undefined) {
          body = JSON.stringify(fault.json);
          contentType = 'application/json';
        }
        headers['content-type'] = fault.contentType ?? contentType;
        this.#send(res, entry, { status: fault.status, headers, body: fault.body ?? body });
        return;
      }
      case 'echo':
        this.#send(res, entry, echoReply(fault, request.body, request.form, request.req));
        return;
      case 'tamper':
        this.#send(res, entry, this.#tamper(fault, run()));
        return;
      case 'html':
        this.#send(res, entry, {
          status: 200,
          headers: { 'content-type': 'text/html; charset=utf-8' },
          body: '<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form method="post"><input name="username"><input name="password" type="password"></form></body></html>\n',
        });
        return;
      case 'invalid-json':
        this.#send(res, entry, {
          status: 200,
          headers: { 'content-type': 'application/json' },
          body: '{"access_token": "eyJhbGciOi',
        });
        return;
      case 'truncated': {
        const full = JSON.stringify({
          access_token: this.#jwt({ typ: 'Bearer' }),
          expires_in: this.#accessLifetime,
          token_type: 'Bearer',
        });
        const sent = full.slice(0, Math.floor(full.length / 2));
        entry.status = 200;
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(full)),
        });
        const socket = res.socket;
        res.write(sent, () => socket?.end());
        return;
      }
      case 'no-access-token':
        this.#send(
          res,
          entry,
          json(200, {
            expires_in: this.#accessLifetime,
            refresh_expires_in: this.#refreshLifetime,
            token_type: 'Bearer',
            'not-before-policy': 0,
            scope: SCOPE,
          }),
        );
        return;
      case 'reset':
        entry.status = 0;
        res.socket?.destroy();
        return;
      case 'delay': {
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          if (!this.#closed) this.#send(res, entry, run());
        }, fault.ms);
        this.#timers.add(timer);
        return;
      }
    }
  }

  #tamper(fault: Extract<Fault, { kind: 'tamper' }>, reply: Reply): Reply {
    if (reply.status !== 200 || reply.body === undefined) return reply;
    const real = JSON.parse(reply.body) as Record<string, unknown>;
    const forged: Record<string, unknown> = { ...real, ...fault.set };
    const raw = fault.raw ?? {};
    for (const key of Object.keys(raw)) delete forged[key];
    if (fault.acceptForged ?? true) {
      const access = this.#accessTokens.get(String(real.access_token));
      if (access !== undefined && typeof forged.access_token === 'string') {
        this.#accessTokens.set(forged.access_token, access);
      }
      const refresh = this.#refreshTokens.get(String(real.refresh_token));
      // The same record object, so rotation treats the forged and the real token as one.
      if (refresh !== undefined && typeof forged.refresh_token === 'string') {
        this.#refreshTokens.set(forged.refresh_token, refresh);
      }
    }
    const parts = Object.entries(raw).map(([key, text]) => `${JSON.stringify(key)}:${text}`);
    let body = JSON.stringify(forged);
    if (parts.length > 0)
      body = `${body.slice(0, -1)}${body === '{}' ? '' : ','}${parts.join(',')}}`;
    return { ...reply, body };
  }

  #send(res: ServerResponse, entry: IdentityRequest, reply: Reply): void {
    entry.status = reply.status;
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(reply.status, reply.headers ?? {});
    res.end(reply.body ?? '');
  }

  #discovery(): Record<string, unknown> {
    return {
      issuer: this.issuer,
      token_endpoint: this.tokenUrl,
      end_session_endpoint: this.logoutUrl,
      grant_types_supported: ['password', 'refresh_token', 'client_credentials'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    };
  }

  // Keycloak authenticates the client (form fields or HTTP Basic) before looking at the grant.
  #authenticateClient(form: Record<string, string>, req: IncomingMessage): ClientAuth {
    let clientId = form.client_id;
    let clientSecret = form.client_secret;
    const authorization = req.headers.authorization;
    if (authorization !== undefined) {
      const match = /^Basic\s+(\S+)\s*$/i.exec(authorization);
      if (match?.[1] === undefined) return { ok: false, reply: invalidClient() };
      const decoded = Buffer.from(match[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return { ok: false, reply: invalidClient() };
      let basicId: string;
      let basicSecret: string;
      try {
        // RFC 6749 2.3.1: both parts are form-urlencoded before being joined.
        basicId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
        basicSecret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
      } catch {
        return { ok: false, reply: invalidClient() };
      }
      if (clientId !== undefined && clientId !== basicId) {
        return { ok: false, reply: invalidClient() };
      }
      clientId = basicId;
      clientSecret = basicSecret;
    }
    if (clientId === undefined || clientId === '') {
      return {
        ok: false,
        reply: oauthError(400, 'invalid_request', 'Missing parameter: client_id'),
      };
    }
    const client = this.#clients.get(clientId);
    if (client === undefined) return { ok: false, reply: invalidClient() };
    if (client.clientSecret !== undefined) {
      if (clientSecret === undefined || !secretEquals(clientSecret, client.clientSecret)) {
        return { ok: false, reply: invalidClient() };
      }
    }
    return { ok: true, client };
  }

  #token(form: Record<string, string>, req: IncomingMessage): Reply {
    const grant = form.grant_type;
    if (grant === undefined || grant === '') {
      return oauthError(400, 'invalid_request', 'Missing form parameter: grant_type');
    }
    if (grant !== 'password' && grant !== 'refresh_token' && grant !== 'client_credentials') {
      return oauthError(400, 'unsupported_grant_type', 'Unsupported grant_type');
    }
    const auth = this.#authenticateClient(form, req);
    if (!auth.ok) return auth.reply;
    if (grant === 'password') return this.#passwordGrant(form, auth.client);
    if (grant === 'refresh_token') return this.#refreshGrant(form, auth.client);
    return this.#clientCredentialsGrant(auth.client);
  }

  #passwordGrant(form: Record<string, string>, client: IdentityClient): Reply {
    const { username, password } = form;
    if (username === undefined || username === '') {
      return oauthError(400, 'invalid_request', 'Missing parameter: username');
    }
    if (password === undefined) {
      return oauthError(400, 'invalid_request', 'Missing parameter: password');
    }
    const user = this.#users.get(username);
    if (user === undefined || !secretEquals(password, user.password)) {
      return invalidUserCredentials();
    }
    const now = this.#now();
    let usedStep: number | undefined;
    if (user.totpSecret !== undefined) {
      const code = form.totp ?? form.otp;
      if (code === undefined) return invalidUserCredentials();
      const key = base32Decode(user.totpSecret);
      const current = timeStep(now);
      const used = this.#usedTotpSteps.get(username) ?? new Set<number>();
      for (let offset = -TOTP_WINDOW; offset <= TOTP_WINDOW; offset++) {
        const step = current + offset;
        if (secretEquals(code, hotp(key, step))) {
          usedStep = step;
          break;
        }
      }
      // Keycloak refuses a code that already logged in once, even inside its window.
      if (usedStep === undefined || used.has(usedStep)) return invalidUserCredentials();
    }
    const subject = username;
    if (this.#activeSessionsOf(subject, now) >= this.#maxSessions) return wafRateLimit();
    if (usedStep !== undefined) this.#markTotpUsed(username, usedStep, now);
    return this.#issue(this.#newSession(subject, username, client.clientId, now), client, true);
  }

  #markTotpUsed(username: string, step: number, now: number): void {
    const used = this.#usedTotpSteps.get(username) ?? new Set<number>();
    used.add(step);
    // Steps older than the window can never match again, so forgetting them is safe.
    const oldest = timeStep(now) - TOTP_WINDOW;
    for (const s of used) if (s < oldest) used.delete(s);
    this.#usedTotpSteps.set(username, used);
  }

  #refreshGrant(form: Record<string, string>, client: IdentityClient): Reply {
    const token = form.refresh_token;
    if (token === undefined || token === '') {
      return oauthError(400, 'invalid_request', 'Missing form parameter: refresh_token');
    }
    const record = this.#refreshTokens.get(token);
    if (record === undefined) return oauthError(400, 'invalid_grant', 'Invalid refresh token');
    const session = this.#sessions.get(record.sessionId);
    if (session !== undefined) this.#touch(session);
    if (record.clientId !== client.clientId) {
      return oauthError(400, 'invalid_grant', 'Unmatching clients');
    }
    const now = this.#now();
    if (now >= record.expiresAt) return oauthError(400, 'invalid_grant', 'Token is not active');
    if (session === undefined || !this.#isActive(session, now)) {
      return oauthError(400, 'invalid_grant', 'Session not active');
    }
    if (session.detached) {
      return oauthError(400, 'invalid_grant', "Session doesn't have required client");
    }
    if (this.#rotate) {
      const reuse = this.#reuseError(session, record);
      if (reuse !== undefined) {
        if (this.#reuseDetaches) session.detached = true;
        return oauthError(400, 'invalid_grant', reuse);
      }
    }
    session.refreshedSeq = ++this.#seq;
    session.refreshes++;
    return this.#issue(session, client, true);
  }

  // Keycloak's TokenManager.validateTokenReuse, with issue order in place of seconds.
  #reuseError(session: Session, record: RefreshRecord): string | undefined {
    const current = session.currentRefresh;
    if (current !== undefined && current !== record && record.seq < session.refreshedSeq) {
      return 'Stale token';
    }
    if (current !== record) {
      session.currentRefresh = record;
      session.currentUses = 0;
    }
    if (session.currentUses > this.#maxReuse) {
      return 'Maximum allowed refresh token reuse exceeded';
    }
    session.currentUses++;
    return undefined;
  }

  #clientCredentialsGrant(client: IdentityClient): Reply {
    if (client.clientSecret === undefined) {
      return oauthError(
        400,
        'unauthorized_client',
        'Public client not allowed to retrieve service account',
      );
    }
    if (client.serviceAccount !== true) {
      return oauthError(
        400,
        'unauthorized_client',
        'Client not enabled to retrieve service account',
      );
    }
    const now = this.#now();
    const username = `service-account-${client.clientId}`;
    if (this.#activeSessionsOf(username, now) >= this.#maxSessions) return wafRateLimit();
    const session = this.#newSession(username, username, client.clientId, now);
    return this.#issue(session, client, this.#ccRefresh);
  }

  #logout(form: Record<string, string>, req: IncomingMessage): Reply {
    const auth = this.#authenticateClient(form, req);
    if (!auth.ok) return auth.reply;
    const token = form.refresh_token;
    if (token === undefined || token === '') {
      return oauthError(400, 'invalid_request', 'Missing parameter: refresh_token');
    }
    const record = this.#refreshTokens.get(token);
    if (record === undefined) return oauthError(400, 'invalid_grant', 'Invalid refresh token');
    if (record.clientId !== auth.client.clientId) {
      return oauthError(400, 'invalid_grant', 'Invalid refresh token');
    }
    const now = this.#now();
    const session = this.#sessions.get(record.sessionId);
    if (session !== undefined) this.#touch(session);
    if (now >= record.expiresAt) return oauthError(400, 'invalid_grant', 'Token is not active');
    if (session === undefined || !this.#isActive(session, now)) {
      return oauthError(400, 'invalid_grant', 'Session not active');
    }
    session.ended = true;
    return { status: 204, headers: { 'cache-control': 'no-store' } };
  }

  #activeSessionsOf(subject: string, now: number): number {
    let count = 0;
    for (const session of this.#sessions.values()) {
      if (session.subject === subject && this.#isActive(session, now)) count++;
    }
    return count;
  }

  #newSession(subject: string, username: string, clientId: string, now: number): Session {
    const session: Session = {
      id: randomUUID(),
      subject,
      username,
      clientId,
      startedAt: now,
      maxEndsAt: now + this.#sessionMaxMs,
      ended: false,
      detached: false,
      // Without a refresh token nothing can extend the session past the access token.
      expiresAt: now + this.#accessLifetime * 1000,
      currentUses: 0,
      refreshedSeq: ++this.#seq,
      requests: 0,
      refreshes: 0,
    };
    this.#sessions.set(session.id, session);
    this.#touch(session);
    return session;
  }

  #subjectId(username: string): string {
    let id = this.#subjects.get(username);
    if (id === undefined) {
      id = randomUUID();
      this.#subjects.set(username, id);
    }
    return id;
  }

  #jwt(claims: Record<string, unknown>): string {
    const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: this.#keyId }));
    const payload = base64url(JSON.stringify({ jti: randomUUID(), ...claims }));
    const signature = createHmac('sha256', this.#signingKey)
      .update(`${header}.${payload}`)
      .digest('base64url');
    return `${header}.${payload}.${signature}`;
  }

  #issue(session: Session, client: IdentityClient, withRefresh: boolean): Reply {
    const now = this.#now();
    const iat = Math.floor(now / 1000);
    const common = {
      iat,
      iss: this.issuer,
      sub: this.#subjectId(session.username),
      azp: client.clientId,
      sid: session.id,
      session_state: session.id,
      scope: SCOPE,
    };
    // Keycloak cuts every token's life to the SSO Session Max (getTokenExpiration).
    const maxExp = Math.floor(session.maxEndsAt / 1000);
    const accessExp = Math.min(iat + this.#accessLifetime, maxExp);
    const accessExpiresAt = Math.min(now + this.#accessLifetime * 1000, session.maxEndsAt);
    const accessToken = this.#jwt({
      exp: accessExp,
      ...common,
      typ: 'Bearer',
      aud: 'account',
      preferred_username: session.username,
    });
    this.#accessTokens.set(accessToken, { sessionId: session.id, expiresAt: accessExpiresAt });
    session.expiresAt = Math.max(session.expiresAt, accessExpiresAt);

    const body: Record<string, unknown> = {
      access_token: accessToken,
      expires_in: accessExp - iat,
    };
    if (withRefresh) {
      const offline = this.#refreshLifetime === 0;
      const exp = Math.min(
        offline ? Number.POSITIVE_INFINITY : iat + this.#refreshLifetime,
        maxExp,
      );
      const never = exp === Number.POSITIVE_INFINITY;
      const expiresAt = Math.min(
        offline ? Number.POSITIVE_INFINITY : now + this.#refreshLifetime * 1000,
        session.maxEndsAt,
      );
      // Offline-style tokens carry no exp claim unless a session maximum bounds them.
      const refreshToken = this.#jwt({
        ...(never ? {} : { exp }),
        ...common,
        typ: offline ? 'Offline' : 'Refresh',
        aud: this.issuer,
      });
      this.#refreshTokens.set(refreshToken, {
        sessionId: session.id,
        clientId: client.clientId,
        expiresAt,
        seq: ++this.#seq,
      });
      session.expiresAt = Math.max(session.expiresAt, expiresAt);
      if (!this.#omitOptional) body.refresh_expires_in = never ? 0 : exp - iat;
      body.refresh_token = refreshToken;
    } else if (!this.#omitOptional) {
      // Keycloak's client_credentials answer says refresh_expires_in: 0 with no refresh token.
      body.refresh_expires_in = 0;
    }
    if (!this.#omitOptional) body.token_type = 'Bearer';
    body['not-before-policy'] = 0;
    body.session_state = session.id;
    if (!this.#omitOptional) body.scope = SCOPE;
    return json(200, body);
  }
}

if (import.meta.main) {
  const port = Number(process.argv[2] ?? 0);
  const totpSecret = randomBase32Secret();
  const server = await IdentityServer.start({
    port: Number.isInteger(port) && port >= 0 ? port : 0,
    users: [
      { username: 'demo@example.com', password: 'demo-password' },
      { username: 'demo-2fa@example.com', password: 'demo-password', totpSecret },
    ],
    clients: [
      { clientId: 'cdse-public' },
      { clientId: 'sh-demo', clientSecret: 'demo-secret', serviceAccount: true },
    ],
  });
  process.stdout.write(
    [
      `token URL:  ${server.tokenUrl}`,
      `logout URL: ${server.logoutUrl}`,
      'users:      demo@example.com / demo-password',
      `            demo-2fa@example.com / demo-password, TOTP secret ${totpSecret}`,
      'clients:    cdse-public (public), sh-demo / demo-secret (client_credentials)',
      '',
    ].join('\n'),
  );
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
