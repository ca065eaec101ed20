import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  CdseAuthError,
  ConfigurationError,
  checkEndpointUrl,
  DEFAULT_CLIENT_ID,
  DEFAULT_TOKEN_URL,
  TokenManager,
  type TokenManagerOptions,
  type TokenSet,
} from '../auth/index.ts';
import { oneLine } from '../auth/redact.ts';
import {
  CREDENTIAL_NAMES,
  type Credentials,
  GRANT_NAMES,
  type GrantName,
  grantChoice,
  hasCredentials,
  providerFromCredentials,
} from '../front/credentials.ts';
import { commandLine, maskValues } from '../front/masks.ts';
import { LIMITS, SessionFile, type SessionSettings } from '../front/session-file.ts';
import { DEFAULT_S3_ENDPOINT } from '../s3/environment.ts';
import { DEFAULT_S3_KEYS_URL } from '../s3/keys.ts';
import { VERSION } from '../version.ts';
import { COMMAND_HELP, isHelpTopic } from './help.ts';
import { defaultCredentialsFile } from './paths.ts';
import { ask } from './prompt.ts';

const USAGE = `cdse-auth ${VERSION}: log in to the Copernicus Data Space Ecosystem and keep a token fresh.

Usage: cdse-auth <command> [options]
       cdse-auth help <command>    (one command in detail)

Commands:
  login    log in (asks for what is missing on a terminal) and save the session
  token    print an access token that is valid now, refreshing it if needed
  header   print "Bearer <access token>" (--openeo: "Bearer oidc/CDSE/<token>")
  status   print the saved session as JSON (no secrets)
  logout   end the server session, delete the S3 key pair it created and the saved credentials
  s3       print export lines for eodata S3 (eval "$(cdse-auth s3)"; --json: a JSON object),
           creating a key pair once and keeping it with the login
  s3 list  the user's S3 key pairs: id and expiry (no secrets)
  s3 delete ID | --all-created
           delete one key pair, or the one this login created

Options (each also read from the environment variable shown):
  --username NAME          CDSE_USERNAME
  --password PASSWORD      CDSE_PASSWORD (prefer the variable: flags show in process lists)
  --totp CODE              CDSE_TOTP         one-time 2FA code
  --totp-secret SECRET     CDSE_TOTP_SECRET  RFC 6238 secret (base32 or otpauth:// URI)
  --client-id ID           CDSE_CLIENT_ID    default ${DEFAULT_CLIENT_ID}
  --client-secret SECRET   CDSE_CLIENT_SECRET
  --refresh-token TOKEN    CDSE_REFRESH_TOKEN
  --token-url URL          CDSE_TOKEN_URL
  --grant GRANT            CDSE_GRANT        ${GRANT_NAMES.join(', ')} (auto: from the credentials set)
  --scope SCOPE            CDSE_SCOPE        OAuth scope to request, e.g. "openid offline_access"
  --timeout SECONDS        CDSE_TIMEOUT      per token request (default 30)
  --max-attempts N         CDSE_MAX_ATTEMPTS per token request, for retryable faults (default 5)
  --expiry-skew SECONDS    CDSE_EXPIRY_SKEW  renew this long before expiry (default 30)
  --credentials-file PATH  CDSE_CREDENTIALS_FILE  default ${defaultCredentialsFile()}
  --s3-keys-url URL        CDSE_S3_KEYS_URL  default ${DEFAULT_S3_KEYS_URL}
  --s3-endpoint URL        CDSE_S3_ENDPOINT  default ${DEFAULT_S3_ENDPOINT}
  -h, --help               this text
  --version                the version

In a workflow job, the action's settings (token URL, client id, scope, timeout, attempts, skew,
S3 keys URL and endpoint) travel with the credentials file; flags and variables win over them.

Exit codes: 0 ok, 1 authentication failed or not logged in, 2 usage error.
`;

