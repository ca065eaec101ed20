import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { PasswordAuth, TokenManager } from '../src/auth/index.ts';
import { IdentityServer } from './servers/identity-server.ts';

// A forward proxy that tunnels CONNECT requests (what undici's proxy agent sends) and counts them.
let proxy: Server;
let proxyUrl: string;
const tunnels: string[] = [];
let identity: IdentityServer;

before(async () => {
  identity = await IdentityServer.start({ users: [{ username: 'alice', password: 'pw-proxy-1' }] });
  proxy = createServer((_req, res) => res.writeHead(405).end());
  const sockets = new Set<Socket>();
  proxy.on('connect', (req, client: Socket) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(client).pipe(upstream);
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
  });
  proxy.on('close', () => {
    for (const s of sockets) s.destroy();
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const address = proxy.address();
  assert.ok(address && typeof address === 'object');
  proxyUrl = `http://127.0.0.1:${address.port}`;
});
after(async () => {
  await identity.close();
  proxy.closeAllConnections();
  await new Promise((resolve) => proxy.close(resolve));
});

async function withEnv<T>(env: Record<string, string>, body: () => Promise<T>): Promise<T> {
  const names = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'];
  const saved = Object.fromEntries(names.map((n) => [n, process.env[n]]));
  for (const n of names) delete process.env[n];
  Object.assign(process.env, env);
  try {
    return await body();
  } finally {
    for (const n of names) {
      if (saved[n] === undefined) delete process.env[n];
      else process.env[n] = saved[n];
    }
  }
}

/** One login with a manager made now, so that it reads the proxy environment of the moment. */
async function logIn(): Promise<void> {
  const m = new TokenManager(new PasswordAuth('alice', 'pw-proxy-1'), {
    tokenUrl: identity.tokenUrl,
  });
  try {
    assert.ok(await m.accessToken());
  } finally {
    await m.close();
  }
}

test('HTTP(S)_PROXY routes token requests through the proxy', async () => {
  tunnels.length = 0;
  await withEnv({ HTTP_PROXY: proxyUrl, HTTPS_PROXY: proxyUrl }, logIn);
  assert.deepEqual(tunnels, [new URL(identity.tokenUrl).host]);
});

test('NO_PROXY bypasses the proxy', async () => {
  tunnels.length = 0;
  await withEnv({ HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' }, logIn);
  assert.deepEqual(tunnels, []);
  assert.equal(identity.counts.password, 2);
});
