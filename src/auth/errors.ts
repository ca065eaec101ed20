/** What the token endpoint said, and how hard we tried. Never holds a secret. */
export interface ErrorDetails {
  /** HTTP status of the last answer, if there was one. */
  status?: number;
  /** OAuth `error` code, e.g. `invalid_grant`. */
  error?: string;
  /** OAuth `error_description`, with every known secret redacted. */
  errorDescription?: string;
  /** Requests made for this operation (1 when nothing was retried). */
  attempts?: number;
  /** What the user can do about it, in the library's words; front ends may say it in theirs. */
  hint?: string;
  /** The setting at fault, by the library's name (e.g. `totpSecret`): front ends name it theirs. */
  input?: string;
  /** Whether the same request could succeed later (a fault, not a refusal). */
  retryable?: boolean;
}

/** Base class of every error this library throws on purpose. */
export class CdseAuthError extends Error {
  override readonly name: string = 'CdseAuthError';
  readonly status: number | undefined;
  readonly error: string | undefined;
  readonly errorDescription: string | undefined;
  readonly attempts: number | undefined;
  readonly hint: string | undefined;
  readonly input: string | undefined;
  readonly retryable: boolean | undefined;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message);
    this.status = details.status;
    this.error = details.error;
    this.errorDescription = details.errorDescription;
    this.attempts = details.attempts;
    this.hint = details.hint;
    this.input = details.input;
    this.retryable = details.retryable;
  }
}

/** A setting is unusable (bad URL, malformed TOTP secret...). Nothing was sent. */
export class ConfigurationError extends CdseAuthError {
  override readonly name = 'ConfigurationError';
}

/** The token endpoint failed: unreachable, rate limited past the retry budget, or an OAuth error. */
export class TokenEndpointError extends CdseAuthError {
  override readonly name: string = 'TokenEndpointError';
}

/** The endpoint answered success with a body that is not a token response (proxy page, truncation). */
export class InvalidResponseError extends TokenEndpointError {
  override readonly name = 'InvalidResponseError';
}

/** The credentials were rejected. Never retried: Keycloak locks accounts after repeated failures. */
export class InvalidCredentialsError extends TokenEndpointError {
  override readonly name = 'InvalidCredentialsError';
}

/** The refresh token is dead and the provider holds nothing to log in again with. */
export class SessionExpiredError extends TokenEndpointError {
  override readonly name = 'SessionExpiredError';
}
