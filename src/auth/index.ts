export { DEFAULT_CLIENT_ID, DEFAULT_TOKEN_URL } from './constants.ts';
export {
  type CredentialField,
  type Credentials,
  type GrantChoice,
  providerFromCredentials,
} from './credentials.ts';
export { checkEndpointUrl, logoutUrlFor } from './endpoint.ts';
export {
  CdseAuthError,
  ConfigurationError,
  type ErrorDetails,
  InvalidCredentialsError,
  InvalidResponseError,
  SessionExpiredError,
  TokenEndpointError,
} from './errors.ts';
export { FileTokenStore, type FileTokenStoreOptions } from './file-store.ts';
export { TokenManager, type TokenManagerOptions } from './manager.ts';
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
  TokenSet,
  type TokenSetData,
  type TokenSetInput,
  TokenSetSchema,
} from './token-set.ts';