const OPTIONS = {
  username: 'CDSE_USERNAME',
  password: 'CDSE_PASSWORD',
  totp: 'CDSE_TOTP',
  'totp-secret': 'CDSE_TOTP_SECRET',
  'client-id': 'CDSE_CLIENT_ID',
  'client-secret': 'CDSE_CLIENT_SECRET',
  'refresh-token': 'CDSE_REFRESH_TOKEN',
  'token-url': 'CDSE_TOKEN_URL',
  grant: 'CDSE_GRANT',
  scope: 'CDSE_SCOPE',
  timeout: 'CDSE_TIMEOUT',
  'max-attempts': 'CDSE_MAX_ATTEMPTS',
  'expiry-skew': 'CDSE_EXPIRY_SKEW',
  'credentials-file': 'CDSE_CREDENTIALS_FILE',
  's3-keys-url': 'CDSE_S3_KEYS_URL',
  's3-endpoint': 'CDSE_S3_ENDPOINT',
} as const;
type OptionName = keyof typeof OPTIONS;
const VERBS = ['login', 'token', 'header', 'status', 'logout', 's3', 'help'] as const;

// The credential names are the flags (and the action's inputs): one table, in front/.
const FIELD_OPTION: Record<keyof Credentials | 'grant', OptionName> = CREDENTIAL_NAMES;

/** Bad usage: exit code 2. */
class UsageError extends Error {}

/**
 * No saved session and no credentials. In a job that means the session the action started has
 * ended (and a renewal removed it): the same advice as for a session that ends in this step.
 */
class NotLoggedIn extends CdseAuthError {
  constructor(inWorkflow: boolean) {
    super(
      inWorkflow
        ? 'Not logged in: the CDSE session of this job has ended.'
        : 'Not logged in: run `cdse-auth login`, or set credentials (CDSE_USERNAME and CDSE_PASSWORD, CDSE_CLIENT_ID and CDSE_CLIENT_SECRET, or CDSE_REFRESH_TOKEN).',
      { ...(inWorkflow && { hint: 'log in again' }) },
    );
  }
}

/** What the CLI touches of the world: tests run it in-process with their own. */
export interface CliDeps {
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Whether a person can be asked (stdin and stderr are terminals). */
  interactive: boolean;
}

interface Setting {
  value: string;
  /** Where it came from, as the user wrote it: `--timeout` or `CDSE_TIMEOUT`. */
  source: string;
}

/** Runs one `cdse-auth` command and answers its exit code; never throws. */
export async function run(deps: CliDeps): Promise<number> {
  // The stored login, once read: what to do about an error depends on what kind it is.
  let stored: TokenSet | undefined;
  try {
    return await command(deps, (loaded) => {
      stored = loaded;
    });
  } catch (error) {
    const said = (message: string) => oneLine(message) || 'failed';
    if (error instanceof UsageError || error instanceof ConfigurationError) {
      deps.stderr(`cdse-auth: ${said(error.message)}`);
      return 2;
    }
    if (error instanceof CdseAuthError) {
      deps.stderr(
        `cdse-auth: ${said([error.message, hintFor(error, deps.env, stored)].join(' '))}`,
      );
      return 1;
    }
    deps.stderr(`cdse-auth: unexpected error: ${said(String((error as Error)?.message ?? error))}`);
    return 1;
  }
}

