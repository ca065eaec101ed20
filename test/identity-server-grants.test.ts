// The test identity server's grants, as a Keycloak CDSE realm answers them: the password grant
// (success shape, bad users and clients, client_secret_basic, malformed requests), TOTP codes and
// logins, and client_credentials. The helpers and the realm are in fixtures.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  basicAuth,
  CLOCK_START,
  type ClockedServer,
  expectError,
  jsonOf,
  jwtPayload,
  postForm,
  REALM_TOTP_SECRET,
  realmLogin,
  realmServer,
  refreshAt,
  tokensOf,
} from './fixtures.ts';
import { randomBase32Secret, totpCode } from './servers/identity-server.ts';

const SCOPE = 'AUDIENCE_PUBLIC email profile user-context';

describe('totpCode', () => {
  it('matches the RFC 6238 appendix B SHA1 vectors (last 6 digits)', () => {
    const vectors: Array<[number, string]> = [
      [59, '94287082'],
      [1111111109, '07081804'],
      [1111111111, '14050471'],
      [1234567890, '89005924'],
      [2000000000, '69279037'],
      [20000000000, '65353130'],
    ];
    for (const [seconds, eight] of vectors) {
      assert.equal(totpCode(REALM_TOTP_SECRET, seconds * 1000), eight.slice(2));
    }
    assert.equal(totpCode(REALM_TOTP_SECRET, 59_000), '287082');
    assert.equal(totpCode(REALM_TOTP_SECRET.toLowerCase(), 59_000), '287082');
  });

  it('changes every 30 s step and rejects invalid secrets', () => {
    assert.equal(totpCode(REALM_TOTP_SECRET, 30_000), totpCode(REALM_TOTP_SECRET, 59_999));
    assert.notEqual(totpCode(REALM_TOTP_SECRET, 59_999), totpCode(REALM_TOTP_SECRET, 60_000));
    assert.throws(() => totpCode('not base32!'));
  });

  it('randomBase32Secret gives distinct 160-bit base32 secrets', () => {
    const a = randomBase32Secret();
    const b = randomBase32Secret();
    assert.match(a, /^[A-Z2-7]{32}$/);
    assert.notEqual(a, b);
    assert.match(totpCode(a), /^\d{6}$/);
  });
});

describe('IdentityServer', () => {
  let h: ClockedServer;
  before(async () => {
    h = await realmServer();
  });
  after(() => h.server.close());

  it('exposes CDSE-shaped URLs on 127.0.0.1', () => {
    assert.match(h.server.origin, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(h.server.issuer, `${h.server.origin}/auth/realms/CDSE`);
    assert.equal(h.server.tokenUrl, `${h.server.issuer}/protocol/openid-connect/token`);
    assert.equal(h.server.logoutUrl, `${h.server.issuer}/protocol/openid-connect/logout`);
  });

  it('password grant returns the Keycloak success shape with unique JWT-like tokens', async () => {
    const res = await realmLogin(h.server);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const json = await jsonOf(res);
    assert.deepEqual(Object.keys(json).sort(), [
      'access_token',
      'expires_in',
      'not-before-policy',
      'refresh_expires_in',
      'refresh_token',
      'scope',
      'session_state',
      'token_type',
    ]);
    assert.equal(json.expires_in, 600);
    assert.equal(json.refresh_expires_in, 3600);
    assert.equal(json.token_type, 'Bearer');
    assert.equal(json['not-before-policy'], 0);
    assert.equal(json.scope, SCOPE);
    const access = jwtPayload(json.access_token);
    assert.equal(access.exp, Math.floor(CLOCK_START / 1000) + 600);
    assert.equal(access.iat, Math.floor(CLOCK_START / 1000));
    assert.equal(access.sid, json.session_state);
    assert.equal(access.azp, 'cdse-public');
    assert.equal(access.typ, 'Bearer');
    assert.equal(typeof access.sub, 'string');
    const refreshClaims = jwtPayload(json.refresh_token);
    assert.equal(refreshClaims.exp, Math.floor(CLOCK_START / 1000) + 3600);
    assert.equal(refreshClaims.typ, 'Refresh');
    assert.equal(h.server.accessTokenValid(String(json.access_token)), true);

    const again = await tokensOf(realmLogin(h.server));
    assert.notEqual(again.access_token, json.access_token);
    assert.notEqual(again.refresh_token, json.refresh_token);
    assert.notEqual(again.session_state, json.session_state);
    assert.equal(jwtPayload(again.access_token).sub, access.sub);
  });

  it('rejects bad user credentials with 401 invalid_grant', async () => {
    await expectError(
      await realmLogin(h.server, { password: 'wrong' }),
      401,
      'invalid_grant',
      'Invalid user credentials',
    );
    await expectError(
      await realmLogin(h.server, { username: 'nobody' }),
      401,
      'invalid_grant',
      'Invalid user credentials',
    );
  });

  it('rejects bad clients with 401 invalid_client', async () => {
    const msg = 'Invalid client or Invalid client credentials';
    await expectError(
      await realmLogin(h.server, { client_id: 'nope' }),
      401,
      'invalid_client',
      msg,
    );
    await expectError(
      await realmLogin(h.server, { client_id: 'conf' }),
      401,
      'invalid_client',
      msg,
    );
    await expectError(
      await realmLogin(h.server, { client_id: 'conf', client_secret: 'bad' }),
      401,
      'invalid_client',
      msg,
    );
    assert.equal(
      (await realmLogin(h.server, { client_id: 'conf', client_secret: 'conf-secret' })).status,
      200,
    );
  });

  it('accepts client_secret_basic instead of form fields', async () => {
    const fields = { grant_type: 'password', username: 'alice', password: 'pw-alice' };
    const ok = await postForm(h.server.tokenUrl, fields, basicAuth('conf', 'conf-secret'));
    assert.equal(ok.status, 200);
    assert.equal(jwtPayload((await jsonOf(ok)).access_token).azp, 'conf');
    await expectError(
      await postForm(h.server.tokenUrl, fields, basicAuth('conf', 'wrong')),
      401,
      'invalid_client',
    );
    await expectError(
      await postForm(h.server.tokenUrl, fields, { authorization: 'Basic !!!' }),
      401,
      'invalid_client',
    );
  });

  it('answers malformed requests like Keycloak', async () => {
    await expectError(
      await postForm(h.server.tokenUrl, { grant_type: 'password', client_id: 'cdse-public' }),
      400,
      'invalid_request',
    );
    await expectError(
      await postForm(h.server.tokenUrl, { client_id: 'cdse-public' }),
      400,
      'invalid_request',
    );
    await expectError(
      await postForm(h.server.tokenUrl, { grant_type: 'implicit', client_id: 'cdse-public' }),
      400,
      'unsupported_grant_type',
    );
    // A JSON body is not a form: Keycloak sees no grant_type at all.
    const jsonBody = await fetch(h.server.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password' }),
    });
    await expectError(jsonBody, 400, 'invalid_request');
    const get = await fetch(h.server.tokenUrl);
    assert.equal(get.status, 405);
    await get.arrayBuffer();
    const missing = await fetch(`${h.server.origin}/auth/realms/CDSE/nope`, { method: 'POST' });
    assert.equal(missing.status, 404);
    assert.equal(typeof (await jsonOf(missing)).error, 'string');
  });
});

