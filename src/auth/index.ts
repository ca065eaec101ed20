export { DEFAULT_CLIENT_ID, DEFAULT_TOKEN_URL } from './constants.ts';
/** Public on purpose: front ends and library users check their own URL settings the same way. */
export { checkEndpointUrl } from './endpoint.ts';
export {
  CdseAuthError,
  ConfigurationError,
  type ErrorDetails,
  InvalidCredentialsError,
  InvalidResponseError,
  SessionExpiredError,
  TokenEndpointError,
} from './errors.ts';
export { type FileLockOptions, FileLockTimeoutError } from './file-lock.ts';
export { type FileMeta, FileTokenStore, type FileTokenStoreOptions } from './file-store.ts';
export { type StoredSessionOptions, TokenManager, type TokenManagerOptions } from './manager.ts';
export {
  AuthProvider,
  ClientCredentialsAuth,
  PasswordAuth,
  type PasswordAuthOptions,
  RefreshTokenAuth,
  type RefreshTokenAuthOptions,
} from './providers.ts';
export { MemoryTokenStore, TokenStore } from './store.ts';
export {
  GrantType,
  MAX_TOKEN_LENGTH,
  TokenSet,
  type TokenSetData,
  type TokenSetInput,
  TokenSetSchema,
} from './token-set.ts';
