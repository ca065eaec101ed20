import { Agent, type Dispatcher, EnvHttpProxyAgent } from 'undici';
import { DEFAULT_TOKEN_URL } from './constants.ts';
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
import { MemoryTokenStore, type TokenStore } from './store.ts';
import { type GrantType, TokenSet } from './token-set.ts';

export interface TokenManagerOptions {
  tokenUrl?: string;
  /** Default: derived from a Keycloak token URL (`.../token` -> `.../logout`). */
  logoutUrl?: string;
  store?: TokenStore;
  /** Seconds before expiry at which a token counts as expired. */
  expirySkew?: number;
  /** Default: honours HTTP(S)_PROXY and NO_PROXY (undici's `EnvHttpProxyAgent`). */
  dispatcher?: Dispatcher;
  /** Seconds per request. */
  timeout?: number;
  /** Requests at most per operation, for retryable faults (network, 408, 429, 5xx). */
  maxAttempts?: number;
  /** Clock in ms; tests move it. */
  now?: () => number;
}

/**
 * Obtains an access token and keeps it valid.
 *
 * Renewal order: a stored access token that is still valid; else a refresh grant while the
 * refresh token lives; else (refresh token dead or rejected) a full grant from the provider, if it
 * can log in again, or a `SessionExpiredError`. Concurrent callers share one request. A rejected
 * credential is never sent again by this manager.
 */
export class TokenManager {
  readonly provider: AuthProvider;
  readonly tokenUrl: string;
  readonly logoutUrl: string | undefined;
  readonly store: TokenStore;
  readonly expirySkew: number;
  /** The grant of the last token request this manager made; `undefined` while the store served. */
  lastGrant: GrantType | undefined;

  readonly #http: Omit<HttpOptions, 'dispatcher'>;
  readonly #now: () => number;
  #dispatcher: Dispatcher | undefined;
  readonly #ownsDispatcher: boolean;
  #current: TokenSet | undefined;
  #loaded = false;
  #inflight: Promise<TokenSet> | undefined;
  #provided = false;
  #rejected: CdseAuthError | undefined;

  constructor(provider: AuthProvider, options: TokenManagerOptions = {}) {
    this.provider = provider;
    this.tokenUrl = checkEndpointUrl(options.tokenUrl ?? DEFAULT_TOKEN_URL, 'tokenUrl').toString();
    const logoutUrl = options.logoutUrl ?? logoutUrlFor(this.tokenUrl);
    this.logoutUrl = logoutUrl && checkEndpointUrl(logoutUrl, 'logoutUrl').toString();
    this.store = options.store ?? new MemoryTokenStore();
    this.expirySkew = options.expirySkew ?? 30;
    this.#http = {
      timeoutMs: (options.timeout ?? 30) * 1000,
      maxAttempts: options.maxAttempts ?? 5,
    };
    this.#now = options.now ?? Date.now;
    this.#dispatcher = options.dispatcher;
    this.#ownsDispatcher = options.dispatcher === undefined;
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
   */
  async logout(): Promise<boolean> {
    await this.#inflight?.catch(() => {});
    const stored = await this.#load();
    try {
      if (!stored?.refreshToken || !this.logoutUrl) return false;
      const form: Record<string, string> = {
        client_id: this.provider.clientId,
        refresh_token: stored.refreshToken,
      };
      const secret = this.provider.clientSecret;
      if (secret) form.client_secret = secret;
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
    const now = this.#now();
    const stored = await this.#load();
    if (!force && stored?.accessValid(this.expirySkew, now)) return stored;
    if (stored?.refreshValid(this.expirySkew, now)) {
      try {
        return await this.#refresh(stored);
      } catch (error) {
        if (!(error instanceof TokenEndpointError && error.error === 'invalid_grant')) throw error;
        await this.#discard();
        if (!this.#mayLogIn()) {
          throw new SessionExpiredError(
            `The refresh token was rejected (${error.errorDescription ?? error.error}) and ${this.#cannotLogInAgain()}`,
            error,
          );
        }
      }
    } else if (stored?.refreshToken && !this.#mayLogIn()) {
      throw new SessionExpiredError(
        `The refresh token has expired and ${this.#cannotLogInAgain()}`,
      );
    }
    return this.#logIn();
  }

  #refresh(stored: TokenSet): Promise<TokenSet> {
    const form: Record<string, string> = {
      grant_type: 'refresh_token',
      client_id: this.provider.clientId,
      refresh_token: stored.refreshToken as string,
    };
    const secret = this.provider.clientSecret;
    if (secret) form.client_secret = secret;
    return this.#request('refresh_token', form, stored);
  }

