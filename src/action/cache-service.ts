// Finds and downloads an Actions cache entry without `@actions/cache`: the library unpacks what
// it downloads with `tar -P` before anything can check it, and costs ~260 ms to import. Saving
// still goes through the library, so this must find what it saves: the protocol choice, the
// version hash and the key rules below are those of @actions/cache 6.x (lib/internal/config.js,
// cacheUtils.js, cache.js), and must change with it.
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Agent, type Dispatcher, EnvHttpProxyAgent, request } from 'undici';
import * as z from 'zod/mini';

export type Protocol = 'v1' | 'v2';
export type CompressionMethod = 'zstd-without-long' | 'gzip';

export interface CacheService {
  protocol: Protocol;
  /** Base URL; v1 appends `_apis/artifactcache/...` to it as a string (it ends in `/`). */
  url: string;
  token: string;
}

export interface FoundEntry {
  /** The key the service matched (the saved key, which starts with the looked-up prefix). */
  key: string;
  /** Signed URL of the archive; holds a signature, so never printed. */
  archiveUrl: string;
}

/** Non-2xx answers, unparsable bodies and refused URLs; never holds a key, token or URL. */
export class CacheServiceError extends Error {
  override name = 'CacheServiceError';
}

const TWIRP_LOOKUP = '/twirp/github.actions.results.api.v1.CacheService/GetCacheEntryDownloadURL';
const V1_ACCEPT = 'application/json;api-version=6.0-preview.1';
const USER_AGENT = 'cdse-auth (+https://github.com/cdse-auth/cdse-auth)';
/** A lookup answer is a few hundred bytes. */
const MAX_JSON_BYTES = 64 * 1024;
const MAX_REDIRECTS = 5;

// 64-bit and unknown fields aside, twirp omits default values: `{}` is a miss like `{ok:false}`.
const TwirpLookup = z.object({
  ok: z.optional(z.boolean()),
  signed_download_url: z.optional(z.string()),
  matched_key: z.optional(z.string()),
});
const V1Lookup = z.object({
  cacheKey: z.optional(z.string()),
  archiveLocation: z.optional(z.string()),
});

/** GHES unless the server is github.com, *.ghe.com or *.localhost (config.js `isGhes`). */
function isGhes(env: NodeJS.ProcessEnv): boolean {
  const host = new URL(env.GITHUB_SERVER_URL || 'https://github.com').hostname
    .trimEnd()
    .toUpperCase();
  return host !== 'GITHUB.COM' && !host.endsWith('.GHE.COM') && !host.endsWith('.LOCALHOST');
}

/**
 * The cache service this job talks to, or undefined where the library's `isFeatureAvailable()`
 * is false. v2 on any non-empty ACTIONS_CACHE_SERVICE_V2, never on GHES.
 */
export function cacheService(env: NodeJS.ProcessEnv = process.env): CacheService | undefined {
  const protocol: Protocol = !isGhes(env) && env.ACTIONS_CACHE_SERVICE_V2 ? 'v2' : 'v1';
  if (protocol === 'v2' ? !env.ACTIONS_RESULTS_URL : !env.ACTIONS_CACHE_URL) return undefined;
  const url = (protocol === 'v2' ? env.ACTIONS_RESULTS_URL : env.ACTIONS_CACHE_URL) as string;
  return { protocol, url, token: env.ACTIONS_RUNTIME_TOKEN ?? '' };
}

/** `getCacheVersion(paths, method)`: a different path list, method or OS family is a miss. */
export function cacheVersion(
  paths: string[],
  method: CompressionMethod,
  platform: NodeJS.Platform = process.platform,
): string {
  const components = [...paths, method];
  if (platform === 'win32') components.push('windows-only'); // saved without enableCrossOsArchive
  components.push('1.0');
  return createHash('sha256').update(components.join('|')).digest('hex');
}

/**
 * The method `saveCache` will use in this job, first, then the other. The library picks zstd when
 * `zstd --quiet --version` prints anything, which costs a process spawn (~20 ms, and a debug
 * line); finding an executable `zstd` on PATH the way its `io.which` does gives the same answer
 * on every sane runner without one. The other method comes second because a miss costs only one
 * more small request, and it also finds entries written by jobs whose runner differed (a broken
 * zstd, or a self-hosted runner without zstd next to hosted ones).
 */
export function compressionOrder(env: NodeJS.ProcessEnv = process.env): CompressionMethod[] {
  return zstdOnPath(env) ? ['zstd-without-long', 'gzip'] : ['gzip', 'zstd-without-long'];
}

function zstdOnPath(env: NodeJS.ProcessEnv): boolean {
  const windows = process.platform === 'win32';
  const extensions = windows
    ? (env.PATHEXT || '.EXE;.CMD;.BAT;.COM').split(';').filter(Boolean)
    : [''];
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    for (const extension of extensions) {
      try {
        const stat = statSync(join(dir, `zstd${extension}`));
        if (stat.isFile() && (windows || isExecutable(stat))) return true;
      } catch {
        // not there
      }
    }
  }
  return false;
}

