// A read-only S3 peer of CDSE's eodata endpoint: path-style bucket `eodata`, any region string,
// requests authenticated with AWS Signature Version 4 (Authorization header) against the secrets
// the keys peer hands out. Only Node built-ins, and its own SigV4 code: the client's signer
// (src/s3/sigv4.ts) is checked against this one and against the AWS SDK, never against itself.
//
// Operations: ListBuckets, HeadBucket, ListObjectsV2 (and V1), GetObject (with Range),
// HeadObject over what the test `put`s. Test hooks: `inject(...faults)`, `requests`, `counts`.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer, listenOnLoopback } from './loopback.ts';

export const BUCKET = 'eodata';
const MAX_BODY_BYTES = 1 << 20;

export type S3Fault =
  | { kind: 'status'; status: number; code: string; retryAfter?: string }
  | { kind: 'reset' };

export interface S3ServerOptions {
  /** The secret of an access key the S3 side knows right now (see S3KeysServer.secretOf). */
  secretOf: (accessKeyId: string) => string | undefined;
  /** S3 refuses requests signed further than this from its clock. Default 15 minutes. */
  maxSkewMs?: number;
  now?: () => number;
  port?: number;
}

export interface S3Request {
  method: string;
  /** As sent, query included. */
  url: string;
  accessKeyId?: string;
  region?: string;
  status: number;
  /** The S3 error code of a failed request. */
  code?: string;
  fault?: string;
}

interface S3Object {
  body: Buffer;
  etag: string;
  lastModified: Date;
}

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  code?: string;
}

/** RFC 3986 unreserved characters stay; everything else is %XX with upper-case hex (SigV4). */
export function sigv4Encode(text: string): string {
  return Array.from(Buffer.from(text, 'utf8'))
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

// A stray `%` that is not an escape stays literal rather than failing the whole request.
function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

const xmlEscape = (s: string) =>
  s.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c,
  );

