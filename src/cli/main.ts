#!/usr/bin/env node
import { parseArgs } from 'node:util';
import {
  type AuthProvider,
  CdseAuthError,
  ConfigurationError,
  type Credentials,
  checkEndpointUrl,
  DEFAULT_CLIENT_ID,
  DEFAULT_TOKEN_URL,
  FileTokenStore,
  type GrantChoice,
  providerFromCredentials,
  RefreshTokenAuth,
  TokenManager,
  type TokenSet,
} from '../auth/index.ts';
import { VERSION } from '../version.ts';
import { defaultCredentialsFile } from './paths.ts';
import { ask } from './prompt.ts';

const USAGE = `cdse-auth ${VERSION}: log in to the Copernicus Data Space Ecosystem and keep a token fresh.

Usage: cdse-auth <command> [options]

Commands:
  login    log in (asks for what is missing on a terminal) and save the session
  token    print an access token that is valid now, refreshing it if needed
  header   print "Bearer <access token>"
  status   print the saved session as JSON (no secrets)
  logout   end the server session and delete the saved credentials

Options (each also read from the environment variable shown):
  --username NAME          CDSE_USERNAME
  --password PASSWORD      CDSE_PASSWORD (prefer the variable: flags show in process lists)
  --totp CODE              CDSE_TOTP         one-time 2FA code
  --totp-secret SECRET     CDSE_TOTP_SECRET  RFC 6238 secret (base32 or otpauth:// URI)
  --client-id ID           CDSE_CLIENT_ID    default ${DEFAULT_CLIENT_ID}
  --client-secret SECRET   CDSE_CLIENT_SECRET
  --refresh-token TOKEN    CDSE_REFRESH_TOKEN
  --token-url URL          CDSE_TOKEN_URL
  --grant GRANT            CDSE_GRANT        auto (default: from the credentials that are set),
                                             password, client-credentials or refresh-token
  --credentials-file PATH  CDSE_CREDENTIALS_FILE  default ${defaultCredentialsFile()}
  -h, --help               this text
  --version                the version

Exit codes: 0 ok, 1 authentication failed or not logged in, 2 usage error.
`;

const OPTIONS = {
  username: { type: 'string', env: 'CDSE_USERNAME' },
  password: { type: 'string', env: 'CDSE_PASSWORD' },
  totp: { type: 'string', env: 'CDSE_TOTP' },
  'totp-secret': { type: 'string', env: 'CDSE_TOTP_SECRET' },
  'client-id': { type: 'string', env: 'CDSE_CLIENT_ID' },
  'client-secret': { type: 'string', env: 'CDSE_CLIENT_SECRET' },
  'refresh-token': { type: 'string', env: 'CDSE_REFRESH_TOKEN' },
  'token-url': { type: 'string', env: 'CDSE_TOKEN_URL' },
  grant: { type: 'string', env: 'CDSE_GRANT' },
  'credentials-file': { type: 'string', env: 'CDSE_CREDENTIALS_FILE' },
} as const;
type OptionName = keyof typeof OPTIONS;

const FIELD_OPTION: Record<keyof Credentials | 'grant', string> = {
  grant: '--grant',
  username: '--username',
  password: '--password',
  totp: '--totp',
  totpSecret: '--totp-secret',
  refreshToken: '--refresh-token',
  clientId: '--client-id',
  clientSecret: '--client-secret',
};

class UsageError extends Error {}

