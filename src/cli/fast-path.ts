import { lstatSync, readFileSync } from 'node:fs';
import { authorizationHeader, isToken, TOKEN_TYPE_PATTERN } from '../auth/token-format.ts';
import { defaultCredentialsFile } from './paths.ts';

const DEFAULT_SKEW_SECONDS = 30;

/**
 * `cdse-auth token` / `header` while the stored access token is valid: the answer comes from the
 * file, a clock and nothing else, because pipelines call it once per request. It loads no HTTP
 * client, no schema library and no front-end code; anything it is not sure of (a flag, a setting
 * that disagrees with the file, a file it would not trust, a token due for renewal) returns
 * `undefined`, and the full CLI, which checks, warns and renews, answers instead.
 */
export function storedAnswer(argv: string[], env: NodeJS.ProcessEnv): string | undefined {
  const [verb, ...rest] = argv;
  if (rest.length > 0 || (verb !== 'token' && verb !== 'header')) return undefined;
  const path = env.CDSE_CREDENTIALS_FILE || defaultCredentialsFile(env);
  let file: {
    version?: unknown;
    tokenSet?: Record<string, unknown>;
    meta?: { expirySkew?: unknown };
  };
  try {
    // The same rules as FileTokenStore: a regular file of ours that nobody else can read.
    const stat = lstatSync(path);
    if (!stat.isFile()) return undefined;
    if (process.platform !== 'win32') {
      if (process.getuid && stat.uid !== process.getuid()) return undefined;
      if ((stat.mode & 0o077) !== 0) return undefined;
    }
    file = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  const set = file?.tokenSet;
  if (file?.version !== 1 || !set || typeof set !== 'object') return undefined;
  const { accessToken, tokenType = 'Bearer', expiresAt, tokenUrl, clientId } = set;
  if (!isToken(accessToken)) return undefined;
  if (typeof tokenType !== 'string' || !TOKEN_TYPE_PATTERN.test(tokenType)) return undefined;
  // A token from another endpoint or client than the one asked for is not the answer.
  if (env.CDSE_TOKEN_URL && env.CDSE_TOKEN_URL !== tokenUrl) return undefined;
  if (env.CDSE_CLIENT_ID && env.CDSE_CLIENT_ID !== clientId) return undefined;
  const skew = expirySkew(env.CDSE_EXPIRY_SKEW, file.meta?.expirySkew);
  const expires = typeof expiresAt === 'string' ? Date.parse(expiresAt) : Number.NaN;
  if (skew === undefined || !(Date.now() + skew * 1000 < expires)) return undefined;
  return verb === 'token' ? accessToken : authorizationHeader(tokenType, accessToken);
}

// The variable wins over the login's setting; a value the full CLI would refuse goes to it.
function expirySkew(variable: string | undefined, stored: unknown): number | undefined {
  if (variable)
    return /^\d{1,4}$/.test(variable) && Number(variable) <= 3000 ? Number(variable) : undefined;
  if (stored === undefined) return DEFAULT_SKEW_SECONDS;
  return Number.isInteger(stored) && (stored as number) >= 0 && (stored as number) <= 3000
    ? (stored as number)
    : undefined;
}
