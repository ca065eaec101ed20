import { Secret, TOTP, URI } from 'otpauth';
import { DEFAULT_CLIENT_ID } from './constants.ts';
import { ConfigurationError } from './errors.ts';
import type { GrantType } from './token-set.ts';

/**
 * How to obtain the first token. A provider only builds the grant's form fields; the
 * `TokenManager` owns every request. Secrets live in private fields so that neither
 * `JSON.stringify` nor `console.log` can reveal them.
 */
export abstract class AuthProvider {
  abstract readonly grantType: GrantType;
  abstract readonly clientId: string;
  /** Whether `grantData()` can log in again after the session has ended. */
  abstract readonly canReauthenticate: boolean;
  /** Whether the grant carries a TOTP code (a two-factor account's password login). */
  get usesTotp(): boolean {
    return false;
  }
  /** Form fields for the token request that starts a session. */
  abstract grantData(): Record<string, string>;
  /** Values that must never appear in a log line or an error message. */
  abstract secrets(): string[];

  /** Confidential clients send this on refresh and logout too. */
  get clientSecret(): string | undefined {
    return undefined;
  }
}

export interface PasswordAuthOptions {
  /** A one-time code: good for one login, so the provider cannot log in again. */
  totp?: string;
  /** RFC 6238 secret (base32 or `otpauth://` URI): a fresh code for every login. */
  totpSecret?: string;
  clientId?: string;
  /** Clock for the TOTP codes, in ms. */
  now?: () => number;
}

export class PasswordAuth extends AuthProvider {
  readonly grantType = 'password';
  readonly clientId: string;
  readonly canReauthenticate: boolean;
  readonly username: string;
  readonly #password: string;
  readonly #totp: string | undefined;
  readonly #totpSecret: string | undefined;
  readonly #generator: TOTP | undefined;
  readonly #now: () => number;
  #lastCounter = -1;

  constructor(username: string, password: string, options: PasswordAuthOptions = {}) {
    super();
    if (!username) throw new ConfigurationError('PasswordAuth needs a username.');
    if (!password) throw new ConfigurationError('PasswordAuth needs a password.');
    const { totp, totpSecret } = options;
    if (totp && totpSecret) {
      throw new ConfigurationError('Give either a one-time TOTP code or a TOTP secret, not both.', {
        input: 'totpSecret',
      });
    }
    if (totp !== undefined && !/^\d{6,8}$/.test(totp)) {
      throw new ConfigurationError('The TOTP code must be 6 to 8 digits.', { input: 'totp' });
    }
    this.username = username;
    this.clientId = options.clientId ?? DEFAULT_CLIENT_ID;
    this.#password = password;
    this.#totp = totp || undefined;
    this.#totpSecret = totpSecret || undefined;
    this.#generator = this.#totpSecret ? parseTotpSecret(this.#totpSecret) : undefined;
    this.#now = options.now ?? Date.now;
    this.canReauthenticate = this.#totp === undefined;
  }

  grantData(): Record<string, string> {
    const form: Record<string, string> = {
      grant_type: 'password',
      client_id: this.clientId,
      username: this.username,
      password: this.#password,
    };
    const code = this.#generator ? this.#nextCode(this.#generator) : this.#totp;
    if (code) form.totp = code;
    return form;
  }

  secrets(): string[] {
    return [this.#password, this.#totp, this.#totpSecret].filter((s): s is string => !!s);
  }

  override get usesTotp(): boolean {
    return this.#totp !== undefined || this.#generator !== undefined;
  }

  // Keycloak refuses a code whose time step was already used, but accepts the next step's code
  // (its look-around window is one step), so a second login within 30 s uses the next code.
  #nextCode(generator: TOTP): string {
    const counter = Math.max(generator.counter({ timestamp: this.#now() }), this.#lastCounter + 1);
    this.#lastCounter = counter;
    return generator.generate({ timestamp: counter * generator.period * 1000 });
  }
}

function parseTotpSecret(value: string): TOTP {
  const invalid = () =>
    new ConfigurationError(
      'The TOTP secret is neither a base32 secret nor an otpauth://totp/ URI.',
      { input: 'totpSecret' },
    );
  let generator: TOTP;
  try {
    if (value.startsWith('otpauth://')) {
      const parsed = URI.parse(value);
      if (!(parsed instanceof TOTP)) throw invalid();
      generator = parsed;
    } else {
      // Authenticator apps show secrets in groups, lower case, sometimes padded.
      const base32 = value.replace(/[\s-]/g, '').replace(/=+$/, '').toUpperCase();
      if (!/^[A-Z2-7]{16,}$/.test(base32)) throw invalid();
      generator = new TOTP({ secret: Secret.fromBase32(base32), digits: 6, period: 30 });
    }
    generator.generate();
  } catch {
    throw invalid();
  }
  return generator;
}

export interface RefreshTokenAuthOptions {
  clientId?: string;
}

/**
 * Starts from a refresh token obtained elsewhere. Holds no credentials to log in again, so once
 * the refresh token dies the session ends with a `SessionExpiredError`.
 */
export class RefreshTokenAuth extends AuthProvider {
  readonly grantType = 'refresh_token';
  readonly clientId: string;
  readonly canReauthenticate = false;
  readonly #refreshToken: string;

  constructor(refreshToken: string, options: RefreshTokenAuthOptions = {}) {
    super();
    if (!refreshToken) throw new ConfigurationError('RefreshTokenAuth needs a refresh token.');
    this.#refreshToken = refreshToken;
    this.clientId = options.clientId ?? DEFAULT_CLIENT_ID;
  }

  grantData(): Record<string, string> {
    return {
      grant_type: 'refresh_token',
      client_id: this.clientId,
      refresh_token: this.#refreshToken,
    };
  }

  secrets(): string[] {
    return [this.#refreshToken];
  }
}

/** A registered machine client. No refresh token is issued; every renewal is a new grant. */
export class ClientCredentialsAuth extends AuthProvider {
  readonly grantType = 'client_credentials';
  readonly clientId: string;
  readonly canReauthenticate = true;
  readonly #clientSecret: string;

  constructor(clientId: string, clientSecret: string) {
    super();
    if (!clientId) throw new ConfigurationError('ClientCredentialsAuth needs a client id.');
    if (!clientSecret) throw new ConfigurationError('ClientCredentialsAuth needs a client secret.');
    this.clientId = clientId;
    this.#clientSecret = clientSecret;
  }

  override get clientSecret(): string {
    return this.#clientSecret;
  }

  grantData(): Record<string, string> {
    return {
      grant_type: 'client_credentials',
      client_id: this.clientId,
      client_secret: this.#clientSecret,
    };
  }

  secrets(): string[] {
    return [this.#clientSecret];
  }
}