const out = (text: string) => process.stdout.write(`${text}\n`);
const err = (text: string) => process.stderr.write(`${text}\n`);

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    err(`cdse-auth: ${(error as Error).message}\nRun cdse-auth --help for usage.`);
    return 2;
  }
  const { command, get, help, version } = parsed;
  if (version) {
    out(VERSION);
    return 0;
  }
  if (help || !command) {
    (help ? out : err)(USAGE);
    return help ? 0 : 2;
  }

  const store = new FileTokenStore(get('credentials-file') ?? defaultCredentialsFile(), {
    onWarning: (message) => err(`cdse-auth: warning: ${message}`),
  });
  const stored = await store.load();
  const givenUrl = get('token-url');
  // Checked here so that the message names the flag; the manager checks every URL again.
  if (givenUrl) checkEndpointUrl(givenUrl, '--token-url (CDSE_TOKEN_URL)');
  const tokenUrl = givenUrl ?? stored?.tokenUrl ?? DEFAULT_TOKEN_URL;
  const clientId = get('client-id') ?? stored?.clientId ?? DEFAULT_CLIENT_ID;
  const grant = grantOf(get);

  switch (command) {
    case 'status':
      return status(store, stored);
    case 'login':
      return login(store, stored, await promptedCredentials(get, clientId), tokenUrl, grant);
    case 'token':
    case 'header': {
      const manager = managerFor(credentialsOf(get, clientId), stored, store, tokenUrl, grant);
      try {
        const tokenSet = await manager.getTokenSet();
        if (manager.lastGrant) maskInActions(tokenSet);
        out(command === 'token' ? tokenSet.accessToken : tokenSet.authorizationHeader);
        return 0;
      } finally {
        await manager.close();
      }
    }
    case 'logout': {
      if (!stored) {
        err('cdse-auth: no saved session; nothing to log out.');
        return 0;
      }
      const manager = managerFor(credentialsOf(get, clientId), stored, store, tokenUrl, grant);
      try {
        const ended = await manager.logout();
        err(
          ended
            ? 'Logged out: the CDSE session has ended.'
            : 'No server session was left; removed the saved credentials.',
        );
        return 0;
      } finally {
        await manager.close();
      }
    }
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...Object.fromEntries(
        Object.keys(OPTIONS).map((name) => [name, { type: 'string' as const }]),
      ),
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
  });
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const get = (name: OptionName): string | undefined =>
    ((values as Record<string, unknown>)[name] as string | undefined) ||
    process.env[OPTIONS[name].env] ||
    undefined;
  return { command: positionals[0], get, help: !!values.help, version: !!values.version };
}

const GRANTS: Record<string, GrantChoice> = {
  auto: 'auto',
  password: 'password',
  'client-credentials': 'client_credentials',
  client_credentials: 'client_credentials',
  'refresh-token': 'refresh_token',
  refresh_token: 'refresh_token',
};

function grantOf(get: (name: OptionName) => string | undefined): GrantChoice {
  const value = get('grant') ?? 'auto';
  const grant = GRANTS[value];
  if (!grant) {
    throw new UsageError(
      `unknown grant '${value}': expected auto, password, client-credentials or refresh-token`,
    );
  }
  return grant;
}

function credentialsOf(
  get: (name: OptionName) => string | undefined,
  clientId: string,
): Credentials {
  return {
    username: get('username'),
    password: get('password'),
    totp: get('totp'),
    totpSecret: get('totp-secret'),
    refreshToken: get('refresh-token'),
    clientSecret: get('client-secret'),
    clientId,
  };
}

const hasCredentials = (c: Credentials) =>
  !!(c.username || c.password || c.clientSecret || c.refreshToken);

/**
 * The manager for token/header/logout: credentials given now win; else the saved session is
 * carried on through its refresh token.
 */
function managerFor(
  credentials: Credentials,
  stored: TokenSet | undefined,
  store: FileTokenStore,
  tokenUrl: string,
  grant: GrantChoice,
): TokenManager {
  let provider: AuthProvider;
  if (hasCredentials(credentials)) {
    provider = providerFromCredentials(credentials, grant, (field) => FIELD_OPTION[field]);
  } else if (stored?.refreshToken) {
    provider = new RefreshTokenAuth(stored.refreshToken, {
      clientId: credentials.clientId ?? DEFAULT_CLIENT_ID,
    });
  } else if (stored) {
    // A client-credentials session has no refresh token: it lives until its access token expires.
    provider = providerWithoutCredentials(credentials.clientId ?? DEFAULT_CLIENT_ID);
  } else {
    throw new NotLoggedIn();
  }
  return new TokenManager(provider, { tokenUrl, store });
}

class NotLoggedIn extends CdseAuthError {
  constructor() {
    super(
      'Not logged in: run `cdse-auth login`, or set credentials (CDSE_USERNAME and CDSE_PASSWORD, CDSE_CLIENT_ID and CDSE_CLIENT_SECRET, or CDSE_REFRESH_TOKEN).',
    );
  }
}

function providerWithoutCredentials(clientId: string): AuthProvider {
  return {
    grantType: 'client_credentials',
    clientId,
    canReauthenticate: false,
    clientSecret: undefined,
    grantData: () => {
      throw new CdseAuthError(
        'The saved session has expired and cannot be renewed without the client secret: set CDSE_CLIENT_SECRET (with CDSE_CLIENT_ID) or run `cdse-auth login`.',
      );
    },
    secrets: () => [],
  };
}

