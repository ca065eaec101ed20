import { DEFAULT_CLIENT_ID } from '../auth/constants.ts';
import { ConfigurationError } from '../auth/errors.ts';
import {
  type AuthProvider,
  ClientCredentialsAuth,
  PasswordAuth,
  RefreshTokenAuth,
} from '../auth/providers.ts';
import type { GrantType } from '../auth/token-set.ts';

/** Credentials as a front end collects them (action inputs, CLI flags, environment). */
export interface Credentials {
  username?: string | undefined;
  password?: string | undefined;
  totp?: string | undefined;
  totpSecret?: string | undefined;
  refreshToken?: string | undefined;
  clientId?: string | undefined;
  clientSecret?: string | undefined;
}
export type CredentialField = keyof Credentials;
export type GrantChoice = 'auto' | GrantType;

/** The one spelling of grants both front ends accept (the action's input values). */
export const GRANT_NAMES = ['auto', 'password', 'refresh-token', 'client-credentials'] as const;
export type GrantName = (typeof GRANT_NAMES)[number];
export const grantChoice = (name: GrantName): GrantChoice =>
  name === 'auto' ? 'auto' : (name.replace('-', '_') as GrantType);

/**
 * The one name of each credential field in both front ends: the action's input, and the CLI's
 * flag without its dashes.
 */
export const CREDENTIAL_NAMES = {
  grant: 'grant',
  username: 'username',
  password: 'password',
  totp: 'totp',
  totpSecret: 'totp-secret',
  refreshToken: 'refresh-token',
  clientId: 'client-id',
  clientSecret: 'client-secret',
} as const satisfies Record<CredentialField | 'grant', string>;

/** Whether any credential that can start a session is set (a client id alone cannot). */
export const hasCredentials = (c: Credentials): boolean =>
  !!(c.username || c.password || c.clientSecret || c.refreshToken);

/** Secret credential fields: masked first, never echoed, never in a key or a message. */
export const SECRET_FIELDS = [
  'password',
  'totp',
  'totpSecret',
  'refreshToken',
  'clientSecret',
] as const;

/** The credential fields that belong to each grant. */
const GRANT_FIELDS: Record<GrantType, CredentialField[]> = {
  password: ['username', 'password', 'totp', 'totpSecret'],
  client_credentials: ['clientSecret'],
  refresh_token: ['refreshToken'],
};

/**
 * Builds the provider for `grant`, or, for `auto`, for the one kind of credential that is set.
 * Errors name fields through `label`, so each front end speaks its own names (inputs, flags).
 */
export function providerFromCredentials(
  credentials: Credentials,
  grant: GrantChoice = 'auto',
  label: (field: CredentialField | 'grant') => string = (field) => field,
): AuthProvider {
  const isSet = (field: CredentialField) => !!credentials[field];
  const names = (fields: CredentialField[]) => fields.map(label).join(', ');
  let chosen: GrantType;
  if (grant === 'auto') {
    const present = (Object.keys(GRANT_FIELDS) as GrantType[]).filter((g) =>
      GRANT_FIELDS[g].some(isSet),
    );
    if (present.length > 1) {
      const fields = present.flatMap((g) => GRANT_FIELDS[g].filter(isSet));
      throw new ConfigurationError(
        `Credentials for more than one grant are set (${names(fields)}): set only one kind, or choose one with ${label('grant')}.`,
      );
    }
    const only = present[0];
    if (!only) {
      throw new ConfigurationError(
        `No credentials: set ${label('username')} and ${label('password')}, or ${label('clientId')} and ${label('clientSecret')}, or ${label('refreshToken')}.`,
      );
    }
    chosen = only;
  } else {
    chosen = grant;
  }

  const require = (...fields: CredentialField[]) => {
    const missing = fields.filter((f) => !isSet(f));
    if (missing.length) {
      throw new ConfigurationError(`The ${chosen} grant needs ${names(missing)}.`);
    }
  };
  const clientId = credentials.clientId || DEFAULT_CLIENT_ID;
  switch (chosen) {
    case 'password':
      require('username', 'password');
      try {
        return new PasswordAuth(credentials.username as string, credentials.password as string, {
          clientId,
          ...(credentials.totp && { totp: credentials.totp }),
          ...(credentials.totpSecret && { totpSecret: credentials.totpSecret }),
        });
      } catch (error) {
        // The library checks the 2FA values (their format, not both at once) and says which
        // one it means: the message gets this front end's name for it, never the value.
        if (!(error instanceof ConfigurationError) || !error.input) throw error;
        throw new ConfigurationError(`${label(error.input as CredentialField)}: ${error.message}`, {
          input: error.input,
        });
      }
    case 'client_credentials':
      require('clientSecret');
      if (clientId === DEFAULT_CLIENT_ID) {
        throw new ConfigurationError(
          `The client_credentials grant needs ${label('clientId')}: the id of your registered client (e.g. sh-…), not the public ${DEFAULT_CLIENT_ID}.`,
        );
      }
      return new ClientCredentialsAuth(clientId, credentials.clientSecret as string);
    case 'refresh_token':
      require('refreshToken');
      return new RefreshTokenAuth(credentials.refreshToken as string, { clientId });
  }
}