  async #logIn(): Promise<TokenSet> {
    if (this.#rejected) throw this.#rejected;
    if (!this.#mayLogIn())
      throw new SessionExpiredError(`The session has ended and ${this.#cannotLogInAgain()}`);
    const grant = this.provider.grantType;
    this.#provided = true;
    try {
      return await this.#request(grant, this.provider.grantData());
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
        throw this.#reject(
          new InvalidCredentialsError(
            `The identity server rejected the ${what}: ${details}${error.errorDescription ? ` (${error.errorDescription})` : ''}. Not retried, to avoid locking the account.`,
            error,
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
    // Expiry counts from when the request left: the server's clock started no later than that.
    const sentAt = this.#now();
    const response = await requestToken(this.tokenUrl, form, this.#httpOptions(), this.#redact);
    const tokenSet = this.#tokenSet(response, sentAt, previous);
    await this.store.save(tokenSet);
    this.#current = tokenSet;
    this.lastGrant = grant;
    return tokenSet;
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
    return new TokenSet({
      accessToken: response.access_token,
      tokenType: response.token_type ?? 'Bearer',
      expiresAt: at(response.expires_in),
      ...(refreshToken !== undefined && { refreshToken }),
      ...(refreshToken !== undefined && refreshExpiresAt && { refreshExpiresAt }),
      ...(response.scope !== undefined && { scope: response.scope }),
      tokenUrl: this.tokenUrl,
      clientId: this.provider.clientId,
    });
  }

  async #load(): Promise<TokenSet | undefined> {
    if (!this.#loaded) {
      const stored = await this.store.load();
      // A token set from another endpoint or client is not ours to use or refresh.
      const ours =
        stored &&
        (stored.tokenUrl === undefined || stored.tokenUrl === this.tokenUrl) &&
        (stored.clientId === undefined || stored.clientId === this.provider.clientId);
      this.#current = ours ? stored : undefined;
      this.#loaded = true;
    }
    return this.#current;
  }

  async #discard(): Promise<void> {
    this.#current = undefined;
    await this.store.clear();
  }

  // A provider that cannot log in again may still start the one session it was made for.
  #mayLogIn(): boolean {
    return this.provider.canReauthenticate || !this.#provided;
  }

  #cannotLogInAgain(): string {
    return this.provider.grantType === 'password'
      ? 'the one-time TOTP code cannot log in again; use a TOTP secret for unattended logins.'
      : 'a refresh-token login cannot start a new session; log in again to get a new refresh token.';
  }

  #httpOptions(): HttpOptions {
    this.#dispatcher ??= proxyConfigured() ? new EnvHttpProxyAgent() : new Agent();
    return { ...this.#http, dispatcher: this.#dispatcher };
  }

  #redact = (text: string): string => {
    const secrets = [
      ...this.provider.secrets(),
      this.#current?.accessToken,
      this.#current?.refreshToken,
    ];
    let out = text;
    for (const secret of secrets)
      if (secret && secret.length >= 4) out = out.split(secret).join('***');
    return out;
  };
}

// undici 6 warns that EnvHttpProxyAgent is experimental; without a proxy it is not needed.
const proxyConfigured = () =>
  ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((name) => !!process.env[name]);
