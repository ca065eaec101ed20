// Emulates the GitHub Actions cache service (v2 twirp + Azure-style blob store, and the v1
// legacy REST API) on 127.0.0.1, so the real `@actions/cache` runs end to end in tests.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type CacheFault =
  | { kind: 'status'; status: number }
  | { kind: 'garbage' }
  | { kind: 'slow'; ms: number }
  | { kind: 'reset' }
  | { kind: 'blob-status'; status: number }
  // Hostile storage: the archive download answers this many bytes (a planted oversized entry).
  | { kind: 'blob-huge'; bytes: number }
  // Every reservation is refused as "already exists": the library then logs the key it tried.
  | { kind: 'reserve-conflict' };

export interface CacheEntry {
  key: string;
  version: string;
  data: Buffer;
  createdAt: number;
  scope: string;
}

export interface CacheRequest {
  method: string;
  path: string;
  api: string;
  status: number;
  /** Whether the request carried an Authorization header (a blob download must not). */
  authorized: boolean;
}

interface Pending {
  id: number;
  protocol: 'v1' | 'v2';
  key: string;
  version: string;
  scope: string;
  data: Buffer | undefined;
  chunks: Array<{ start: number; data: Buffer }>;
  blocks: Map<string, Buffer>;
}

const TWIRP_PREFIX = '/twirp/github.actions.results.api.v1.CacheService/';
const TWIRP_METHODS = new Set([
  'GetCacheEntryDownloadURL',
  'CreateCacheEntry',
  'FinalizeCacheEntryUpload',
]);
const V1_PREFIX = '/_apis/artifactcache/';
// The Azure SDK parses an IP-host URL as /<account>/<container>/<blob>.
const BLOB_PREFIX = '/blob/cache/';
const SCOPE = 'refs/heads/main';
const NO_PROXY = '127.0.0.1,localhost';

const TWIRP_CODES: Record<number, string> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'permission_denied',
  404: 'not_found',
  409: 'already_exists',
  412: 'failed_precondition',
  429: 'resource_exhausted',
  500: 'internal',
  501: 'unimplemented',
  503: 'unavailable',
  504: 'deadline_exceeded',
};

type Reply = { status: number; headers?: Record<string, string>; body?: Buffer | string };

function jsonError(status: number, msg: string, code?: string): Reply {
  // `msg` is what the twirp client reads, `message` what @actions/http-client reads (v1).
  const body = JSON.stringify({
    code: code ?? TWIRP_CODES[status] ?? 'unknown',
    msg,
    message: msg,
  });
  return { status, headers: { 'content-type': 'application/json' }, body };
}

function json(status: number, value: unknown): Reply {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}

