import { Agent, type Dispatcher, EnvHttpProxyAgent } from 'undici';

/**
 * The connection pool for the keys manager and S3: through HTTP(S)_PROXY when one is set, as for
 * the token endpoint. The caller closes it.
 */
export function s3Dispatcher(env: NodeJS.ProcessEnv = process.env): Dispatcher {
  // undici 6 warns that EnvHttpProxyAgent is experimental; without a proxy it is not needed.
  const proxied = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((n) => !!env[n]);
  return proxied ? new EnvHttpProxyAgent() : new Agent();
}
