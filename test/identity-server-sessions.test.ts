// The test identity server's sessions: the refresh_token grant within a session and after it
// ends (expiry, rotation, other clients), logout, and the cap of 100 sessions per user.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  basicAuth,
  expectError,
  jsonOf,
  postForm,
  REALM_TOTP_SECRET,
  realmLogin,
  realmServer,
  refreshAt,
  tokensOf,
} from './fixtures.ts';
import { totpCode } from './servers/identity-server.ts';

describe('refresh_token grant', () => {
  it('refreshes within the session and fails once the refresh token expires', async () => {
    const { server, clock } = await realmServer();
    try {
      const first = await tokensOf(realmLogin(server));
      clock.ms += 3599_000;
      const res = await refreshAt(server, first.refresh_token);
      assert.equal(res.status, 200);
      const second = await jsonOf(res);
      assert.equal(second.session_state, first.session_state);
      assert.notEqual(second.access_token, first.access_token);
      assert.equal(second.refresh_expires_in, 3600);
      assert.equal(server.activeSessions(), 1);

      clock.ms += 1000;
      await expectError(
        await refreshAt(server, first.refresh_token),
        400,
        'invalid_grant',
        'Token is not active',
      );
      // Without rotation the newer token stays usable on its own expiry.
      assert.equal((await refreshAt(server, second.refresh_token)).status, 200);
      clock.ms += 3601_000;
      assert.equal(server.activeSessions(), 0);
    } finally {
      await server.close();
    }
  });

  it('rejects unknown tokens, other clients, and confidential clients without their secret', async () => {
    const { server } = await realmServer();
    try {
      await expectError(
        await refreshAt(server, 'garbage'),
        400,
        'invalid_grant',
        'Invalid refresh token',
      );
      await expectError(
        await postForm(server.tokenUrl, { grant_type: 'refresh_token', client_id: 'cdse-public' }),
        400,
        'invalid_request',
      );
      const publicTokens = await tokensOf(realmLogin(server));
      await expectError(
        await refreshAt(server, publicTokens.refresh_token, {
          client_id: 'conf',
          client_secret: 'conf-secret',
        }),
        400,
        'invalid_grant',
      );
      const confRes = await realmLogin(server, { client_id: 'conf', client_secret: 'conf-secret' });
      const conf = await jsonOf(confRes);
      await expectError(
        await refreshAt(server, conf.refresh_token, { client_id: 'conf' }),
        401,
        'invalid_client',
      );
      const ok = await refreshAt(server, conf.refresh_token, {
        client_id: 'conf',
        client_secret: 'conf-secret',
      });
      assert.equal(ok.status, 200);
      const basicOk = await postForm(
        server.tokenUrl,
        { grant_type: 'refresh_token', refresh_token: String(conf.refresh_token) },
        basicAuth('conf', 'conf-secret'),
      );
      assert.equal(basicOk.status, 200);
    } finally {
      await server.close();
    }
  });

  it('with rotation, rejects reuse of a superseded refresh token', async () => {
    const { server } = await realmServer({ rotateRefreshTokens: true });
    try {
      const first = await tokensOf(realmLogin(server));
      const second = await jsonOf(await refreshAt(server, first.refresh_token));
      assert.notEqual(second.refresh_token, first.refresh_token);
      await expectError(
        await refreshAt(server, first.refresh_token),
        400,
        'invalid_grant',
        'Maximum allowed refresh token reuse exceeded',
      );
      assert.equal((await refreshAt(server, second.refresh_token)).status, 200);
    } finally {
      await server.close();
    }
  });

  it('refreshLifetime 0 means refresh tokens never expire', async () => {
    const { server, clock } = await realmServer({ refreshLifetime: 0 });
    try {
      const first = await tokensOf(realmLogin(server));
      assert.equal(first.refresh_expires_in, 0);
      clock.ms += 365 * 24 * 3600_000;
      assert.equal(server.activeSessions(), 1);
      assert.equal((await refreshAt(server, first.refresh_token)).status, 200);
    } finally {
      await server.close();
    }
  });

  it('omitOptionalFields leaves out refresh_expires_in, scope and token_type', async () => {
    const { server } = await realmServer({ omitOptionalFields: true, accessLifetime: 300 });
    try {
      const json = await tokensOf(realmLogin(server));
      assert.equal(json.expires_in, 300);
      assert.equal(typeof json.refresh_token, 'string');
      assert.equal('refresh_expires_in' in json, false);
      assert.equal('scope' in json, false);
      assert.equal('token_type' in json, false);
    } finally {
      await server.close();
    }
  });
});

describe('sessions', () => {
  it('logout ends the session and kills its refresh tokens', async () => {
    const { server } = await realmServer();
    try {
      const a = await tokensOf(realmLogin(server));
      const b = await tokensOf(realmLogin(server));
      assert.equal(server.activeSessions(), 2);
      await expectError(
        await postForm(server.logoutUrl, {
          client_id: 'nope',
          refresh_token: String(a.refresh_token),
        }),
        401,
        'invalid_client',
      );
      await expectError(
        await postForm(server.logoutUrl, { client_id: 'cdse-public', refresh_token: 'garbage' }),
        400,
        'invalid_grant',
      );
      const out = await postForm(server.logoutUrl, {
        client_id: 'cdse-public',
        refresh_token: String(a.refresh_token),
      });
      assert.equal(out.status, 204);
      assert.equal(await out.text(), '');
      assert.equal(server.activeSessions(), 1);
      await expectError(
        await refreshAt(server, a.refresh_token),
        400,
        'invalid_grant',
        'Session not active',
      );
      await expectError(
        await postForm(server.logoutUrl, {
          client_id: 'cdse-public',
          refresh_token: String(a.refresh_token),
        }),
        400,
        'invalid_grant',
      );
      assert.equal((await refreshAt(server, b.refresh_token)).status, 200);

      server.endAllSessions();
      assert.equal(server.activeSessions(), 0);
      await expectError(
        await refreshAt(server, b.refresh_token),
        400,
        'invalid_grant',
        'Session not active',
      );
      assert.equal(server.counts.logout, 4);
    } finally {
      await server.close();
    }
  });

  it('caps active sessions per user at 100 with a WAF 429', async () => {
    const { server, clock } = await realmServer();
    try {
      const tokens: Array<Record<string, unknown>> = [];
      for (let i = 0; i < 100; i++) tokens.push(await tokensOf(realmLogin(server)));
      assert.equal(server.activeSessions(), 100);
      const capped = await realmLogin(server);
      assert.equal(capped.status, 429);
      assert.deepEqual(await jsonOf(capped), {
        error: 'WAF',
        message: 'Rate limit exceeded',
        status: 429,
      });
      // Another user is not affected, and refreshing an existing session still works.
      clock.ms += 30_000;
      const bob = await postForm(server.tokenUrl, {
        grant_type: 'password',
        username: 'bob',
        password: 'pw-bob',
        client_id: 'cdse-public',
        totp: totpCode(REALM_TOTP_SECRET, clock.ms),
      });
      assert.equal(bob.status, 200);
      assert.equal((await refreshAt(server, tokens[0]?.refresh_token)).status, 200);

      const out = await postForm(server.logoutUrl, {
        client_id: 'cdse-public',
        refresh_token: String(tokens[1]?.refresh_token),
      });
      assert.equal(out.status, 204);
      assert.equal((await realmLogin(server)).status, 200);
      assert.equal((await realmLogin(server)).status, 429);

      clock.ms += 3600_000;
      assert.equal(server.activeSessions(), 0);
      assert.equal((await realmLogin(server)).status, 200);
    } finally {
      await server.close();
    }
  });
});
