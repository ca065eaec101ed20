// Hostile answers, session lifetimes and rotation of the test identity server. Apart from
// identity-server.test.ts only to keep each file readable; the harness is the same.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IdentityServer, type IdentityServerOptions } from './servers/identity-server.ts';

const START = Date.UTC(2025, 0, 1, 12, 0, 10);
const PASSWORD = 'correct horse@battery "quoted" back\\slash\nline';

interface Harness {
  server: IdentityServer;
  clock: { ms: number };
}

async function withServer(
  options: IdentityServerOptions,
  test: (h: Harness) => Promise<void>,
): Promise<void> {
  const clock = { ms: START };
  const server = await IdentityServer.start({
    users: [{ username: 'alice', password: PASSWORD }],
    clients: [
      { clientId: 'cdse-public' },
      { clientId: 'sh-svc', clientSecret: 'svc "secret"\\', serviceAccount: true },
    ],
    now: () => clock.ms,
    ...options,
  });
  try {
    await test({ server, clock });
  } finally {
    await server.close();
  }
}

const LOGIN = {
  grant_type: 'password',
  username: 'alice',
  password: PASSWORD,
  client_id: 'cdse-public',
};

function post(url: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  return fetch(url, { method: 'POST', headers, body: new URLSearchParams(fields) });
}

const login = (server: IdentityServer, extra: Record<string, string> = {}) =>
  post(server.tokenUrl, { ...LOGIN, ...extra });

const refresh = (server: IdentityServer, token: unknown) =>
  post(server.tokenUrl, {
    grant_type: 'refresh_token',
    refresh_token: String(token),
    client_id: 'cdse-public',
  });

const logout = (server: IdentityServer, token: unknown) =>
  post(server.logoutUrl, { client_id: 'cdse-public', refresh_token: String(token) });