// io.which's isUnixExecutable: executable by anyone, by our group, or by us as owner.
function isExecutable(stat: { mode: number; uid: number; gid: number }): boolean {
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  return (
    (stat.mode & 0o001) !== 0 ||
    ((stat.mode & 0o010) !== 0 && stat.gid === gid) ||
    ((stat.mode & 0o100) !== 0 && stat.uid === uid)
  );
}

/** The library's `checkKey` and its limit of ten keys per lookup. */
export function validKeys(keys: string[]): boolean {
  return (
    keys.length <= 10 && keys.every((k) => k.length > 0 && k.length <= 512 && !k.includes(','))
  );
}

/** One request's context: the dispatcher (proxy-aware) and the signal bounding the restore. */
export interface RequestContext {
  dispatcher: Dispatcher;
  signal: AbortSignal;
}

/** Honours HTTP(S)_PROXY and NO_PROXY as the rest of the action does. */
export function createDispatcher(env: NodeJS.ProcessEnv = process.env): Dispatcher {
  // undici 6 warns that EnvHttpProxyAgent is experimental; without a proxy it is not needed.
  const proxy = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((n) => !!env[n]);
  return proxy ? new EnvHttpProxyAgent() : new Agent();
}

/**
 * The newest entry matching `key` (exact, then by prefix) or a restore key, saved with
 * `version`; undefined on a miss. Throws CacheServiceError on any other answer.
 */
export async function findEntry(
  service: CacheService,
  key: string,
  restoreKeys: string[],
  version: string,
  context: RequestContext,
): Promise<FoundEntry | undefined> {
  const keys = [key, ...restoreKeys];
  if (!validKeys(keys)) throw new CacheServiceError('the cache key is not valid');
  if (!service.token) throw new CacheServiceError('ACTIONS_RUNTIME_TOKEN is not set');
  const auth = { authorization: `Bearer ${service.token}`, 'user-agent': USER_AGENT };
  if (service.protocol === 'v2') {
    const response = await request(new URL(TWIRP_LOOKUP, service.url), {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ key, restore_keys: restoreKeys, version }),
      ...context,
    });
    const body = await readJson(response, 'GetCacheEntryDownloadURL');
    const answer = TwirpLookup.safeParse(body);
    if (!answer.success) throw new CacheServiceError('GetCacheEntryDownloadURL: unexpected answer');
    const { ok, signed_download_url: archiveUrl, matched_key: matched } = answer.data;
    if (!ok) return undefined;
    if (!archiveUrl || !matched) {
      throw new CacheServiceError('GetCacheEntryDownloadURL: a hit without a URL or key');
    }
    return { key: matched, archiveUrl };
  }
  const query = `keys=${encodeURIComponent(keys.join(','))}&version=${version}`;
  const response = await request(`${service.url}_apis/artifactcache/cache?${query}`, {
    method: 'GET',
    headers: { ...auth, accept: V1_ACCEPT },
    ...context,
  });
  if (response.statusCode === 204) {
    await response.body.dump();
    return undefined;
  }
  const answer = V1Lookup.safeParse(await readJson(response, 'cache lookup'));
  if (!answer.success) throw new CacheServiceError('cache lookup: unexpected answer');
  const { cacheKey, archiveLocation } = answer.data;
  if (!archiveLocation || !cacheKey) {
    throw new CacheServiceError('cache lookup: a hit without a location or key');
  }
  return { key: cacheKey, archiveUrl: archiveLocation };
}

/**
 * The archive at a signed URL: a plain GET with no Authorization header (the signature in the URL
 * is the credential), following a few redirects as the library's http-client does. Undefined when
 * it is larger than `maxBytes`, which no archive cdse-auth writes is.
 */
export async function downloadArchive(
  archiveUrl: string,
  maxBytes: number,
  context: RequestContext,
): Promise<Buffer | undefined> {
  let url: URL;
  try {
    url = new URL(archiveUrl);
  } catch {
    throw new CacheServiceError('the archive URL is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new CacheServiceError('the archive URL is not http(s)');
  }
  const response = await request(url, {
    method: 'GET',
    headers: { 'user-agent': USER_AGENT },
    maxRedirections: MAX_REDIRECTS,
    ...context,
  });
  if (response.statusCode !== 200) {
    await response.body.dump();
    throw new CacheServiceError(`the archive download answered ${response.statusCode}`);
  }
  return readCapped(response.body, maxBytes);
}

async function readJson(response: Dispatcher.ResponseData, what: string): Promise<unknown> {
  const text = await readCapped(response.body, MAX_JSON_BYTES);
  if (response.statusCode < 200 || response.statusCode > 299) {
    throw new CacheServiceError(`${what} answered ${response.statusCode}`);
  }
  try {
    return JSON.parse(text?.toString('utf8') ?? '');
  } catch {
    throw new CacheServiceError(`${what} answered with something that is not JSON`);
  }
}

/** The body, or undefined (the rest unread) as soon as it passes `maxBytes`. */
async function readCapped(
  body: Dispatcher.ResponseData['body'],
  maxBytes: number,
): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