async function command(deps: CliDeps, loaded: (s: TokenSet | undefined) => void): Promise<number> {
  const { verb, args, settingOf, flags } = parse(deps);
  if (flags.version) {
    deps.stdout(VERSION);
    return 0;
  }
  // `help <command>` and `<command> --help` say what one command does; bare --help, all of it.
  const topic = verb === 'help' ? args[0] : flags.help ? verb : undefined;
  if (topic !== undefined) {
    if (!isHelpTopic(topic)) throw new UsageError(`no help for '${topic}'. Run cdse-auth help.`);
    deps.stdout(COMMAND_HELP[topic]);
    return 0;
  }
  if (flags.help || verb === 'help' || !verb) {
    (verb || flags.help ? deps.stdout : deps.stderr)(USAGE);
    return verb || flags.help ? 0 : 2;
  }

  const file = settingOf('credentials-file');
  const path = file?.value ?? defaultCredentialsFile(deps.env);
  if ((await stat(path).catch(() => undefined))?.isDirectory()) {
    throw new UsageError(`${file?.source ?? 'the credentials file'}: ${path} is a directory.`);
  }
  const store = new SessionFile(path, undefined, {
    onWarning: (message) => deps.stderr(`cdse-auth: warning: ${message}`),
  });
  const stored = await store.load();
  loaded(stored);
  const options = managerOptions(settingOf, { ...sessionOf(stored), ...store.settings }, deps);
  const credentials = credentialsOf(settingOf, options.clientId);
  const grant = grantOf(settingOf);
  // The stored session, or a login from the credentials given: what token, header and s3 use.
  const sessionManager = () =>
    hasCredentials(credentials)
      ? new TokenManager(provider(credentials, grant), { ...options, store })
      : TokenManager.storedSession({
          ...options,
          store,
          ...(credentials.clientSecret && { clientSecret: credentials.clientSecret }),
        });
  const s3 = () =>
    import('./s3.ts').then(({ S3Command }) => {
      if (!stored && !hasCredentials(credentials)) {
        throw new NotLoggedIn(deps.env.GITHUB_ACTIONS === 'true');
      }
      return new S3Command({
        deps,
        store,
        settingOf,
        sessionManager,
        mask: maskerFor(deps),
        timeout: options.timeout,
        maxAttempts: options.maxAttempts,
      });
    });
  switch (verb) {
    case 'status':
      return status(deps, store, stored);
    case 'login':
      return login(deps, store, stored, await prompted(deps, credentials), options, grant);
    case 'token':
    case 'header': {
      if (!stored && !hasCredentials(credentials)) {
        throw new NotLoggedIn(deps.env.GITHUB_ACTIONS === 'true');
      }
      const manager = sessionManager();
      try {
        const tokenSet = await manager.getTokenSet();
        if (verb === 'token') deps.stdout(tokenSet.accessToken);
        else if (flags.openeo) deps.stdout(`Bearer oidc/CDSE/${tokenSet.accessToken}`);
        else deps.stdout(tokenSet.authorizationHeader);
        return 0;
      } finally {
        await manager.close();
      }
    }
    case 'logout': {
      if (!stored) {
        deps.stderr('cdse-auth: no saved session; nothing to log out.');
        return 0;
      }
      // The pair goes first: deleting it takes an access token of the session.
      if (store.settings.s3) await (await s3()).deleteCreated({ onLogout: true });
      const manager = TokenManager.storedSession({
        ...options,
        store,
        ...(credentials.clientSecret && { clientSecret: credentials.clientSecret }),
      });
      try {
        const ended = await manager.logout();
        deps.stderr(
          ended
            ? 'Logged out: the CDSE session has ended.'
            : 'No server session was left; removed the saved credentials.',
        );
        return 0;
      } finally {
        await manager.close();
      }
    }
    case 's3':
      return (await s3()).run(args, flags);
  }
}

function parse(deps: CliDeps) {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: deps.argv,
      allowPositionals: true,
      options: {
        ...Object.fromEntries(
          Object.keys(OPTIONS).map((name) => [name, { type: 'string' as const }]),
        ),
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
        openeo: { type: 'boolean' },
        json: { type: 'boolean' },
        'all-created': { type: 'boolean' },
      },
    });
  } catch (error) {
    throw new UsageError(`${didYouMean((error as Error).message)} Run cdse-auth --help for usage.`);
  }
  const { values, positionals } = parsed;
  const [verb, ...args] = positionals;
  // Only s3 has subcommands (it checks its own); help takes the command to explain.
  const takesArgs = verb === 's3' || (verb === 'help' && args.length === 1);
  if (args.length > 0 && !takesArgs) throw new UsageError(`unexpected argument '${args[0]}'.`);
  if (verb !== undefined && !(VERBS as readonly string[]).includes(verb)) {
    const near = VERBS.find((v) => closeTo(v, verb));
    throw new UsageError(
      `unknown command '${verb}'${near ? `; did you mean '${near}'?` : ''}. Commands: ${VERBS.join(', ')}.`,
    );
  }
  const settingOf = (name: OptionName): Setting | undefined => {
    const flag = (values as Record<string, unknown>)[name];
    if (typeof flag === 'string' && flag) return { value: flag, source: `--${name}` };
    const env = deps.env[OPTIONS[name]];
    return env ? { value: env, source: OPTIONS[name] } : undefined;
  };
  return {
    verb: verb as (typeof VERBS)[number] | undefined,
    args,
    settingOf,
    flags: {
      help: !!values.help,
      version: !!values.version,
      openeo: !!values.openeo,
      json: !!values.json,
      allCreated: !!values['all-created'],
    },
  };
}

export type SettingOf = (name: OptionName) => Setting | undefined;

