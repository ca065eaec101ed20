import { ConfigurationError } from './errors.ts';

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/**
 * Checks an identity endpoint URL before anything is sent to it: tokens and passwords travel
 * only over https, except to this machine (tests, local identity servers).
 */
export function checkEndpointUrl(value: string, name: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigurationError(`${name} is not a valid URL.`);
  }
  if (url.username || url.password) {
    throw new ConfigurationError(`${name} must not contain credentials.`);
  }
  const loopback = LOOPBACK.test(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new ConfigurationError(
      `${name} must be an https:// URL (http:// is allowed only for localhost/127.0.0.1), got ${url.protocol}//${url.host}.`,
    );
  }
  return url;
}

/** Keycloak serves logout beside the token endpoint: `.../openid-connect/{token,logout}`. */
export function logoutUrlFor(tokenUrl: string): string | undefined {
  const url = new URL(tokenUrl);
  if (!url.pathname.endsWith('/token')) return undefined;
  url.pathname = `${url.pathname.slice(0, -'token'.length)}logout`;
  return url.toString();
}