function errorReply(status: number, code: string, message: string): Reply {
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  return {
    status,
    code,
    headers: { 'content-type': 'application/xml', 'x-amz-request-id': requestId },
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message><RequestId>${requestId}</RequestId></Error>`,
  };
}

const xmlReply = (body: string): Reply => ({
  status: 200,
  headers: { 'content-type': 'application/xml' },
  body: `<?xml version="1.0" encoding="UTF-8"?>\n${body}`,
});

type Authenticated =
  | { ok: true; accessKeyId: string; region: string }
  | { ok: false; reply: Reply };

export class S3Server {
  /** The endpoint URL a client is given (`s3-endpoint`). */
  readonly endpoint: string;
  readonly requests: S3Request[] = [];
  readonly counts = { authenticated: 0, rejected: 0, total: 0 };

  readonly #server: Server;
  readonly #secretOf: (id: string) => string | undefined;
  readonly #now: () => number;
  readonly #maxSkewMs: number;
  readonly #objects = new Map<string, S3Object>();
  readonly #faults: S3Fault[] = [];
  #closed = false;

  private constructor(server: Server, options: S3ServerOptions) {
    this.#server = server;
    const { port } = server.address() as AddressInfo;
    this.endpoint = `http://127.0.0.1:${port}`;
    this.#secretOf = options.secretOf;
    this.#now = options.now ?? Date.now;
    this.#maxSkewMs = options.maxSkewMs ?? 15 * 60 * 1000;
  }

  static async start(options: S3ServerOptions): Promise<S3Server> {
    const server = await listenOnLoopback(options.port);
    const peer = new S3Server(server, options);
    server.on('request', (req, res) => peer.#handle(req, res));
    return peer;
  }

  /** Stores an object in bucket `eodata`. */
  put(key: string, body: string | Uint8Array): void {
    const bytes = Buffer.from(body);
    this.#objects.set(key, {
      body: bytes,
      etag: `"${createHash('md5').update(bytes).digest('hex')}"`,
      lastModified: new Date(Math.floor(this.#now() / 1000) * 1000),
    });
  }

  inject(...faults: S3Fault[]): void {
    this.#faults.push(...faults);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await closeServer(this.#server, new Set());
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('error', () => req.socket.destroy());
    req.on('end', () => this.#dispatch(req, res, Buffer.concat(chunks), size > MAX_BODY_BYTES));
  }

  #dispatch(req: IncomingMessage, res: ServerResponse, body: Buffer, tooLarge: boolean): void {
    const entry: S3Request = { method: req.method ?? 'GET', url: req.url ?? '/', status: 0 };
    this.requests.push(entry);
    this.counts.total++;
    const fault = this.#faults.shift();
    if (fault !== undefined) {
      entry.fault = fault.kind;
      if (fault.kind === 'reset') {
        res.socket?.destroy();
        return;
      }
      const reply = errorReply(fault.status, fault.code, 'Injected fault');
      if (fault.retryAfter !== undefined && reply.headers)
        reply.headers['retry-after'] = fault.retryAfter;
      this.#send(req, res, entry, reply);
      return;
    }
    if (tooLarge) {
      this.#send(req, res, entry, errorReply(400, 'EntityTooLarge', 'Request body too large'));
      return;
    }
    const auth = this.#authenticate(req, body);
    if (!auth.ok) {
      this.counts.rejected++;
      this.#send(req, res, entry, auth.reply);
      return;
    }
    this.counts.authenticated++;
    entry.accessKeyId = auth.accessKeyId;
    entry.region = auth.region;
    this.#send(req, res, entry, this.#serve(req));
  }

  #authenticate(req: IncomingMessage, body: Buffer): Authenticated {
    const fail = (status: number, code: string, message: string): Authenticated => ({
      ok: false,
      reply: errorReply(status, code, message),
    });
    const header = req.headers.authorization;
    if (header === undefined) return fail(403, 'AccessDenied', 'Access Denied');
    const match =
      /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/.exec(
        header,
      );
    if (match === null) {
      return fail(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed.');
    }
    const [, credential = '', signedList = '', signature = ''] = match;
    const [accessKeyId = '', day = '', region = '', service = '', terminator = '', ...rest] =
      credential.split('/');
    if (
      rest.length > 0 ||
      !/^\d{8}$/.test(day) ||
      service !== 's3' ||
      terminator !== 'aws4_request' ||
      region === ''
    ) {
      return fail(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed.');
    }
    const secret = this.#secretOf(accessKeyId);
    if (secret === undefined) {
      return fail(
        403,
        'InvalidAccessKeyId',
        'The AWS Access Key Id you provided does not exist in our records.',
      );
    }
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const dateMatch = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    if (dateMatch === null) {
      return fail(
        403,
        'AccessDenied',
        'AWS authentication requires a valid Date or x-amz-date header',
      );
    }
    if (!amzDate.startsWith(day)) {
      return fail(
        400,
        'AuthorizationHeaderMalformed',
        'The credential date does not match x-amz-date.',
      );
    }
    const [, y, mo, d, h, mi, s] = dateMatch.map(Number) as number[];
    const signedAt = Date.UTC(y ?? 0, (mo ?? 1) - 1, d, h, mi, s);
    if (Math.abs(this.#now() - signedAt) > this.#maxSkewMs) {
      return fail(
        403,
        'RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.',
      );
    }
    const payloadHash = req.headers['x-amz-content-sha256'];
    if (typeof payloadHash !== 'string') {
      return fail(
        400,
        'InvalidRequest',
        'Missing required header for this request: x-amz-content-sha256',
      );
    }
    if (
      payloadHash !== 'UNSIGNED-PAYLOAD' &&
      !payloadHash.startsWith('STREAMING-') &&
      payloadHash !== createHash('sha256').update(body).digest('hex')
    ) {
      return fail(
        400,
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      );
    }
    const signedHeaders = signedList.split(';');
    if (!signedHeaders.includes('host')) {
      return fail(400, 'AuthorizationHeaderMalformed', 'SignedHeaders must include host.');
    }
    const canonical = canonicalRequest(req, signedHeaders, payloadHash);
    const scope = `${day}/${region}/s3/aws4_request`;
    const stringToSign = [
      'AWS4-HMAC-SHA256',
      amzDate,
      scope,
      createHash('sha256').update(canonical).digest('hex'),
    ].join('\n');
    let key: Buffer = Buffer.from(`AWS4${secret}`, 'utf8');
    for (const part of [day, region, 's3', 'aws4_request']) {
      key = createHmac('sha256', key).update(part).digest();
    }
    const expected = createHmac('sha256', key).update(stringToSign).digest();
    if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
      return fail(
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      );
    }
    return { ok: true, accessKeyId, region };
  }

  #serve(req: IncomingMessage): Reply {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      return errorReply(
        405,
        'MethodNotAllowed',
        'The specified method is not allowed against this resource.',
      );
    }
    const { segments, query } = parseTarget(req.url ?? '/');
    if (segments.length === 1 && segments[0] === '') return this.#listBuckets();
    const [bucket = '', ...keyParts] = segments;
    if (bucket !== BUCKET)
      return errorReply(404, 'NoSuchBucket', 'The specified bucket does not exist');
    const key = keyParts.join('/');
    if (key === '') {
      if (method === 'HEAD') return { status: 200, headers: { 'x-amz-bucket-region': 'default' } };
      const other = [...query.keys()].filter(
        (k) =>
          ![
            'list-type',
            'prefix',
            'delimiter',
            'max-keys',
            'continuation-token',
            'start-after',
            'marker',
            'encoding-type',
            'fetch-owner',
            'x-id',
          ].includes(k),
      );
      if (other.length > 0)
        return errorReply(501, 'NotImplemented', 'Not implemented by this peer.');
      return this.#list(query);
    }
    const object = this.#objects.get(key);
    if (object === undefined)
      return errorReply(404, 'NoSuchKey', 'The specified key does not exist.');
    return getObject(object, req.headers.range);
  }

  #listBuckets(): Reply {
    return xmlReply(
      `<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>eodata</ID></Owner><Buckets><Bucket><Name>${BUCKET}</Name><CreationDate>2023-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>`,
    );
  }

  #list(query: Map<string, string>): Reply {
    const v2 = query.get('list-type') === '2';
    const prefix = query.get('prefix') ?? '';
    const delimiter = query.get('delimiter') ?? '';
    const maxKeys = Math.min(1000, Math.max(0, Number(query.get('max-keys') ?? 1000) || 0));
    const token = query.get('continuation-token');
    const after = v2
      ? token !== undefined
        ? Buffer.from(token, 'base64url').toString('utf8')
        : (query.get('start-after') ?? '')
      : (query.get('marker') ?? '');
    const urlEncoded = query.get('encoding-type') === 'url';
    const out = (s: string) =>
      xmlEscape(urlEncoded ? encodeURIComponent(s).replace(/%2F/g, '/') : s);

    const contents: string[] = [];
    const prefixes: string[] = [];
    let last = '';
    let truncated = false;
    for (const key of [...this.#objects.keys()].sort()) {
      if (!key.startsWith(prefix) || key <= after) continue;
      if (delimiter !== '' && after.endsWith(delimiter) && key.startsWith(after)) continue;
      const cut = delimiter === '' ? -1 : key.indexOf(delimiter, prefix.length);
      const common = cut < 0 ? undefined : key.slice(0, cut + delimiter.length);
      if (common !== undefined && common === prefixes.at(-1)) continue;
      if (contents.length + prefixes.length >= maxKeys) {
        truncated = true;
        break;
      }
      if (common !== undefined) {
        prefixes.push(common);
        last = common;
      } else {
        const object = this.#objects.get(key) as S3Object;
        contents.push(
          `<Contents><Key>${out(key)}</Key><LastModified>${object.lastModified.toISOString()}</LastModified><ETag>${xmlEscape(object.etag)}</ETag><Size>${object.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
        );
        last = key;
      }
    }
    const parts = [
      `<Name>${BUCKET}</Name>`,
      `<Prefix>${out(prefix)}</Prefix>`,
      delimiter !== '' ? `<Delimiter>${out(delimiter)}</Delimiter>` : '',
      `<MaxKeys>${maxKeys}</MaxKeys>`,
      urlEncoded ? '<EncodingType>url</EncodingType>' : '',
      `<IsTruncated>${truncated}</IsTruncated>`,
    ];
    if (v2) {
      parts.push(`<KeyCount>${contents.length + prefixes.length}</KeyCount>`);
      if (token !== undefined)
        parts.push(`<ContinuationToken>${xmlEscape(token)}</ContinuationToken>`);
      if (truncated && last !== '') {
        parts.push(
          `<NextContinuationToken>${Buffer.from(last).toString('base64url')}</NextContinuationToken>`,
        );
      }
    } else {
      parts.push(`<Marker>${out(after)}</Marker>`);
      if (truncated && delimiter !== '') parts.push(`<NextMarker>${out(last)}</NextMarker>`);
    }
    parts.push(
      ...contents,
      ...prefixes.map((p) => `<CommonPrefixes><Prefix>${out(p)}</Prefix></CommonPrefixes>`),
    );
    return xmlReply(
      `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${parts.join('')}</ListBucketResult>`,
    );
  }

  #send(req: IncomingMessage, res: ServerResponse, entry: S3Request, reply: Reply): void {
    entry.status = reply.status;
    if (reply.code !== undefined) entry.code = reply.code;
    if (res.destroyed || res.writableEnded) return;
    const body = reply.body === undefined ? Buffer.alloc(0) : Buffer.from(reply.body);
    const headers = { 'content-length': String(body.length), ...reply.headers };
    res.writeHead(reply.status, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

function getObject(object: S3Object, range: string | undefined): Reply {
  const size = object.body.length;
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    etag: object.etag,
    'last-modified': object.lastModified.toUTCString(),
    'accept-ranges': 'bytes',
  };
  if (range === undefined) return { status: 200, headers, body: object.body };
  const match = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  let start = -1;
  let end = size - 1;
  if (match !== null && (match[1] !== '' || match[2] !== '')) {
    if (match[1] === '') {
      start = Math.max(0, size - Number(match[2]));
    } else {
      start = Number(match[1]);
      if (match[2] !== '') end = Math.min(size - 1, Number(match[2]));
    }
  }
  if (start < 0 || start >= size || end < start) {
    return errorReply(416, 'InvalidRange', 'The requested range is not satisfiable');
  }
  return {
    status: 206,
    headers: { ...headers, 'content-range': `bytes ${start}-${end}/${size}` },
    body: object.body.subarray(start, end + 1),
  };
}

/** The path's decoded segments and the decoded query, `+` kept literal as S3 does. */
function parseTarget(target: string): { segments: string[]; query: Map<string, string> } {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = new Map<string, string>();
  for (const [key, value] of rawQuery(q < 0 ? '' : target.slice(q + 1))) {
    query.set(decode(key), decode(value));
  }
  return { segments: path.replace(/^\//, '').split('/').map(decode), query };
}

function rawQuery(search: string): Array<[string, string]> {
  return search
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      return eq < 0 ? [p, ''] : [p.slice(0, eq), p.slice(eq + 1)];
    });
}

/**
 * SigV4's canonical request as S3 computes it: the path decoded then encoded once (never twice),
 * query parameters encoded and sorted, signed headers lower-cased with values trimmed and inner
 * spaces collapsed, and the payload hash the client declared.
 */
function canonicalRequest(
  req: IncomingMessage,
  signedHeaders: string[],
  payloadHash: string,
): string {
  const target = req.url ?? '/';
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const uri =
    path
      .split('/')
      .map((s) => sigv4Encode(decode(s)))
      .join('/') || '/';
  const query = rawQuery(q < 0 ? '' : target.slice(q + 1))
    .map(([k, v]) => [sigv4Encode(decode(k)), sigv4Encode(decode(v))] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const values = new Map<string, string[]>();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] as string).toLowerCase();
    const value = (req.rawHeaders[i + 1] as string).trim().replace(/\s+/g, ' ');
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  const headers = signedHeaders.map((name) => `${name}:${(values.get(name) ?? []).join(',')}\n`);
  return [req.method, uri, query, headers.join(''), signedHeaders.join(';'), payloadHash].join(
    '\n',
  );
}