describe('TOTP logins', () => {
  it('accepts the current code once and rejects missing, wrong, stale and reused codes', async () => {
    const { server, clock } = await realmServer();
    try {
      const bob = (code?: string, field = 'totp') =>
        postForm(server.tokenUrl, {
          grant_type: 'password',
          username: 'bob',
          password: 'pw-bob',
          client_id: 'cdse-public',
          ...(code === undefined ? {} : { [field]: code }),
        });
      const invalid = 'Invalid user credentials';
      await expectError(await bob(), 401, 'invalid_grant', invalid);
      const current = totpCode(REALM_TOTP_SECRET, clock.ms);
      const wrong = current === '000000' ? '111111' : '000000';
      await expectError(await bob(wrong), 401, 'invalid_grant', invalid);
      await expectError(
        await bob(totpCode(REALM_TOTP_SECRET, clock.ms - 60_000)),
        401,
        'invalid_grant',
      );
      // A right code with a wrong password must not log in.
      const wrongPw = await postForm(server.tokenUrl, {
        grant_type: 'password',
        username: 'bob',
        password: 'nope',
        client_id: 'cdse-public',
        totp: current,
      });
      await expectError(wrongPw, 401, 'invalid_grant', invalid);

      assert.equal((await bob(current)).status, 200);
      await expectError(await bob(current), 401, 'invalid_grant', invalid);
      await expectError(await bob(current, 'otp'), 401, 'invalid_grant', invalid);

      // The previous step is inside Keycloak's ±1 window, and `otp` is read too.
      assert.equal((await bob(totpCode(REALM_TOTP_SECRET, clock.ms - 30_000), 'otp')).status, 200);

      clock.ms += 30_000;
      assert.equal((await bob(totpCode(REALM_TOTP_SECRET, clock.ms))).status, 200);
      assert.equal(server.activeSessions(), 3);
    } finally {
      await server.close();
    }
  });
});

describe('client_credentials grant', () => {
  it('issues a token without refresh token to service-account clients only', async () => {
    const { server } = await realmServer();
    try {
      const cc = (extra: Record<string, string>, headers: Record<string, string> = {}) =>
        postForm(server.tokenUrl, { grant_type: 'client_credentials', ...extra }, headers);
      const res = await cc({ client_id: 'sh-svc', client_secret: 'svc-secret' });
      assert.equal(res.status, 200);
      const json = await jsonOf(res);
      assert.equal(json.token_type, 'Bearer');
      assert.equal(json.expires_in, 600);
      assert.equal('refresh_token' in json, false);
      assert.equal(jwtPayload(json.access_token).azp, 'sh-svc');
      assert.equal(server.activeSessions(), 1);
      assert.equal((await cc({}, basicAuth('sh-svc', 'svc-secret'))).status, 200);

      await expectError(
        await cc({ client_id: 'sh-svc', client_secret: 'bad' }),
        401,
        'invalid_client',
      );
      await expectError(await cc({ client_id: 'sh-svc' }), 401, 'invalid_client');
      await expectError(await cc({ client_id: 'cdse-public' }), 400, 'unauthorized_client');
      await expectError(
        await cc({ client_id: 'conf', client_secret: 'conf-secret' }),
        400,
        'unauthorized_client',
      );
    } finally {
      await server.close();
    }
  });

  it('can return a refresh token when configured to', async () => {
    const { server } = await realmServer({ clientCredentialsRefreshToken: true });
    try {
      const res = await postForm(server.tokenUrl, {
        grant_type: 'client_credentials',
        client_id: 'sh-svc',
        client_secret: 'svc-secret',
      });
      const json = await jsonOf(res);
      const again = await refreshAt(server, json.refresh_token, {
        client_id: 'sh-svc',
        client_secret: 'svc-secret',
      });
      assert.equal(again.status, 200);
    } finally {
      await server.close();
    }
  });
});
