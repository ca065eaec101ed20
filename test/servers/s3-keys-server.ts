// A peer of CDSE's S3 keys manager (s3-keys-manager.cloudferro.com), built from the facts in
// shared/reference/cdse-s3-keys.md. Only Node built-ins, like the identity peer.
//
// Keys belong to a user, not to a login: `authorize(token)` (supplied by the test, usually over
// the identity peer) names the user a bearer token stands for. The S3 peer verifies signatures
// in-process through `secretOf(accessId)`, which hides a key until `propagationMs` after its
// creation, as the real service takes a while before the S3 endpoints know a new key.
//
// Test hooks: `inject(...faults)` (each fault answers one later request whose operation matches
// `on`), `requests`, `counts`, `addKey` to seed keys, `listShape` for the two list shapes the
// reference allows.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer, listenOnLoopback } from './loopback.ts';

export const CREDENTIALS_PATH = '/api/user/credentials';
const DELETE_PREFIX = `${CREDENTIALS_PATH}/access_id/`;
export const CAP_DETAIL = 'Max number of credentials reached';

export type KeysOperation = 'create' | 'list' | 'delete';

export type KeysFault = (
  | {
      kind: 'status';
      status: number;
      retryAfter?: string;
      /** Raw body, sent as is. */
      body?: string;
      /** Any value, sent as JSON (hostile fields, megabytes...). */
      json?: unknown;
      contentType?: string;
    }
  /** Closes the connection without an answer. */
  | { kind: 'reset' }
  /** Serves the request for real after `ms`. */
  | { kind: 'delay'; ms: number }
  /** 200 with a body that is not JSON. */
  | { kind: 'garbage' }
  /**
   * Serves the request for real (a create does make a key); a JSON success answer gets these
   * fields overridden (`undefined` deletes one).
   */
  | { kind: 'tamper'; set: Record<string, unknown> }
) & { on?: KeysOperation | KeysOperation[] };

export interface KeyRecord {
  accessId: string;
  secret: string;
  user: string;
  createdAt: number;
  expiresAt: number;
  enabled: boolean;
  deleted: boolean;
}

export interface S3KeysServerOptions {
  /** The user a bearer token stands for; undefined = rejected with 401. */
  authorize: (token: string) => string | undefined;
  /** Live keys a user may hold; CDSE's number is not published. Default 30. */
  maxKeysPerUser?: number;
  /** How long a new key stays unknown to `secretOf` (the S3 peer), ms. Default 0. */
  propagationMs?: number;
  /** Lifetime of a new key, ms. Default 30 days. */
  keyLifetimeMs?: number;
  /** 'array' (default), or an object wrapping the array under this key. */
  listShape?: 'array' | { wrap: string };
  now?: () => number;
  port?: number;
}

export interface KeysRequest {
  method: string;
  path: string;
  operation?: KeysOperation;
  status: number;
  fault?: string;
  user?: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface KeysCounts {
  create: number;
  list: number;
  delete: number;
  other: number;
  total: number;
}

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

const json = (status: number, value: unknown): Reply => ({
  status,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(value),
});

const MAX_BODY_BYTES = 64 * 1024;

export class S3KeysServer {
  readonly origin: string;
  /** The collection URL: the `s3-keys-url` a client is given. */
  readonly url: string;
  readonly requests: KeysRequest[] = [];
  readonly counts: KeysCounts = { create: 0, list: 0, delete: 0, other: 0, total: 0 };
  listShape: 'array' | { wrap: string };
  propagationMs: number;
  maxKeysPerUser: number;

