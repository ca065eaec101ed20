// The test identity server's injected faults (status, unusable bodies, truncation, resets,
// delays, on logout too) and its request log; and the server run on its own as a script.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import {
  basicAuth,
  type ClockedServer,
  jsonOf,
  postForm,
  realmLogin,
  realmServer,
  refreshAt,
  tokensOf,
} from './fixtures.ts';

describe('faults', () => {
  let h: ClockedServer;
  before(async () => {
    h = await realmServer();
  });
  after(() => h.server.close());

  it('status faults carry Retry-After and the CDSE gateway bodies', async () => {
    h.server.inject(
      { kind: 'status', status: 429, retryAfter: '7' },
      { kind: 'status', status: 503 },
      { kind: 'status', status: 502, body: 'bad gateway', contentType: 'text/plain' },
    );
    const limited = await realmLogin(h.server);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '7');
    assert.deepEqual(await jsonOf(limited), {
      error: 'WAF',
      message: 'Rate limit exceeded',
      status: 429,
    });
    const unavailable = await realmLogin(h.server);
    assert.equal(unavailable.status, 503);
    assert.match(unavailable.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await unavailable.text(), /<html/);
    const gateway = await realmLogin(h.server);
    assert.equal(gateway.status, 502);
    assert.equal(gateway.headers.get('content-type'), 'text/plain');
    assert.equal(await gateway.text(), 'bad gateway');
    assert.equal((await realmLogin(h.server)).status, 200);
  });

  it('html, invalid-json and no-access-token answer 200 with unusable bodies', async () => {
    h.server.inject({ kind: 'html' }, { kind: 'invalid-json' }, { kind: 'no-access-token' });
    const html = await realmLogin(h.server);
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-type') ?? '', /text\/html/);
    await assert.rejects(html.json(), SyntaxError);
    const broken = await realmLogin(h.server);
    assert.equal(broken.status, 200);
    assert.match(broken.headers.get('content-type') ?? '', /application\/json/);
    await assert.rejects(broken.json(), SyntaxError);
    const empty = await realmLogin(h.server);
    assert.equal(empty.status, 200);
    const json = await jsonOf(empty);
    assert.equal('access_token' in json, false);
    assert.equal(json.token_type, 'Bearer');
  });

  it('truncated bodies and resets make the client fail', async () => {
    h.server.inject({ kind: 'truncated' }, { kind: 'reset' });
    const truncated = await realmLogin(h.server);
    assert.equal(truncated.status, 200);
    await assert.rejects(truncated.text());
    await assert.rejects(realmLogin(h.server), TypeError);
    assert.equal((await realmLogin(h.server)).status, 200);
  });

  it('delay answers normally after the delay', async () => {
    h.server.inject({ kind: 'delay', ms: 120 });
    const started = performance.now();
    const res = await realmLogin(h.server);
    assert.ok(performance.now() - started >= 100);
    assert.equal(res.status, 200);
    assert.equal(typeof (await jsonOf(res)).access_token, 'string');
  });

  it('faults apply to logout too and are counted and logged', async () => {
    const tokens = await tokensOf(realmLogin(h.server));
    h.server.resetCounts();
    h.server.inject({ kind: 'status', status: 500 }, { kind: 'reset' });
    const failed = await postForm(h.server.logoutUrl, {
      client_id: 'cdse-public',
      refresh_token: String(tokens.refresh_token),
    });
    assert.equal(failed.status, 500);
    await failed.arrayBuffer();
    await assert.rejects(refreshAt(h.server, tokens.refresh_token));
    assert.equal((await refreshAt(h.server, tokens.refresh_token)).status, 200);
    assert.deepEqual(h.server.counts, {
      password: 0,
      refresh_token: 2,
      client_credentials: 0,
      logout: 1,
      other: 0,
      total: 3,
    });
    assert.deepEqual(
      h.server.requests.map((r) => [r.path.split('/').pop(), r.grant, r.status, r.fault]),
      [
        ['logout', undefined, 500, 'status'],
        ['token', 'refresh_token', 0, 'reset'],
        ['token', 'refresh_token', 200, undefined],
      ],
    );
  });
});

describe('request log', () => {
  it('records the exact form fields and headers a client sent', async () => {
    const { server } = await realmServer();
    try {
      await realmLogin(server, { scope: 'openid' });
      await postForm(server.tokenUrl, { grant_type: 'weird', client_id: 'cdse-public' });
      await postForm(
        server.tokenUrl,
        { grant_type: 'client_credentials' },
        { ...basicAuth('sh-svc', 'svc-secret'), 'user-agent': 'cdse-auth-test' },
      );
      const [first, second, third] = server.requests;
      assert.deepEqual(first?.form, {
        grant_type: 'password',
        username: 'alice',
        password: 'pw-alice',
        client_id: 'cdse-public',
        scope: 'openid',
      });
      assert.equal(first?.grant, 'password');
      assert.equal(first?.status, 200);
      assert.equal(second?.grant, 'weird');
      assert.equal(second?.status, 400);
      assert.equal(third?.headers['user-agent'], 'cdse-auth-test');
      assert.match(String(third?.headers.authorization), /^Basic /);
      assert.deepEqual(server.counts, {
        password: 1,
        refresh_token: 0,
        client_credentials: 1,
        logout: 0,
        other: 1,
        total: 3,
      });
      server.resetCounts();
      assert.equal(server.counts.total, 0);
      assert.equal(server.requests.length, 0);
    } finally {
      await server.close();
    }
  });

  it('prints the token URL when run directly', async () => {
    const script = new URL('./servers/identity-server.ts', import.meta.url).pathname;
    const child = spawn(process.execPath, [script, '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(out);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      const url = /token URL:\s+(\S+)/.exec(line)?.[1];
      assert.match(
        String(url),
        /^http:\/\/127\.0\.0\.1:\d+\/auth\/realms\/CDSE\/protocol\/openid-connect\/token$/,
      );
      const res = await postForm(String(url), {
        grant_type: 'password',
        username: 'demo@example.com',
        password: 'demo-password',
        client_id: 'cdse-public',
      });
      assert.equal(res.status, 200);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