// parseArgs says "Unknown option '--tiemout'": name the option it was probably meant to be.
function didYouMean(message: string): string {
  const unknown = /Unknown option '--([^']+)'/.exec(message)?.[1];
  const near = unknown && Object.keys(OPTIONS).find((name) => closeTo(name, unknown));
  return near ? `${message.replace(/\.$/, '')}; did you mean '--${near}'?` : message;
}

// One edit apart (a typo), or one is a prefix of the other.
function closeTo(a: string, b: string): boolean {
  if (a.startsWith(b) || b.startsWith(a)) return true;
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  const rest = (x: string, skip: number) => x.slice(i + skip);
  return (
    rest(a, 1) === rest(b, 1) ||
    rest(a, 1) === rest(b, 0) ||
    rest(a, 0) === rest(b, 1) ||
    (a[i] === b[i + 1] && a[i + 1] === b[i] && rest(a, 2) === rest(b, 2))
  );
}

function wholeNumber(setting: Setting | undefined, limit: keyof typeof LIMITS) {
  if (!setting) return undefined;
  const { min, max, unit } = LIMITS[limit];
  const n = /^\d+$/.test(setting.value) ? Number(setting.value) : Number.NaN;
  if (!(n >= min && n <= max)) {
    throw new UsageError(
      `${setting.source}: expected a whole number of ${unit} from ${min} to ${max}.`,
    );
  }
  return n;
}

/** A saved login is carried on against the server and client that issued it. */
const sessionOf = (stored: TokenSet | undefined): SessionSettings => ({
  ...(stored?.tokenUrl && { tokenUrl: stored.tokenUrl }),
  ...(stored?.clientId && { clientId: stored.clientId }),
});

/** Flags, then variables, then the settings that came with the credentials file, then defaults. */
function managerOptions(settingOf: SettingOf, settings: SessionSettings, deps: CliDeps) {
  const url = settingOf('token-url');
  if (url) checkEndpointUrl(url.value, url.source);
  const options = {
    tokenUrl: url?.value ?? settings.tokenUrl ?? DEFAULT_TOKEN_URL,
    clientId: settingOf('client-id')?.value ?? settings.clientId ?? DEFAULT_CLIENT_ID,
    scope: settingOf('scope')?.value ?? settings.scope,
    timeout: wholeNumber(settingOf('timeout'), 'timeout') ?? settings.timeout,
    maxAttempts: wholeNumber(settingOf('max-attempts'), 'maxAttempts') ?? settings.maxAttempts,
    expirySkew: wholeNumber(settingOf('expiry-skew'), 'expirySkew') ?? settings.expirySkew,
    onSecret: maskerFor(deps),
  } satisfies TokenManagerOptions & { clientId: string };
  return options;
}

function grantOf(settingOf: SettingOf) {
  const setting = settingOf('grant');
  const value = setting?.value ?? 'auto';
  if (!(GRANT_NAMES as readonly string[]).includes(value)) {
    throw new UsageError(
      `${setting?.source}: expected ${GRANT_NAMES.join(', ')} (got '${value}').`,
    );
  }
  return grantChoice(value as GrantName);
}

function credentialsOf(settingOf: SettingOf, clientId: string): Credentials {
  return {
    username: settingOf('username')?.value,
    password: settingOf('password')?.value,
    totp: settingOf('totp')?.value,
    totpSecret: settingOf('totp-secret')?.value,
    refreshToken: settingOf('refresh-token')?.value,
    clientSecret: settingOf('client-secret')?.value,
    clientId,
  };
}

const provider = (credentials: Credentials, grant: ReturnType<typeof grantOf>) =>
  providerFromCredentials(credentials, grant, (field) => `--${FIELD_OPTION[field]}`);

async function prompted(deps: CliDeps, credentials: Credentials): Promise<Credentials> {
  const wantsPassword = !credentials.clientSecret && !credentials.refreshToken;
  if (deps.interactive && wantsPassword) {
    credentials.username ??= (await ask('CDSE username (e-mail): ')) || undefined;
    credentials.password ??= (await ask('Password: ', { hidden: true })) || undefined;
    if (!credentials.totp && !credentials.totpSecret) {
      credentials.totp = (await ask('2FA code (leave empty if none): ')) || undefined;
    }
  }
  return credentials;
}