// The Azure SDK deserialises blob errors as XML, like the real storage service sends them.
function blobError(status: number, code: string, message: string): Reply {
  const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  return { status, headers: { 'content-type': 'application/xml', 'x-ms-error-code': code }, body };
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function classify(method: string, path: string, search: URLSearchParams): string {
  if (path.startsWith(TWIRP_PREFIX)) return path.slice(TWIRP_PREFIX.length) || 'twirp:unknown';
  if (path.startsWith(V1_PREFIX)) {
    const rest = path.slice(V1_PREFIX.length);
    if (rest === 'cache' && method === 'GET') return 'v1:get';
    if (rest === 'caches' && method === 'GET') return 'v1:list';
    if (rest === 'caches' && method === 'POST') return 'v1:reserve';
    if (/^caches\/\d+$/.test(rest) && method === 'PATCH') return 'v1:upload';
    if (/^caches\/\d+$/.test(rest) && method === 'POST') return 'v1:commit';
    return 'v1:unknown';
  }
  if (path.startsWith(BLOB_PREFIX)) {
    if (method === 'GET' || method === 'HEAD') return 'blob:get';
    if (method === 'PUT') {
      const comp = search.get('comp');
      if (comp === 'block') return 'blob:block';
      if (comp === 'blocklist') return 'blob:blocklist';
      return 'blob:put';
    }
    return 'blob:unknown';
  }
  return 'unknown';
}

function isBlobTransfer(api: string): boolean {
  return api.startsWith('blob:') || api === 'v1:upload';
}

export class CacheServer {
  readonly origin: string;
  readonly entries: CacheEntry[] = [];
  readonly requests: CacheRequest[] = [];
  #server: Server;
  #sockets = new Set<Socket>();
  #timers = new Set<NodeJS.Timeout>();
  #token = randomBytes(24).toString('base64url');
  #secret = randomBytes(32);
  #fault: CacheFault | undefined;
  #nextId = 1;
  #ids = new WeakMap<CacheEntry, number>();
  #pending = new Map<number, Pending>();

  private constructor(server: Server, origin: string) {
    this.#server = server;
    this.origin = origin;
  }

  static async start(): Promise<CacheServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    const self = new CacheServer(server, `http://127.0.0.1:${port}`);
    server.on('connection', (socket) => {
      self.#sockets.add(socket);
      socket.on('close', () => self.#sockets.delete(socket));
      // A client that gives up mid-request must not surface as an unhandled error.
      socket.on('error', () => {});
    });
    server.on('request', (req, res) => {
      self.#handle(req, res).catch(() => {
        if (!res.headersSent) res.destroy();
      });
    });
    return self;
  }

  env(protocol: 'v2' | 'v1'): Record<string, string> {
    const base = `${this.origin}/`;
    return {
      // The library picks v2 on any non-empty value, so '' selects v1 and masks a runner's own value.
      ACTIONS_CACHE_SERVICE_V2: protocol === 'v2' ? 'true' : '',
      // Both URLs point here so neither protocol can reach a real service from a CI runner.
      ACTIONS_RESULTS_URL: base,
      ACTIONS_CACHE_URL: base,
      ACTIONS_RUNTIME_TOKEN: this.#token,
      // Unset/unknown means read+write; a runner's read-only mode would silently skip saves.
      ACTIONS_CACHE_MODE: '',
      GITHUB_SERVER_URL: 'https://github.com',
      NO_PROXY,
      no_proxy: NO_PROXY,
    };
  }

  /**
   * Stores `data` as an entry under `key`, as anyone with cache write access could: the newest
   * entry unless `createdAt` says otherwise. `version` must be what the library computes for the
   * restoring job (take it from an entry the library saved).
   */
  plant(key: string, data: Buffer, version: string, createdAt = Date.now() + 1): CacheEntry {
    const entry: CacheEntry = { key, version, data, createdAt, scope: SCOPE };
    this.entries.push(entry);
    return entry;
  }

  setFault(fault: CacheFault | undefined): void {
    this.#fault = fault;
  }

  clear(): void {
    this.entries.length = 0;
    this.requests.length = 0;
    this.#pending.clear();
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    this.#server.closeAllConnections();
    await closed;
  }

  #delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        resolve();
      }, ms);
      this.#timers.add(timer);
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', this.origin);
    const api = classify(method, url.pathname, url.searchParams);
    const log: CacheRequest = {
      method,
      path: url.pathname,
      api,
      status: 0,
      authorized: req.headers.authorization !== undefined,
    };
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);

    const fault = this.#fault;
    if (fault?.kind === 'reset') {
      this.requests.push(log);
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'slow') await this.#delay(fault.ms);

    let reply: Reply;
    const blob = isBlobTransfer(api);
    if (!blob && fault?.kind === 'status') {
      reply = jsonError(fault.status, `injected fault: ${fault.status}`);
    } else if (!blob && fault?.kind === 'garbage') {
      reply = { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>oops</html>' };
    } else if (
      fault?.kind === 'reserve-conflict' &&
      (api === 'CreateCacheEntry' || api === 'v1:reserve')
    ) {
      reply = jsonError(409, 'cache entry with the same key, version, and scope already exists');
    } else if (api === 'blob:get' && fault?.kind === 'blob-huge') {
      reply = {
        status: 200,
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.alloc(fault.bytes, 0x41),
      };
    } else if (blob && fault?.kind === 'blob-status') {
      reply =
        api === 'v1:upload'
          ? jsonError(fault.status, `injected fault: ${fault.status}`)
          : blobError(fault.status, 'InjectedFault', `injected fault: ${fault.status}`);
    } else {
      reply = this.#route(req, method, url, api, body);
    }

    log.status = reply.status;
    this.requests.push(log);
    const payload =
      reply.body === undefined
        ? Buffer.alloc(0)
        : Buffer.isBuffer(reply.body)
          ? reply.body
          : Buffer.from(reply.body);
    const headers: Record<string, string> = { ...reply.headers };
    const clientRequestId = req.headers['x-ms-client-request-id'];
    if (typeof clientRequestId === 'string') headers['x-ms-client-request-id'] = clientRequestId;
    if (reply.status !== 204 && reply.status !== 304) {
      headers['content-length'] ??= String(payload.length);
    }
    res.writeHead(reply.status, headers);
    res.end(method === 'HEAD' || reply.status === 204 ? undefined : payload);
  }

  #route(req: IncomingMessage, method: string, url: URL, api: string, body: Buffer): Reply {
    if (url.pathname.startsWith(BLOB_PREFIX)) return this.#blob(req, method, url, api, body);
    if (api === 'unknown') return jsonError(404, `no route for ${method} ${url.pathname}`);
    if (req.headers.authorization !== `Bearer ${this.#token}`) {
      return jsonError(401, 'missing or invalid bearer token');
    }
    if (url.pathname.startsWith(TWIRP_PREFIX)) {
      if (method !== 'POST' || !TWIRP_METHODS.has(api)) {
        return jsonError(404, `no such method: ${method} ${api}`, 'bad_route');
      }
      let input: Record<string, unknown>;
      try {
        const parsed: unknown = JSON.parse(body.toString('utf8') || '{}');
        if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object');
        input = parsed as Record<string, unknown>;
      } catch {
        return jsonError(400, 'request body is not a JSON object', 'malformed');
      }
      return this.#twirp(api, input);
    }
    return this.#v1(req, api, url, body);
  }

  #twirp(api: string, input: Record<string, unknown>): Reply {
    const key = str(input.key);
    const version = str(input.version);
    if (!key || !version) return jsonError(400, 'key and version are required');
    if (api === 'GetCacheEntryDownloadURL') {
      const restoreKeys = input.restore_keys ?? input.restoreKeys ?? [];
      const keys = [key, ...(Array.isArray(restoreKeys) ? restoreKeys.map(str) : [])];
      const entry = this.#lookup(keys, version);
      if (!entry) return json(200, { ok: false });
      return json(200, {
        ok: true,
        signed_download_url: this.#blobUrl(this.#idOf(entry), 'r'),
        matched_key: entry.key,
      });
    }
    if (api === 'CreateCacheEntry') {
      if (this.#exists(key, version)) {
        return jsonError(409, 'cache entry with the same key, version, and scope already exists');
      }
      const pending = this.#reserve('v2', key, version);
      return json(200, { ok: true, signed_upload_url: this.#blobUrl(pending.id, 'cw') });
    }
    // FinalizeCacheEntryUpload
    const pending = [...this.#pending.values()].find(
      (p) => p.protocol === 'v2' && p.key === key && p.version === version,
    );
    if (!pending) return jsonError(404, 'no reserved cache entry for this key and version');
    if (!pending.data) return json(200, { ok: false, message: 'no blob was uploaded' });
    const size = Number(input.size_bytes ?? input.sizeBytes);
    if (size !== pending.data.length) {
      return jsonError(400, `size_bytes ${size} does not match uploaded ${pending.data.length}`);
    }
    this.#commit(pending, pending.data);
    return json(200, { ok: true, entry_id: String(pending.id) });
  }

  #v1(req: IncomingMessage, api: string, url: URL, body: Buffer): Reply {
    const id = Number(url.pathname.split('/').pop());
    switch (api) {
      case 'v1:get': {
        const keys = (url.searchParams.get('keys') ?? '').split(',').filter(Boolean);
        const version = url.searchParams.get('version') ?? '';
        if (keys.length === 0 || !version) return jsonError(400, 'keys and version are required');
        const entry = this.#lookup(keys, version);
        if (!entry) return { status: 204 };
        return json(200, {
          cacheKey: entry.key,
          scope: entry.scope,
          creationTime: new Date(entry.createdAt).toISOString(),
          archiveLocation: this.#blobUrl(this.#idOf(entry), 'r'),
        });
      }
      case 'v1:list': {
        const key = url.searchParams.get('key') ?? '';
        const found = this.entries.filter((e) => e.key === key);
        return json(200, {
          totalCount: found.length,
          artifactCaches: found.map((e) => ({
            cacheKey: e.key,
            cacheVersion: e.version,
            scope: e.scope,
            creationTime: new Date(e.createdAt).toISOString(),
          })),
        });
      }
      case 'v1:reserve': {
        let input: Record<string, unknown>;
        try {
          input = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        } catch {
          return jsonError(400, 'request body is not JSON');
        }
        const key = str(input?.key);
        const version = str(input?.version);
        if (!key || !version) return jsonError(400, 'key and version are required');
        if (this.#exists(key, version)) {
          return jsonError(
            409,
            `Cache already exists. Scope: ${SCOPE}, Key: ${key}, Version: ${version}`,
            'ArtifactCacheAlreadyExistsException',
          );
        }
        return json(201, { cacheId: this.#reserve('v1', key, version).id });
      }
      case 'v1:upload': {
        const pending = this.#pending.get(id);
        if (pending?.protocol !== 'v1') return jsonError(404, `no reserved cache ${id}`);
        const range = /^bytes (\d+)-(\d+)\/(\*|\d+)$/.exec(req.headers['content-range'] ?? '');
        if (!range) return jsonError(400, 'missing or invalid Content-Range');
        const start = Number(range[1]);
        const end = Number(range[2]);
        if (end - start + 1 !== body.length) {
          return jsonError(
            400,
            `Content-Range covers ${end - start + 1} bytes, got ${body.length}`,
          );
        }
        pending.chunks.push({ start, data: body });
        return { status: 204 };
      }
      case 'v1:commit': {
        const pending = this.#pending.get(id);
        if (pending?.protocol !== 'v1') return jsonError(404, `no reserved cache ${id}`);
        let size: number;
        try {
          size = Number((JSON.parse(body.toString('utf8')) as { size?: unknown }).size);
        } catch {
          return jsonError(400, 'request body is not JSON');
        }
        const sorted = [...pending.chunks].sort((a, b) => a.start - b.start);
        let offset = 0;
        for (const chunk of sorted) {
          if (chunk.start !== offset) return jsonError(400, `missing bytes at offset ${offset}`);
          offset += chunk.data.length;
        }
        if (offset !== size)
          return jsonError(400, `size ${size} does not match uploaded ${offset}`);
        this.#commit(pending, Buffer.concat(sorted.map((c) => c.data)));
        return { status: 204 };
      }
      default:
        return jsonError(404, `no route for ${api}`);
    }
  }

  #blob(req: IncomingMessage, method: string, url: URL, api: string, body: Buffer): Reply {
    const id = Number(url.pathname.slice(BLOB_PREFIX.length));
    const sp = url.searchParams.get('sp') ?? '';
    const sig = url.searchParams.get('sig') ?? '';
    if (!Number.isInteger(id) || !this.#validSig(id, sp, sig)) {
      return blobError(403, 'AuthenticationFailed', 'signature did not match');
    }
    if (api === 'blob:get') {
      if (!sp.includes('r'))
        return blobError(403, 'AuthorizationPermissionMismatch', 'not readable');
      const entry = this.entries.find((e) => this.#ids.get(e) === id);
      if (!entry) return blobError(404, 'BlobNotFound', 'The specified blob does not exist.');
      const headers = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (range) {
        const start = Number(range[1]);
        const end = Math.min(
          range[2] ? Number(range[2]) : entry.data.length - 1,
          entry.data.length - 1,
        );
        if (start > end) return blobError(416, 'InvalidRange', 'range not satisfiable');
        return {
          status: 206,
          headers: { ...headers, 'content-range': `bytes ${start}-${end}/${entry.data.length}` },
          body: entry.data.subarray(start, end + 1),
        };
      }
      return { status: 200, headers, body: entry.data };
    }
    if (!sp.includes('w')) return blobError(403, 'AuthorizationPermissionMismatch', 'not writable');
    const pending = this.#pending.get(id);
    if (pending?.protocol !== 'v2') {
      return blobError(404, 'ContainerNotFound', 'no reservation for this blob');
    }
    const ok: Reply = {
      status: 201,
      headers: {
        etag: `"0x${randomBytes(8).toString('hex').toUpperCase()}"`,
        'last-modified': new Date().toUTCString(),
        'x-ms-request-id': randomBytes(16).toString('hex'),
        'x-ms-version': '2025-01-05',
        'x-ms-request-server-encrypted': 'true',
      },
    };
    if (api === 'blob:put') {
      if (method !== 'PUT') return blobError(405, 'UnsupportedHttpVerb', method);
      pending.data = body;
      return ok;
    }
    if (api === 'blob:block') {
      const blockId = url.searchParams.get('blockid');
      if (!blockId) return blobError(400, 'InvalidQueryParameterValue', 'blockid is required');
      pending.blocks.set(blockId, body);
      return ok;
    }
    if (api === 'blob:blocklist') {
      const parts: Buffer[] = [];
      for (const match of body
        .toString('utf8')
        .matchAll(/<(Latest|Committed|Uncommitted)>([^<]*)<\/\1>/g)) {
        const block = pending.blocks.get(match[2] ?? '');
        if (!block) return blobError(400, 'InvalidBlockList', `unknown block ${match[2]}`);
        parts.push(block);
      }
      pending.data = Buffer.concat(parts);
      pending.blocks.clear();
      return ok;
    }
    return blobError(405, 'UnsupportedHttpVerb', method);
  }

  #lookup(keys: string[], version: string): CacheEntry | undefined {
    // Newest first; insertion order breaks ties between saves in the same millisecond.
    const candidates = this.entries
      .map((entry, index) => ({ entry, index }))
      .filter(({ entry }) => entry.version === version)
      .sort((a, b) => b.entry.createdAt - a.entry.createdAt || b.index - a.index)
      .map(({ entry }) => entry);
    for (const key of keys) {
      const hit =
        candidates.find((e) => e.key === key) ?? candidates.find((e) => e.key.startsWith(key));
      if (hit) return hit;
    }
    return undefined;
  }

  // Uniqueness is per (key, version, scope) as in the real service; in-flight reservations count.
  #exists(key: string, version: string): boolean {
    return (
      this.entries.some((e) => e.key === key && e.version === version && e.scope === SCOPE) ||
      [...this.#pending.values()].some((p) => p.key === key && p.version === version)
    );
  }

  #reserve(protocol: 'v1' | 'v2', key: string, version: string): Pending {
    const pending: Pending = {
      id: this.#nextId++,
      protocol,
      key,
      version,
      scope: SCOPE,
      data: undefined,
      chunks: [],
      blocks: new Map(),
    };
    this.#pending.set(pending.id, pending);
    return pending;
  }

  #commit(pending: Pending, data: Buffer): void {
    this.#pending.delete(pending.id);
    const entry: CacheEntry = {
      key: pending.key,
      version: pending.version,
      data,
      createdAt: Date.now(),
      scope: pending.scope,
    };
    this.#ids.set(entry, pending.id);
    this.entries.push(entry);
  }

  // Entries a test pushes into `entries` directly get an id on first use.
  #idOf(entry: CacheEntry): number {
    let id = this.#ids.get(entry);
    if (id === undefined) {
      id = this.#nextId++;
      this.#ids.set(entry, id);
    }
    return id;
  }

  #sign(id: number, sp: string): string {
    return createHmac('sha256', this.#secret).update(`${id}:${sp}`).digest('base64url');
  }

  #validSig(id: number, sp: string, sig: string): boolean {
    const expected = Buffer.from(this.#sign(id, sp));
    const given = Buffer.from(sig);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  #blobUrl(id: number, sp: string): string {
    return `${this.origin}${BLOB_PREFIX}${id}?sv=2025-01-05&sr=b&sp=${sp}&sig=${this.#sign(id, sp)}`;
  }
}
