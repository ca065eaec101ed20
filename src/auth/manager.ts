import { Agent, type Dispatcher, EnvHttpProxyAgent } from 'undici';
import { DEFAULT_CLIENT_ID, DEFAULT_TOKEN_URL } from './constants.ts';
import { checkEndpointUrl, logoutUrlFor } from './endpoint.ts';
import {
  type CdseAuthError,
  InvalidCredentialsError,
  SessionExpiredError,
  TokenEndpointError,
} from './errors.ts';
import { type HttpOptions, postForm } from './http.ts';
import { endpointError, requestToken, type TokenResponse } from './oauth.ts';
import type { AuthProvider } from './providers.ts';
import { redactor } from './redact.ts';
import { MemoryTokenStore, type TokenStore } from './store.ts';
import { type GrantType, TokenSet } from './token-set.ts';

export interface TokenManagerOptions {
  tokenUrl?: string;
  /** Default: derived from a Keycloak token URL (`.../token` -> `.../logout`). */
  logoutUrl?: string;
  store?: TokenStore;
  /** Seconds before expiry at which a token counts as expired. */
  expirySkew?: number;
  /** OAuth scope sent with every grant, e.g. `openid offline_access`; none when absent. */
  scope?: string;
  /** Default: honours HTTP(S)_PROXY and NO_PROXY (undici's `EnvHttpProxyAgent`). */
  dispatcher?: Dispatcher;
  /** Seconds per request. */
  timeout?: number;
  /** Requests at most per operation, for retryable faults (network, 408, 429, 5xx). */
  maxAttempts?: number;
  /** Clock in ms; tests move it. */
  now?: () => number;
  /** Waits between retries; tests pass one that does not wait. */
  sleep?: (ms: number) => Promise<unknown>;
  /** The retries' jitter, in [0, 1). */
  random?: () => number;
  /**
   * Called with every secret before it is sent (password, TOTP code, client secret, refresh
   * token) and every token before it is stored or returned, so that a front end can register it
   * with a log masker before any line could show it.
   */
  onSecret?: (value: string) => void;
}

/** A manager that carries on a stored session and never logs in: `TokenManager.storedSession`. */
export interface StoredSessionOptions extends TokenManagerOptions {
  clientId?: string;
  /** Confidential clients send it with every refresh and logout. */
  clientSecret?: string;
}

// Form fields whose values are secrets, whichever grant sends them.
const SECRET_FIELDS = ['password', 'totp', 'client_secret', 'refresh_token'];

/**
 * Obtains an access token and keeps it valid.
 *
 * Renewal order: a stored access token that is still valid; else a refresh grant while the
 * refresh token lives; else (refresh token dead or rejected) a full grant from the provider, if it
 * can log in again, or a `SessionExpiredError`. Concurrent callers share one request, and every
 * renewal runs inside the store's `exclusive` section (across processes for a file store), after
 * re-reading the store: a caller that waited uses what the winner stored. A rejected credential
 * or refresh token is never sent again by this manager.
 */
export class TokenManager {
  /** `undefined` for a manager that only carries on a stored session. */
  readonly provider: AuthProvider | undefined;
  readonly clientId: string;
  readonly tokenUrl: string;
  readonly logoutUrl: string | undefined;
  readonly store: TokenStore;
  readonly expirySkew: number;
  readonly scope: string | undefined;

  readonly #clientSecret: string | undefined;
  readonly #http: Omit<HttpOptions, 'dispatcher'>;
  readonly #now: () => number;
  readonly #onSecret: (value: string) => void;
  #dispatcher: Dispatcher | undefined;
  readonly #ownsDispatcher: boolean;
  #current: TokenSet | undefined;
  #loaded = false;
  #inflight: Promise<TokenSet> | undefined;
  #provided = false;
  #rejected: CdseAuthError | undefined;
  readonly #deadRefreshTokens = new Set<string>();
  readonly #sent = new Set<string>();
  #lastGrant: GrantType | undefined;
  #requests = 0;

