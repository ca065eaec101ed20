// The test identity server's hostile answers: echo faults (the form body, the secret raw, as
// JSON, \u-escaped), which request a fault hits, tamper faults (forged fields, forged refresh
// tokens, raw JSON values) and status faults with hostile JSON. The harness is in fixtures.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  expectExactError,
  jsonOf,
  logoutAt,
  ODD_CLIENT_SECRET,
  ODD_LOGIN,
  ODD_PASSWORD,
  oddLogin,
  postForm,
  refreshAt,
  tokensOf,
  withOddServer,
} from './fixtures.ts';

describe('echo faults', () => {
  it("'body' reflects the raw form-encoded request into error_description", () =>
    withOddServer({}, async ({ server }) => {
      server.inject({ kind: 'echo' });
      const res = await oddLogin(server);
      assert.equal(res.status, 401);
      const json = await jsonOf(res);
      assert.equal(json.error, 'invalid_grant');
      assert.equal(json.error_description, new URLSearchParams(ODD_LOGIN).toString());
      assert.match(String(json.error_description), /password=correct\+horse%40battery/);
      // An echo is a rejection: no session, and the next login is served normally.
      assert.equal(server.activeSessions(), 0);
      assert.equal(server.requests[0]?.fault, 'echo');
      assert.equal((await oddLogin(server)).status, 200);
    }));

  it("'secret' puts the password itself into error, plain JSON escaping", () =>
    withOddServer({}, async ({ server }) => {
      server.inject({ kind: 'echo', variant: 'secret' }, { kind: 'echo', variant: 'secret' });
      const res = await oddLogin(server);
      assert.equal(res.status, 401);
      const text = await res.text();
      assert.ok(text.includes(JSON.stringify(ODD_PASSWORD)));
      assert.deepEqual(JSON.parse(text), {
        error: ODD_PASSWORD,
        error_description: 'Invalid user credentials',
      });
      // Without a password, the client secret is the secret, also when sent by HTTP Basic.
      const raw = `sh-svc:${encodeURIComponent(ODD_CLIENT_SECRET)}`;
      const cc = await postForm(
        server.tokenUrl,
        { grant_type: 'client_credentials' },
        { authorization: `Basic ${Buffer.from(raw).toString('base64')}` },
      );
      assert.equal((await jsonOf(cc)).error, encodeURIComponent(ODD_CLIENT_SECRET));
    }));

  it("'secret-json' gives the JSON literal of the password, so its text differs", () =>
    withOddServer({}, async ({ server }) => {
      server.inject({
        kind: 'echo',
        variant: 'secret-json',
        into: 'error_description',
        status: 400,
      });
      const res = await oddLogin(server);
      assert.equal(res.status, 400);
      const json = await jsonOf(res);
      assert.equal(json.error, 'invalid_grant');
      assert.equal(json.error_description, JSON.stringify(ODD_PASSWORD));
      assert.notEqual(json.error_description, ODD_PASSWORD);
      assert.ok(String(json.error_description).includes('\\"quoted\\" back\\\\slash\\nline'));
    }));

  it("'secret-unicode' keeps the parsed value but never the password's text", () =>
    withOddServer({}, async ({ server }) => {
      const issued = await tokensOf(oddLogin(server));
      server.inject({ kind: 'echo', variant: 'secret-unicode' });
      const res = await refreshAt(server, issued.refresh_token);
      const text = await res.text();
      // A refresh request's secret is its refresh token.
      assert.equal(JSON.parse(text).error, issued.refresh_token);
      assert.equal(text.includes(String(issued.refresh_token).slice(0, 8)), false);
      assert.match(text, /^\{"error":"(\\u[0-9a-f]{4})+","error_description":/);
    }));
});

describe('fault targets', () => {
  it('a request takes the first fault aimed at it; others wait their turn', () =>
    withOddServer({}, async ({ server }) => {
      const first = await tokensOf(oddLogin(server));
      server.inject(
        { kind: 'echo', variant: 'secret', on: 'refresh_token' },
        { kind: 'status', status: 503, on: ['password', 'logout'] },
        { kind: 'status', status: 502 },
      );
      assert.equal((await oddLogin(server)).status, 503);
      assert.equal((await postForm(server.tokenUrl, { grant_type: 'x' })).status, 502);
      assert.equal((await oddLogin(server)).status, 200);
      const echoed = await refreshAt(server, first.refresh_token);
      assert.equal((await jsonOf(echoed)).error, first.refresh_token);
      assert.equal((await refreshAt(server, first.refresh_token)).status, 200);
    }));
});

describe('tamper faults', () => {
  it('overrides fields of a real success, which still makes a session', () =>
    withOddServer({}, async ({ server }) => {
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
      const json = await tokensOf(oddLogin(server));
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
      assert.equal(typeof (await tokensOf(oddLogin(server))).session_state, 'string');
    }));

  it('a forged refresh token stands for the real one unless acceptForged is false', () =>
    withOddServer({ rotateRefreshTokens: true }, async ({ server }) => {
      const huge = 'R'.repeat(150_000);
      server.inject({
        kind: 'tamper',
        set: { access_token: 'A'.repeat(150_000), refresh_token: huge },
      });
      const json = await tokensOf(oddLogin(server));
      assert.equal(String(json.access_token).length, 150_000);
      const session = server.sessionOf(huge);
      const next = await tokensOf(refreshAt(server, huge));
      assert.equal(next.session_state, session);
      // Rotation sees the forged token and the real one as the same token.
      await expectExactError(
        await refreshAt(server, huge),
        400,
        'invalid_grant',
        'Maximum allowed refresh token reuse exceeded',
      );

      server.inject({ kind: 'tamper', set: { refresh_token: 'forged' }, acceptForged: false });
      const unknown = await tokensOf(oddLogin(server));
      assert.equal(server.sessionOf('forged'), undefined);
      assert.equal(server.sessionIds().length, 2);
      assert.equal(server.sessionIds().includes(String(unknown.session_state)), true);
      await expectExactError(
        await refreshAt(server, 'forged'),
        400,
        'invalid_grant',
        'Invalid refresh token',
      );
    }));

  it('raw values reach the client as written', () =>
    withOddServer({}, async ({ server }) => {
      server.inject({ kind: 'tamper', raw: { expires_in: '1e999', refresh_expires_in: '-0' } });
      const text = await (await oddLogin(server)).text();
      assert.match(text, /"expires_in":1e999/);
      assert.match(text, /"refresh_expires_in":-0[,}]/);
      const json = JSON.parse(text) as Record<string, unknown>;
      assert.equal(json.expires_in, Number.POSITIVE_INFINITY);
      assert.equal(Object.is(json.refresh_expires_in, -0), true);
      assert.equal(typeof json.access_token, 'string');
    }));

  it('skips logout, applies to refresh and client_credentials, and passes a failure through', () =>
    withOddServer({ clientCredentialsRefreshToken: true }, async ({ server }) => {
      const a = await tokensOf(oddLogin(server));
      const b = await tokensOf(oddLogin(server));
      server.inject({ kind: 'tamper', set: { expires_in: -1 } });
      assert.equal((await logoutAt(server, a.refresh_token)).status, 204);
      assert.equal((await tokensOf(refreshAt(server, b.refresh_token))).expires_in, -1);

      server.inject({ kind: 'tamper', set: { expires_in: -2 }, on: 'client_credentials' });
      const cc = await tokensOf(
        postForm(server.tokenUrl, {
          grant_type: 'client_credentials',
          client_id: 'sh-svc',
          client_secret: ODD_CLIENT_SECRET,
        }),
      );
      assert.equal(cc.expires_in, -2);

      server.inject({ kind: 'tamper', set: { access_token: 'x' } });
      await expectExactError(
        await oddLogin(server, { password: 'wrong' }),
        401,
        'invalid_grant',
        'Invalid user credentials',
      );
      assert.notEqual((await tokensOf(oddLogin(server))).access_token, 'x');
    }));
});

describe('status faults with hostile JSON', () => {
  it('send any JSON value with any status', () =>
    withOddServer({}, async ({ server }) => {
      const error = {
        error: 'invalid_grant\n::error::forged\r\n##[error]x%0A::add-mask::y',
        error_description: `::error title=t::${'M'.repeat(3 << 20)}`,
      };
      server.inject(
        { kind: 'status', status: 400, json: error },
        { kind: 'status', status: 503, json: ['not', 'an', 'object'] },
        { kind: 'status', status: 200, json: { access_token: 7 }, contentType: 'text/plain' },
      );
      const res = await oddLogin(server);
      assert.equal(res.status, 400);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(await jsonOf(res), error);
      const unavailable = await oddLogin(server);
      assert.equal(unavailable.status, 503);
      assert.deepEqual(await unavailable.json(), ['not', 'an', 'object']);
      const plain = await oddLogin(server);
      assert.equal(plain.headers.get('content-type'), 'text/plain');
      assert.equal(await plain.text(), '{"access_token":7}');
    }));
});