async function login(
  deps: CliDeps,
  store: SessionFile,
  stored: TokenSet | undefined,
  credentials: Credentials,
  options: ReturnType<typeof managerOptions>,
  grant: ReturnType<typeof grantOf>,
): Promise<number> {
  if (!hasCredentials(credentials)) {
    throw new ConfigurationError(
      'login needs credentials: run it on a terminal to be asked, or set CDSE_USERNAME and CDSE_PASSWORD (or CDSE_CLIENT_ID and CDSE_CLIENT_SECRET, or CDSE_REFRESH_TOKEN).',
    );
  }
  const chosen = provider(credentials, grant);
  // CDSE counts active sessions per user (100 at most): end the one this login replaces.
  if (stored?.refreshToken) {
    const previous = TokenManager.storedSession({
      ...options,
      tokenUrl: stored.tokenUrl ?? options.tokenUrl,
      clientId: stored.clientId ?? chosen.clientId,
      store,
      maxAttempts: 1,
    });
    await previous.logout().catch(() => store.clear());
    await previous.close();
  } else {
    await store.clear();
  }
  const manager = new TokenManager(chosen, { ...options, store });
  try {
    const tokenSet = await manager.getTokenSet();
    const refresh = tokenSet.refreshToken
      ? `, refreshable until ${tokenSet.refreshExpiresAt?.toISOString() ?? 'revoked'}`
      : '';
    deps.stderr(
      `Logged in to ${new URL(options.tokenUrl).host}: access token valid until ${tokenSet.expiresAt.toISOString()}${refresh}.`,
    );
    deps.stderr(`Saved to ${store.path}.`);
    return 0;
  } finally {
    await manager.close();
  }
}

function status(deps: CliDeps, store: SessionFile, stored: TokenSet | undefined): number {
  const now = Date.now();
  const { settings } = store;
  const report = {
    loggedIn: !!stored && (stored.accessValid(0, now) || stored.refreshValid(0, now)),
    credentialsFile: store.path,
    tokenUrl: stored?.tokenUrl ?? null,
    clientId: stored?.clientId ?? null,
    sessionId: stored?.sessionId ?? null,
    fromCache: settings.fromCache ?? false,
    tokenRequests: settings.tokenRequests ?? 0,
    tokenType: stored?.tokenType ?? null,
    accessTokenExpiresAt: stored?.expiresAt.toISOString() ?? null,
    accessTokenValid: stored?.accessValid(0, now) ?? false,
    refreshTokenExpiresAt: stored?.refreshToken
      ? (stored.refreshExpiresAt?.toISOString() ?? null)
      : null,
    refreshTokenValid: stored?.refreshValid(0, now) ?? false,
    scope: stored?.scope ?? null,
  };
  deps.stdout(JSON.stringify(report, null, 2));
  return report.loggedIn ? 0 : 1;
}

/**
 * In a workflow step the runner masks what it is told to. stderr shares the pipe with a shell's
 * `set -x` trace, so the mask arrives before any trace line can show the token.
 */
function maskerFor(deps: CliDeps): ((value: string) => void) | undefined {
  if (deps.env.GITHUB_ACTIONS !== 'true') return undefined;
  return (secret) => {
    for (const value of maskValues(secret)) deps.stderr(commandLine('add-mask', value));
  };
}

/** What to do about an error, in this front end's words. */
function hintFor(error: CdseAuthError, env: NodeJS.ProcessEnv, stored?: TokenSet): string {
  if (!(error instanceof NotLoggedIn || error.name === 'SessionExpiredError')) {
    return error.hint ?? '';
  }
  if (!error.hint) return '';
  // A client-credentials session has no refresh token: only the client secret renews it.
  if (stored && !stored.refreshToken) {
    return 'Set CDSE_CLIENT_SECRET (with CDSE_CLIENT_ID) to renew it, or run `cdse-auth login`.';
  }
  return env.GITHUB_ACTIONS === 'true'
    ? 'A step that outlives the session can log in again only with credentials: pass them to this step (the reusable workflow input pass-credentials: true, or CDSE_USERNAME/CDSE_PASSWORD/CDSE_TOTP_SECRET in its env), or log in with scope: offline_access for a refresh token that outlives the session.'
    : 'Run `cdse-auth login`, or set credentials (CDSE_USERNAME and CDSE_PASSWORD, CDSE_CLIENT_ID and CDSE_CLIENT_SECRET, or CDSE_REFRESH_TOKEN).';
}