  constructor(provider: AuthProvider | undefined, options: StoredSessionOptions = {}) {
    this.provider = provider;
    this.clientId = provider?.clientId ?? options.clientId ?? DEFAULT_CLIENT_ID;
    this.#clientSecret = provider ? provider.clientSecret : options.clientSecret;
    this.tokenUrl = checkEndpointUrl(options.tokenUrl ?? DEFAULT_TOKEN_URL, 'tokenUrl').toString();
    const logoutUrl = options.logoutUrl ?? logoutUrlFor(this.tokenUrl);
    this.logoutUrl = logoutUrl && checkEndpointUrl(logoutUrl, 'logoutUrl').toString();
    this.store = options.store ?? new MemoryTokenStore();
    this.expirySkew = options.expirySkew ?? 30;
    this.scope = options.scope || undefined;
    this.#http = {
      timeoutMs: (options.timeout ?? 30) * 1000,
      maxAttempts: options.maxAttempts ?? 5,
      ...(options.sleep && { sleep: options.sleep }),
      ...(options.random && { random: options.random }),
    };
    this.#now = options.now ?? Date.now;
    this.#onSecret = options.onSecret ?? (() => {});
    this.#dispatcher = options.dispatcher;
    this.#ownsDispatcher = options.dispatcher === undefined;
  }

  /**
   * A manager for a session that lives in `store` (a later process of a login): it refreshes
   * while the refresh token lives and never starts a new session.
   */
  static storedSession(options: StoredSessionOptions): TokenManager {
    return new TokenManager(undefined, options);
  }

  /** The grant of the last token request this manager made; `undefined` while the store served. */
  get lastGrant(): GrantType | undefined {
    return this.#lastGrant;
  }

  /** Token requests this manager sent that the server answered with tokens. */
  get requestCount(): number {
    return this.#requests;
  }

  /** A token set whose access token is valid for at least `expirySkew` seconds. */
  getTokenSet(): Promise<TokenSet> {
    return this.#singleFlight(() => this.#obtain(false));
  }

  async accessToken(): Promise<string> {
    return (await this.getTokenSet()).accessToken;
  }

  async authorizationHeader(): Promise<string> {
    return (await this.getTokenSet()).authorizationHeader;
  }

  /** Renews now even if the access token is still valid (e.g. after an API answered 401). */
  async forceRefresh(): Promise<TokenSet> {
    await this.#inflight?.catch(() => {});
    return this.#singleFlight(() => this.#obtain(true));
  }

  /**
   * Ends the server session (Keycloak logout, not revocation, which would end every session of
   * the user on this client) and clears the store. Answers whether a server session was ended.
   * The store is read afresh: another process may have rotated the refresh token meanwhile.
   */
  async logout(): Promise<boolean> {
    await this.#inflight?.catch(() => {});
    return this.store.exclusive(async () => {
      const stored = this.#ours(await this.store.load());
      try {
        // A refresh token the stored expiry calls dead has no session left to end.
        if (!stored?.refreshValid(0, this.#now()) || !this.logoutUrl) return false;
        const form: Record<string, string> = {
          client_id: this.clientId,
          refresh_token: stored.refreshToken as string,
        };
        if (this.#clientSecret) form.client_secret = this.#clientSecret;
        this.#reveal(form);
        const response = await postForm(this.logoutUrl, form, this.#httpOptions());
        if (response.status >= 200 && response.status < 300) return true;
        const error = endpointError(response, this.#redact);
        // The session already ended (expired, or another job logged out): nothing left to end.
        if (error.error === 'invalid_grant') return false;
        throw error;
      } finally {
        this.#current = undefined;
        this.#loaded = true;
        await this.store.clear();
      }
    });
  }

  /** Closes the connection pool this manager created (not one passed in as `dispatcher`). */
  async close(): Promise<void> {
    if (this.#ownsDispatcher && this.#dispatcher) await this.#dispatcher.close();
    this.#dispatcher = undefined;
  }

  #singleFlight(work: () => Promise<TokenSet>): Promise<TokenSet> {
    this.#inflight ??= work().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #obtain(force: boolean): Promise<TokenSet> {
    if (!this.#loaded) {
      this.#current = this.#ours(await this.store.load());
      this.#loaded = true;
    }
    const known = this.#current;
    // Readers with a valid token never wait for another process's renewal.
    if (!force && known?.accessValid(this.expirySkew, this.#now())) return known;
    return this.store.exclusive(() => this.#renew(known, force));
  }

  async #renew(known: TokenSet | undefined, force: boolean): Promise<TokenSet> {
    // Whoever held the lock before us may have renewed already: use what it stored.
    let current = this.#ours(await this.store.load());
    this.#current = current;
    const renewedByOther = current?.accessToken !== known?.accessToken;
    if (current?.accessValid(this.expirySkew, this.#now()) && (!force || renewedByOther)) {
      return current;
    }
    let rejection: TokenEndpointError | undefined;
    while (current && this.#refreshable(current)) {
      try {
        return await this.#refresh(current);
      } catch (error) {
        if (!(error instanceof TokenEndpointError && error.error === 'invalid_grant')) throw error;
        rejection = error;
        this.#deadRefreshTokens.add(current.refreshToken as string);
        // With rotation another process or job may hold the successor of the token that was
        // just refused; the store is asked again before anyone logs in afresh.
        const newer = this.#ours(await this.store.successorOf(current));
        if (newer && newer.refreshToken !== current.refreshToken) {
          this.#current = newer;
          if (newer.accessValid(this.expirySkew, this.#now())) return newer;
          current = newer;
          continue;
        }
        // The store still holds the token that was refused, and nobody else can write it now.
        this.#current = undefined;
        await this.store.clear();
        current = undefined;
      }
    }
    if (!this.#mayLogIn()) throw this.#sessionOver(current, rejection);
    return this.#logIn();
  }

  // A refresh token the stored expiry already calls dead, or that was refused once, is not sent.
  #refreshable(tokenSet: TokenSet): boolean {
    const token = tokenSet.refreshToken;
    return (
      !!token &&
      !this.#deadRefreshTokens.has(token) &&
      tokenSet.refreshValid(this.expirySkew, this.#now())
    );
  }

  #refresh(stored: TokenSet): Promise<TokenSet> {
    const form: Record<string, string> = {
      grant_type: 'refresh_token',
      client_id: this.clientId,
      refresh_token: stored.refreshToken as string,
    };
    if (this.#clientSecret) form.client_secret = this.#clientSecret;
    return this.#request('refresh_token', form, stored);
  }

  async #logIn(): Promise<TokenSet> {
    if (this.#rejected) throw this.#rejected;
    const provider = this.provider as AuthProvider;
    const grant = provider.grantType;
    this.#provided = true;
    try {
      return await this.#request(grant, provider.grantData());
    } catch (error) {
      if (!(error instanceof TokenEndpointError)) throw error;
      const details = error.error;
      if (grant === 'refresh_token' && details === 'invalid_grant') {
        throw this.#reject(
          new SessionExpiredError(
            `The refresh token was rejected (${error.errorDescription ?? details}); log in again to get a new one.`,
            error,
          ),
        );
      }
      if (
        details === 'invalid_grant' ||
        details === 'invalid_client' ||
        details === 'unauthorized_client'
      ) {
        const what = details === 'invalid_grant' ? 'credentials' : 'client id or client secret';
        // Keycloak answers a missing or wrong TOTP code exactly like a wrong password.
        const hint =
          grant === 'password' && !provider.usesTotp
            ? 'If the account has two-factor authentication, give its TOTP secret too (totp-secret; CDSE_TOTP_SECRET for cdse-auth).'
            : undefined;
        throw this.#reject(
          new InvalidCredentialsError(
            `The identity server rejected the ${what}: ${details}${error.errorDescription ? ` (${error.errorDescription})` : ''}. Not retried, to avoid locking the account.`,
            { ...error, ...(hint && { hint }) },
          ),
        );
      }
      throw error;
    }
  }

  // A rejected credential is never sent again by this manager: repeated failures lock accounts.
  #reject(error: CdseAuthError): CdseAuthError {
    this.#rejected = error;
    return error;
  }

  async #request(
    grant: GrantType,
    form: Record<string, string>,
    previous?: TokenSet,
  ): Promise<TokenSet> {
    if (this.scope) form.scope = this.scope;
    this.#reveal(form);
    // Expiry counts from when the request left: the server's clock started no later than that.
    const sentAt = this.#now();
    const response = await requestToken(this.tokenUrl, form, this.#httpOptions(), this.#redact);
    const tokenSet = this.#tokenSet(response, sentAt, previous);
    for (const secret of tokenSet.secrets()) this.#onSecret(secret);
    await this.store.save(tokenSet);
    this.#current = tokenSet;
    this.#lastGrant = grant;
    this.#requests++;
    return tokenSet;
  }

  // Secrets are announced (and remembered for redaction) before the request can fail with them.
  #reveal(form: Record<string, string>): void {
    for (const field of SECRET_FIELDS) {
      const value = form[field];
      if (!value) continue;
      this.#sent.add(value);
      this.#onSecret(value);
    }
  }

  #tokenSet(response: TokenResponse, sentAt: number, previous: TokenSet | undefined): TokenSet {
    const at = (seconds: number) => new Date(sentAt + seconds * 1000);
    // Always keep the refresh token a response returns (rotation may be on); a response without
    // one leaves the previous refresh token in force.
    const refreshToken = response.refresh_token ?? previous?.refreshToken;
    let refreshExpiresAt: Date | undefined;
    if (response.refresh_expires_in !== undefined) {
      refreshExpiresAt =
        response.refresh_expires_in === 0 ? undefined : at(response.refresh_expires_in);
    } else if (response.refresh_token === undefined) {
      refreshExpiresAt = previous?.refreshExpiresAt;
    }
    const sessionId = response.session_state ?? previous?.sessionId;
    return new TokenSet({
      accessToken: response.access_token,
      tokenType: response.token_type ?? 'Bearer',
      expiresAt: at(response.expires_in),
      ...(refreshToken !== undefined && { refreshToken }),
      ...(refreshToken !== undefined && refreshExpiresAt && { refreshExpiresAt }),
      ...(response.scope !== undefined && { scope: response.scope }),
      ...(sessionId !== undefined && { sessionId }),
      tokenUrl: this.tokenUrl,
      clientId: this.clientId,
    });
  }

  // A token set from another endpoint or client is not ours to use or refresh.
  #ours(stored: TokenSet | undefined): TokenSet | undefined {
    if (!stored) return undefined;
    const sameUrl = stored.tokenUrl === undefined || stored.tokenUrl === this.tokenUrl;
    const sameClient = stored.clientId === undefined || stored.clientId === this.clientId;
    return sameUrl && sameClient ? stored : undefined;
  }

  // A provider that cannot log in again may still start the one session it was made for.
  #mayLogIn(): boolean {
    if (!this.provider) return false;
    return this.provider.canReauthenticate || !this.#provided;
  }

  #sessionOver(stored: TokenSet | undefined, rejection: TokenEndpointError | undefined) {
    const why = rejection
      ? `the refresh token was rejected (${rejection.errorDescription ?? rejection.error})`
      : stored?.refreshToken
        ? 'the refresh token has expired'
        : stored
          ? 'the access token has expired and there is no refresh token'
          : 'no session is stored';
    if (!this.provider) {
      return new SessionExpiredError(
        `Cannot renew the stored session: ${why}, and no credentials were given to log in again.`,
        { ...rejection, hint: 'Log in again with credentials.' },
      );
    }
    const cannot =
      this.provider.grantType === 'password'
        ? 'the one-time TOTP code cannot log in again; use a TOTP secret for unattended logins.'
        : 'a refresh-token login cannot start a new session; log in again to get a new refresh token.';
    return new SessionExpiredError(`The session has ended (${why}) and ${cannot}`, rejection);
  }

  #httpOptions(): HttpOptions {
    this.#dispatcher ??= proxyConfigured() ? new EnvHttpProxyAgent() : new Agent();
    return { ...this.#http, dispatcher: this.#dispatcher };
  }

  #redact = redactor(() => [
    ...(this.provider?.secrets() ?? []),
    this.#clientSecret,
    ...this.#sent,
    ...(this.#current?.secrets() ?? []),
  ]);
}

// undici 6 warns that EnvHttpProxyAgent is experimental; without a proxy it is not needed.
const proxyConfigured = () =>
  ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((name) => !!process.env[name]);