async function body(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

async function tokens(res: Response | Promise<Response>): Promise<Record<string, unknown>> {
  const answer = await res;
  assert.equal(answer.status, 200);
  return body(answer);
}

async function expectError(res: Response, status: number, error: string, description: string) {
  assert.equal(res.status, status);
  assert.deepEqual(await body(res), { error, error_description: description });
}

function claims(token: unknown): Record<string, unknown> {
  return JSON.parse(Buffer.from(String(token).split('.')[1] ?? '', 'base64url').toString('utf8'));
}

describe('echo faults', () => {
  it("'body' reflects the raw form-encoded request into error_description", () =>
    withServer({}, async ({ server }) => {
      server.inject({ kind: 'echo' });
      const res = await login(server);
      assert.equal(res.status, 401);
      const json = await body(res);
      assert.equal(json.error, 'invalid_grant');
      assert.equal(json.error_description, new URLSearchParams(LOGIN).toString());
      assert.match(String(json.error_description), /password=correct\+horse%40battery/);
      // An echo is a rejection: no session, and the next login is served normally.
      assert.equal(server.activeSessions(), 0);
      assert.equal(server.requests[0]?.fault, 'echo');
      assert.equal((await login(server)).status, 200);
    }));

  it("'secret' puts the password itself into error, plain JSON escaping", () =>
    withServer({}, async ({ server }) => {
      server.inject({ kind: 'echo', variant: 'secret' }, { kind: 'echo', variant: 'secret' });
      const res = await login(server);
      assert.equal(res.status, 401);
      const text = await res.text();
      assert.ok(text.includes(JSON.stringify(PASSWORD)));
      assert.deepEqual(JSON.parse(text), {
        error: PASSWORD,
        error_description: 'Invalid user credentials',
      });
      // Without a password, the client secret is the secret, also when sent by HTTP Basic.
      const raw = `sh-svc:${encodeURIComponent('svc "secret"\\')}`;
      const cc = await post(
        server.tokenUrl,
        { grant_type: 'client_credentials' },
        { authorization: `Basic ${Buffer.from(raw).toString('base64')}` },
      );
      assert.equal((await body(cc)).error, encodeURIComponent('svc "secret"\\'));
    }));

  it("'secret-json' gives the JSON literal of the password, so its text differs", () =>
    withServer({}, async ({ server }) => {
      server.inject({
        kind: 'echo',
        variant: 'secret-json',
        into: 'error_description',
        status: 400,
      });
      const res = await login(server);
      assert.equal(res.status, 400);
      const json = await body(res);
      assert.equal(json.error, 'invalid_grant');
      assert.equal(json.error_description, JSON.stringify(PASSWORD));
      assert.notEqual(json.error_description, PASSWORD);
      assert.ok(String(json.error_description).includes('\\"quoted\\" back\\\\slash\\nline'));
    }));

  it("'secret-unicode' keeps the parsed value but never the password's text", () =>
    withServer({}, async ({ server }) => {
      const tokensOf = await tokens(login(server));
      server.inject({ kind: 'echo', variant: 'secret-unicode' });
      const res = await refresh(server, tokensOf.refresh_token);
      const text = await res.text();
      // A refresh request's secret is its refresh token.
      assert.equal(JSON.parse(text).error, tokensOf.refresh_token);
      assert.equal(text.includes(String(tokensOf.refresh_token).slice(0, 8)), false);
      assert.match(text, /^\{"error":"(\\u[0-9a-f]{4})+","error_description":/);
    }));
});

describe('fault targets', () => {
  it('a request takes the first fault aimed at it; others wait their turn', () =>
    withServer({}, async ({ server }) => {
      const first = await tokens(login(server));
      server.inject(
        { kind: 'echo', variant: 'secret', on: 'refresh_token' },
        { kind: 'status', status: 503, on: ['password', 'logout'] },
        { kind: 'status', status: 502 },
      );
      assert.equal((await login(server)).status, 503);
      assert.equal((await post(server.tokenUrl, { grant_type: 'x' })).status, 502);
      assert.equal((await login(server)).status, 200);
      const echoed = await refresh(server, first.refresh_token);
      assert.equal((await body(echoed)).error, first.refresh_token);
      assert.equal((await refresh(server, first.refresh_token)).status, 200);
    }));
});

describe('tamper faults', () => {
  it('overrides fields of a real success, which still makes a session', () =>
    withServer({}, async ({ server }) => {
      const forged = 'abc\n::error title=X::forged';
      server.inject({
        kind: 'tamper',
        set: {
          access_token: forged,
          token_type: 'Bearer%0A::add-mask::x',
          expires_in: 1e13,
          refresh_expires_in: '3600',
          scope: null,
          session_state: undefined,
          extra: { nested: ['##[error]x'] },
        },
      });
      const json = await tokens(login(server));
      assert.equal(json.access_token, forged);
      assert.equal(json.token_type, 'Bearer%0A::add-mask::x');
      assert.equal(json.expires_in, 1e13);
      assert.equal(json.refresh_expires_in, '3600');
      assert.equal(json.scope, null);
      assert.equal('session_state' in json, false);
      assert.deepEqual(json.extra, { nested: ['##[error]x'] });
      const [id] = server.sessionIds();
      assert.equal(typeof id, 'string');
      assert.equal(server.requests[0]?.fault, 'tamper');
      assert.equal(server.requests[0]?.session, id);
      assert.equal(server.sessionOf(forged), id);
      assert.equal(server.accessTokenValid(forged), true);
      assert.equal(server.sessionOf(String(json.refresh_token)), id);
      // The fault is spent: the next answer is Keycloak's again.
      assert.equal(typeof (await tokens(login(server))).session_state, 'string');
    }));

  it('a forged refresh token stands for the real one unless acceptForged is false', () =>
    withServer({ rotateRefreshTokens: true }, async ({ server }) => {
      const huge = 'R'.repeat(150_000);
      server.inject({
        kind: 'tamper',
        set: { access_token: 'A'.repeat(150_000), refresh_token: huge },
      });
      const json = await tokens(login(server));
      assert.equal(String(json.access_token).length, 150_000);
      const session = server.sessionOf(huge);
      const next = await tokens(refresh(server, huge));
      assert.equal(next.session_state, session);
      // Rotation sees the forged token and the real one as the same token.
      await expectError(
        await refresh(server, huge),
        400,
        'invalid_grant',
        'Maximum allowed refresh token reuse exceeded',
      );

      server.inject({ kind: 'tamper', set: { refresh_token: 'forged' }, acceptForged: false });
      const unknown = await tokens(login(server));
      assert.equal(server.sessionOf('forged'), undefined);
      assert.equal(server.sessionIds().length, 2);
      assert.equal(server.sessionIds().includes(String(unknown.session_state)), true);
      await expectError(
        await refresh(server, 'forged'),
        400,
        'invalid_grant',
        'Invalid refresh token',
      );
    }));

  it('raw values reach the client as written', () =>
    withServer({}, async ({ server }) => {
      server.inject({ kind: 'tamper', raw: { expires_in: '1e999', refresh_expires_in: '-0' } });
      const text = await (await login(server)).text();
      assert.match(text, /"expires_in":1e999/);
      assert.match(text, /"refresh_expires_in":-0[,}]/);
      const json = JSON.parse(text) as Record<string, unknown>;
      assert.equal(json.expires_in, Number.POSITIVE_INFINITY);
      assert.equal(Object.is(json.refresh_expires_in, -0), true);
      assert.equal(typeof json.access_token, 'string');
    }));

  it('skips logout, applies to refresh and client_credentials, and passes a failure through', () =>
    withServer({ clientCredentialsRefreshToken: true }, async ({ server }) => {
      const a = await tokens(login(server));
      const b = await tokens(login(server));
      server.inject({ kind: 'tamper', set: { expires_in: -1 } });
      assert.equal((await logout(server, a.refresh_token)).status, 204);
      assert.equal((await tokens(refresh(server, b.refresh_token))).expires_in, -1);

      server.inject({ kind: 'tamper', set: { expires_in: -2 }, on: 'client_credentials' });
      const cc = await tokens(
        post(server.tokenUrl, {
          grant_type: 'client_credentials',
          client_id: 'sh-svc',
          client_secret: 'svc "secret"\\',
        }),
      );
      assert.equal(cc.expires_in, -2);

      server.inject({ kind: 'tamper', set: { access_token: 'x' } });
      await expectError(
        await login(server, { password: 'wrong' }),
        401,
        'invalid_grant',
        'Invalid user credentials',
      );
      assert.notEqual((await tokens(login(server))).access_token, 'x');
    }));
});

describe('status faults with hostile JSON', () => {
  it('send any JSON value with any status', () =>
    withServer({}, async ({ server }) => {
      const error = {
        error: 'invalid_grant\n::error::forged\r\n##[error]x%0A::add-mask::y',
        error_description: `::error title=t::${'M'.repeat(3 << 20)}`,
      };
      server.inject(
        { kind: 'status', status: 400, json: error },
        { kind: 'status', status: 503, json: ['not', 'an', 'object'] },
        { kind: 'status', status: 200, json: { access_token: 7 }, contentType: 'text/plain' },
      );
      const res = await login(server);
      assert.equal(res.status, 400);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(await body(res), error);
      const unavailable = await login(server);
      assert.equal(unavailable.status, 503);
      assert.deepEqual(await unavailable.json(), ['not', 'an', 'object']);
      const plain = await login(server);
      assert.equal(plain.headers.get('content-type'), 'text/plain');
      assert.equal(await plain.text(), '{"access_token":7}');
    }));
});

describe('session maximum', () => {
  it('cuts token lifetimes to the login + sessionMaxSeconds, whatever the refreshes', () =>
    withServer({ sessionMaxSeconds: 1800 }, async ({ server, clock }) => {
      const first = await tokens(login(server));
      const id = String(first.session_state);
      assert.equal(first.expires_in, 600);
      assert.equal(first.refresh_expires_in, 1800);
      assert.equal(claims(first.refresh_token).exp, START / 1000 + 1800);
      let current = first;
      for (let t = 500; t <= 1500; t += 500) {
        clock.ms = START + t * 1000;
        current = await tokens(refresh(server, current.refresh_token));
        assert.equal(current.refresh_expires_in, 1800 - t);
      }
      assert.equal(current.expires_in, 300);
      assert.equal(claims(current.access_token).exp, START / 1000 + 1800);
      clock.ms = START + 1799_000;
      const last = await tokens(refresh(server, current.refresh_token));
      assert.deepEqual([last.expires_in, last.refresh_expires_in], [1, 1]);
      assert.deepEqual(server.sessionIds(), [id]);

      clock.ms = START + 1800_000;
      // Keycloak checks the refresh token's exp, cut to the session end, before the session.
      await expectError(
        await refresh(server, last.refresh_token),
        400,
        'invalid_grant',
        'Token is not active',
      );
      assert.equal(server.activeSessions(), 0);
      assert.deepEqual(server.sessionIds(), []);
      assert.equal(server.sessionInfo(id)?.active, false);
      assert.equal(server.accessTokenValid(String(last.access_token)), false);
    }));

  it('keeps the idle lifetime inside the maximum, and bounds never-expiring tokens', async () => {
    await withServer(
      { sessionMaxSeconds: 7200, refreshLifetime: 600 },
      async ({ server, clock }) => {
        const idle = await tokens(login(server));
        let kept = await tokens(login(server));
        assert.equal(kept.refresh_expires_in, 600);
        for (let t = 500; t < 7200; t += 500) {
          clock.ms = START + t * 1000;
          kept = await tokens(refresh(server, kept.refresh_token));
        }
        assert.equal(kept.refresh_expires_in, 200);
        await expectError(
          await refresh(server, idle.refresh_token),
          400,
          'invalid_grant',
          'Token is not active',
        );
        assert.equal(server.activeSessions(), 1);
      },
    );
    await withServer({ sessionMaxSeconds: 900, refreshLifetime: 0 }, async ({ server, clock }) => {
      const offline = await tokens(login(server));
      assert.equal(offline.refresh_expires_in, 900);
      clock.ms = START + 900_000;
      assert.equal((await refresh(server, offline.refresh_token)).status, 400);
      assert.equal(server.activeSessions(), 0);
    });
    // A maximum shorter than the access token's life ends a session that has no refresh token.
    await withServer({ sessionMaxSeconds: 300 }, async ({ server, clock }) => {
      const cc = await tokens(
        post(server.tokenUrl, {
          grant_type: 'client_credentials',
          client_id: 'sh-svc',
          client_secret: 'svc "secret"\\',
        }),
      );
      assert.equal(cc.expires_in, 300);
      clock.ms = START + 300_000;
      assert.equal(server.activeSessions(), 0);
    });
  });
});

describe('session ids', () => {
  it('tokens carry their session; tests can list, look up and end sessions', () =>
    withServer({ omitOptionalFields: true }, async ({ server }) => {
      const a = await tokens(login(server));
      const b = await tokens(login(server));
      const ids = [String(a.session_state), String(b.session_state)];
      assert.notEqual(ids[0], ids[1]);
      assert.deepEqual(server.sessionIds(), ids);
      assert.equal(claims(a.access_token).sid, ids[0]);
      assert.equal(claims(a.refresh_token).sid, ids[0]);
      assert.equal(server.sessionOf(String(a.access_token)), ids[0]);
      assert.equal(server.sessionOf(String(b.refresh_token)), ids[1]);
      assert.equal(server.sessionOf('nope'), undefined);

      const a2 = await tokens(refresh(server, a.refresh_token));
      assert.equal(a2.session_state, ids[0]);
      await tokens(refresh(server, a2.refresh_token));
      const other = await post(server.tokenUrl, {
        grant_type: 'refresh_token',
        refresh_token: String(a.refresh_token),
        client_id: 'sh-svc',
        client_secret: 'svc "secret"\\',
      });
      assert.equal(other.status, 400);
      assert.equal((await logout(server, a.refresh_token)).status, 204);
      assert.deepEqual(server.sessionInfo(String(ids[0])), {
        id: ids[0],
        username: 'alice',
        clientId: 'cdse-public',
        startedAt: START,
        active: false,
        detached: false,
        requests: 5,
        refreshes: 2,
      });
      assert.deepEqual(
        server.requests.map((r) => r.session),
        [ids[0], ids[1], ids[0], ids[0], ids[0], ids[0]],
      );
      assert.deepEqual(server.sessionIds(), [ids[1]]);

      assert.equal(server.endSession(String(ids[1])), true);
      assert.equal(server.endSession('nope'), false);
      await expectError(
        await refresh(server, b.refresh_token),
        400,
        'invalid_grant',
        'Session not active',
      );
      assert.equal(server.activeSessions(), 0);
    }));
});

describe('refresh token rotation', () => {
  it('rejects a reused token without ending the session; older tokens are stale', () =>
    withServer({ rotateRefreshTokens: true }, async ({ server }) => {
      const t1 = await tokens(login(server));
      const t2 = await tokens(refresh(server, t1.refresh_token));
      const reuse = 'Maximum allowed refresh token reuse exceeded';
      await expectError(await refresh(server, t1.refresh_token), 400, 'invalid_grant', reuse);
      assert.deepEqual(server.sessionIds(), [t1.session_state]);
      const t3 = await tokens(refresh(server, t2.refresh_token));
      await expectError(
        await refresh(server, t1.refresh_token),
        400,
        'invalid_grant',
        'Stale token',
      );
      await expectError(await refresh(server, t2.refresh_token), 400, 'invalid_grant', reuse);
      assert.equal((await refresh(server, t3.refresh_token)).status, 200);
      assert.equal(server.sessionInfo(String(t1.session_state))?.refreshes, 3);
    }));

  it('refreshTokenMaxReuse lets the current token be used that many more times', () =>
    withServer({ rotateRefreshTokens: true, refreshTokenMaxReuse: 1 }, async ({ server }) => {
      const t1 = await tokens(login(server));
      assert.equal((await refresh(server, t1.refresh_token)).status, 200);
      assert.equal((await refresh(server, t1.refresh_token)).status, 200);
      assert.equal((await refresh(server, t1.refresh_token)).status, 400);
    }));

  it('serialises concurrent refreshes of one token: exactly one wins', () =>
    withServer({ rotateRefreshTokens: true }, async ({ server }) => {
      const t1 = await tokens(login(server));
      // Delays release the requests together, as parallel jobs sharing a token would.
      server.inject(...Array.from({ length: 12 }, () => ({ kind: 'delay' as const, ms: 30 })));
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => refresh(server, t1.refresh_token)),
      );
      const winners = answers.filter((res) => res.status === 200);
      assert.equal(winners.length, 1);
      for (const res of answers.filter((r) => r.status !== 200)) {
        await expectError(
          res,
          400,
          'invalid_grant',
          'Maximum allowed refresh token reuse exceeded',
        );
      }
      const won = await body(winners[0] as Response);
      assert.equal((await refresh(server, won.refresh_token)).status, 200);
      assert.equal(server.activeSessions(), 1);
    }));

  it("onRefreshReuse 'detach-session' ends the session's refreshes, as Keycloak does", () =>
    withServer(
      { rotateRefreshTokens: true, onRefreshReuse: 'detach-session' },
      async ({ server }) => {
        const t1 = await tokens(login(server));
        const answers = await Promise.all(
          Array.from({ length: 4 }, () => refresh(server, t1.refresh_token)),
        );
        const bodies = await Promise.all(answers.map(body));
        const descriptions = bodies.map((json) => json.error_description ?? 'ok');
        // Matches a live Keycloak: one success, one reuse error, the rest find no client.
        assert.deepEqual(descriptions.sort(), [
          'Maximum allowed refresh token reuse exceeded',
          "Session doesn't have required client",
          "Session doesn't have required client",
          'ok',
        ]);
        const won = bodies.find((json) => json.refresh_token !== undefined);
        await expectError(
          await refresh(server, won?.refresh_token),
          400,
          'invalid_grant',
          "Session doesn't have required client",
        );
        const id = String(t1.session_state);
        assert.equal(server.sessionInfo(id)?.detached, true);
        // Keycloak keeps the empty user session until logout or expiry.
        assert.equal(server.activeSessions(), 1);
        assert.equal((await logout(server, t1.refresh_token)).status, 204);
        assert.equal(server.activeSessions(), 0);
      },
    ));
});