  readonly #server: Server;
  readonly #authorize: (token: string) => string | undefined;
  readonly #now: () => number;
  readonly #lifetimeMs: number;
  readonly #keys = new Map<string, KeyRecord>();
  readonly #faults: KeysFault[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  private constructor(server: Server, options: S3KeysServerOptions) {
    this.#server = server;
    const { port } = server.address() as AddressInfo;
    this.origin = `http://127.0.0.1:${port}`;
    this.url = this.origin + CREDENTIALS_PATH;
    this.#authorize = options.authorize;
    this.#now = options.now ?? Date.now;
    this.#lifetimeMs = options.keyLifetimeMs ?? 30 * 24 * 3600 * 1000;
    this.maxKeysPerUser = options.maxKeysPerUser ?? 30;
    this.propagationMs = options.propagationMs ?? 0;
    this.listShape = options.listShape ?? 'array';
  }

  static async start(options: S3KeysServerOptions): Promise<S3KeysServer> {
    const server = await listenOnLoopback(options.port);
    const peer = new S3KeysServer(server, options);
    server.on('request', (req, res) => peer.#handle(req, res));
    return peer;
  }

  inject(...faults: KeysFault[]): void {
    this.#faults.push(...faults);
  }

  /** A user's live (undeleted, unexpired) keys, oldest first. */
  keys(user: string): KeyRecord[] {
    const now = this.#now();
    return [...this.#keys.values()].filter(
      (k) => k.user === user && !k.deleted && now < k.expiresAt,
    );
  }

  /** Every key ever made, deleted ones included (to check what a client cleaned up). */
  allKeys(): KeyRecord[] {
    return [...this.#keys.values()];
  }

  /** Seeds a key as if the user had made it in the web UI (already propagated). */
  addKey(user: string, fields: Partial<Omit<KeyRecord, 'user'>> = {}): KeyRecord {
    const record = {
      ...this.#newKey(user),
      createdAt: this.#now() - this.propagationMs,
      ...fields,
    };
    this.#keys.set(record.accessId, record);
    return record;
  }

  /**
   * The secret S3 endpoints know for an access key: undefined while it propagates, once deleted,
   * disabled or expired, and for ids never issued.
   */
  secretOf(accessId: string): string | undefined {
    const key = this.#keys.get(accessId);
    if (key === undefined || key.deleted || !key.enabled) return undefined;
    const now = this.#now();
    if (now < key.createdAt + this.propagationMs || now >= key.expiresAt) return undefined;
    return key.secret;
  }

  resetCounts(): void {
    for (const key of Object.keys(this.counts) as Array<keyof KeysCounts>) this.counts[key] = 0;
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await closeServer(this.#server, this.#timers);
  }

  #newKey(user: string): KeyRecord {
    const now = this.#now();
    return {
      accessId: randomBytes(16).toString('hex'),
      // 40 base64 characters, like AWS secrets: `+` and `/` exercise every client's encoding.
      secret: randomBytes(30).toString('base64'),
      user,
      createdAt: now,
      expiresAt: now + this.#lifetimeMs,
      enabled: true,
      deleted: false,
    };
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
    });
    req.on('error', () => req.socket.destroy());
    req.on('end', () => this.#dispatch(req, res, size > MAX_BODY_BYTES));
  }

  #dispatch(req: IncomingMessage, res: ServerResponse, tooLarge: boolean): void {
    const path = new URL(req.url ?? '/', this.origin).pathname;
    const method = req.method ?? 'GET';
    const entry: KeysRequest = { method, path, status: 0, headers: { ...req.headers } };
    this.requests.push(entry);
    this.counts.total++;

    let operation: KeysOperation | undefined;
    if (path === CREDENTIALS_PATH && method === 'POST') operation = 'create';
    else if (path === CREDENTIALS_PATH && method === 'GET') operation = 'list';
    else if (path.startsWith(DELETE_PREFIX) && method === 'DELETE') operation = 'delete';
    if (operation === undefined) {
      this.counts.other++;
      const known = path === CREDENTIALS_PATH || path.startsWith(DELETE_PREFIX);
      this.#send(
        res,
        entry,
        json(known ? 405 : 404, { detail: known ? 'Method Not Allowed' : 'Not Found' }),
      );
      return;
    }
    entry.operation = operation;
    this.counts[operation]++;