async function promptedCredentials(
  get: (name: OptionName) => string | undefined,
  clientId: string,
): Promise<Credentials> {
  const credentials = credentialsOf(get, clientId);
  const interactive = process.stdin.isTTY && process.stderr.isTTY;
  const wantsPassword = !credentials.clientSecret && !credentials.refreshToken;
  if (interactive && wantsPassword) {
    credentials.username ??= (await ask('CDSE username (e-mail): ')) || undefined;
    credentials.password ??= (await ask('Password: ', { hidden: true })) || undefined;
    if (!credentials.totp && !credentials.totpSecret) {
      credentials.totp = (await ask('2FA code (leave empty if none): ')) || undefined;
    }
  }
  return credentials;
}

async function login(
  store: FileTokenStore,
  stored: TokenSet | undefined,
  credentials: Credentials,
  tokenUrl: string,
  grant: GrantChoice,
): Promise<number> {
  if (!hasCredentials(credentials)) {
    throw new ConfigurationError(
      'login needs credentials: run it on a terminal to be asked, or set CDSE_USERNAME and CDSE_PASSWORD (or CDSE_CLIENT_ID and CDSE_CLIENT_SECRET, or CDSE_REFRESH_TOKEN).',
    );
  }
  const provider = providerFromCredentials(credentials, grant, (field) => FIELD_OPTION[field]);
  // CDSE counts active sessions per user (100 at most): end the one this login replaces.
  if (stored?.refreshToken) {
    const previous = new TokenManager(
      new RefreshTokenAuth(stored.refreshToken, { clientId: stored.clientId ?? provider.clientId }),
      {
        tokenUrl: stored.tokenUrl ?? tokenUrl,
        store,
        maxAttempts: 1,
      },
    );
    await previous.logout().catch(() => store.clear());
    await previous.close();
  } else {
    await store.clear();
  }
  const manager = new TokenManager(provider, { tokenUrl, store });
  try {
    const tokenSet = await manager.getTokenSet();
    maskInActions(tokenSet);
    const refresh = tokenSet.refreshToken
      ? `, refreshable until ${tokenSet.refreshExpiresAt?.toISOString() ?? 'revoked'}`
      : '';
    err(
      `Logged in to ${new URL(tokenUrl).host}: access token valid until ${tokenSet.expiresAt.toISOString()}${refresh}.`,
    );
    err(`Saved to ${store.path}.`);
    return 0;
  } finally {
    await manager.close();
  }
}

function status(store: FileTokenStore, stored: TokenSet | undefined): number {
  const now = Date.now();
  const report = {
    loggedIn: !!stored && (stored.accessValid(0, now) || stored.refreshValid(0, now)),
    credentialsFile: store.path,
    tokenUrl: stored?.tokenUrl ?? null,
    clientId: stored?.clientId ?? null,
    tokenType: stored?.tokenType ?? null,
    accessTokenExpiresAt: stored?.expiresAt.toISOString() ?? null,
    accessTokenValid: stored?.accessValid(0, now) ?? false,
    refreshTokenExpiresAt: stored?.refreshToken
      ? (stored.refreshExpiresAt?.toISOString() ?? null)
      : null,
    refreshTokenValid: stored?.refreshValid(0, now) ?? false,
    scope: stored?.scope ?? null,
  };
  out(JSON.stringify(report, null, 2));
  return report.loggedIn ? 0 : 1;
}

/**
 * In a workflow step the runner masks what it is told to. stderr shares the pipe with a shell's
 * `set -x` trace, so the mask arrives before any trace line can show the token.
 */
function maskInActions(tokenSet: TokenSet): void {
  if (process.env.GITHUB_ACTIONS !== 'true') return;
  for (const secret of [
    tokenSet.accessToken,
    tokenSet.authorizationHeader,
    tokenSet.refreshToken,
  ]) {
    if (secret) err(`::add-mask::${secret}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError || error instanceof ConfigurationError) {
      err(`cdse-auth: ${error.message}`);
      process.exitCode = 2;
    } else if (error instanceof CdseAuthError) {
      err(`cdse-auth: ${error.message}`);
      process.exitCode = 1;
    } else {
      err(`cdse-auth: unexpected error: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    }
  },
);