    const run = (): Reply => {
      if (tooLarge) return json(413, { detail: 'Request Entity Too Large' });
      const user = this.#user(req);
      if (user === undefined) return json(401, { detail: 'Invalid token' });
      entry.user = user;
      if (operation === 'create') return this.#create(user);
      if (operation === 'list') return this.#list(user);
      return this.#delete(user, decodeURIComponent(path.slice(DELETE_PREFIX.length)));
    };

    const index = this.#faults.findIndex(
      (f) => f.on === undefined || [f.on].flat().includes(operation),
    );
    if (index < 0) {
      this.#send(res, entry, run());
      return;
    }
    const [fault] = this.#faults.splice(index, 1) as [KeysFault];
    entry.fault = fault.kind;
    this.#applyFault(fault, res, entry, run);
  }

  #applyFault(fault: KeysFault, res: ServerResponse, entry: KeysRequest, run: () => Reply): void {
    switch (fault.kind) {
      case 'status': {
        const headers: Record<string, string> = {
          'content-type':
            fault.contentType ??
            (fault.json !== undefined || fault.status < 500 ? 'application/json' : 'text/html'),
        };
        if (fault.retryAfter !== undefined) headers['retry-after'] = fault.retryAfter;
        const body =
          fault.body ??
          (fault.json !== undefined
            ? JSON.stringify(fault.json)
            : fault.status >= 500
              ? `<html><body><h1>${fault.status}</h1></body></html>`
              : JSON.stringify({ detail: `fault ${fault.status}` }));
        this.#send(res, entry, { status: fault.status, headers, body });
        return;
      }
      case 'reset':
        res.socket?.destroy();
        return;
      case 'garbage':
        this.#send(res, entry, {
          status: 200,
          headers: { 'content-type': 'application/json' },
          body: '{"access_id": "ab',
        });
        return;
      case 'tamper': {
        const reply = run();
        if (reply.status !== 200 || reply.body === undefined) {
          this.#send(res, entry, reply);
          return;
        }
        const real = JSON.parse(reply.body) as Record<string, unknown>;
        this.#send(res, entry, { ...reply, body: JSON.stringify({ ...real, ...fault.set }) });
        return;
      }
      case 'delay': {
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          if (!this.#closed) this.#send(res, entry, run());
        }, fault.ms);
        this.#timers.add(timer);
        return;
      }
    }
  }

  #user(req: IncomingMessage): string | undefined {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    return match?.[1] === undefined ? undefined : this.#authorize(match[1]);
  }

  #create(user: string): Reply {
    if (this.keys(user).length >= this.maxKeysPerUser) return json(403, { detail: CAP_DETAIL });
    const key = this.#newKey(user);
    this.#keys.set(key.accessId, key);
    return json(200, {
      access_id: key.accessId,
      secret: key.secret,
      expiration_date: new Date(key.expiresAt).toISOString(),
      enabled: key.enabled,
    });
  }

  #list(user: string): Reply {
    const items = this.keys(user).map((k) => ({
      access_id: k.accessId,
      expiration_date: new Date(k.expiresAt).toISOString(),
      enabled: k.enabled,
    }));
    return json(200, this.listShape === 'array' ? items : { [this.listShape.wrap]: items });
  }

  #delete(user: string, accessId: string): Reply {
    const key = this.#keys.get(accessId);
    // Another user's key answers as an unknown one: ids must not be probed across accounts.
    if (key === undefined || key.deleted || key.user !== user) {
      return json(404, { detail: 'Credentials not found' });
    }
    key.deleted = true;
    return { status: 204 };
  }

  #send(res: ServerResponse, entry: KeysRequest, reply: Reply): void {
    entry.status = reply.status;
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(reply.status, reply.headers ?? {});
    res.end(reply.body ?? '');
  }
}
