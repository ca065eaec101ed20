// The test identity server's session lifetimes: the SSO session maximum, session ids that tests
// can list, look up and end, and refresh token rotation (reuse, stale tokens, concurrent
// refreshes, Keycloak's detach-session). The harness is in fixtures.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CLOCK_START,
  expectExactError,
  jsonOf,
  jwtPayload,
  logoutAt,
  ODD_CLIENT_SECRET,
  oddLogin,
  postForm,
  refreshAt,
  tokensOf,
  withOddServer,
} from './fixtures.ts';

describe('session maximum', () => {
  it('cuts token lifetimes to the login + sessionMaxSeconds, whatever the refreshes', () =>
    withOddServer({ sessionMaxSeconds: 1800 }, async ({ server, clock }) => {
      const first = await tokensOf(oddLogin(server));
      const id = String(first.session_state);
      assert.equal(first.expires_in, 600);
      assert.equal(first.refresh_expires_in, 1800);
      assert.equal(jwtPayload(first.refresh_token).exp, CLOCK_START / 1000 + 1800);
      let current = first;
      for (let t = 500; t <= 1500; t += 500) {
        clock.ms = CLOCK_START + t * 1000;
        current = await tokensOf(refreshAt(server, current.refresh_token));
        assert.equal(current.refresh_expires_in, 1800 - t);
      }
      assert.equal(current.expires_in, 300);
      assert.equal(jwtPayload(current.access_token).exp, CLOCK_START / 1000 + 1800);
      clock.ms = CLOCK_START + 1799_000;
      const last = await tokensOf(refreshAt(server, current.refresh_token));
      assert.deepEqual([last.expires_in, last.refresh_expires_in], [1, 1]);
      assert.deepEqual(server.sessionIds(), [id]);

      clock.ms = CLOCK_START + 1800_000;
      // Keycloak checks the refresh token's exp, cut to the session end, before the session.
      await expectExactError(
        await refreshAt(server, last.refresh_token),
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
    await withOddServer(
      { sessionMaxSeconds: 7200, refreshLifetime: 600 },
      async ({ server, clock }) => {
        const idle = await tokensOf(oddLogin(server));
        let kept = await tokensOf(oddLogin(server));
        assert.equal(kept.refresh_expires_in, 600);
        for (let t = 500; t < 7200; t += 500) {
          clock.ms = CLOCK_START + t * 1000;
          kept = await tokensOf(refreshAt(server, kept.refresh_token));
        }
        assert.equal(kept.refresh_expires_in, 200);
        await expectExactError(
          await refreshAt(server, idle.refresh_token),
          400,
          'invalid_grant',
          'Token is not active',
        );
        assert.equal(server.activeSessions(), 1);
      },
    );
    await withOddServer(
      { sessionMaxSeconds: 900, refreshLifetime: 0 },
      async ({ server, clock }) => {
        const offline = await tokensOf(oddLogin(server));
        assert.equal(offline.refresh_expires_in, 900);
        clock.ms = CLOCK_START + 900_000;
        assert.equal((await refreshAt(server, offline.refresh_token)).status, 400);
        assert.equal(server.activeSessions(), 0);
      },
    );
    // A maximum shorter than the access token's life ends a session that has no refresh token.
    await withOddServer({ sessionMaxSeconds: 300 }, async ({ server, clock }) => {
      const cc = await tokensOf(
        postForm(server.tokenUrl, {
          grant_type: 'client_credentials',
          client_id: 'sh-svc',
          client_secret: ODD_CLIENT_SECRET,
        }),
      );
      assert.equal(cc.expires_in, 300);
      clock.ms = CLOCK_START + 300_000;
      assert.equal(server.activeSessions(), 0);
    });
  });
});

describe('session ids', () => {
  it('tokens carry their session; tests can list, look up and end sessions', () =>
    withOddServer({ omitOptionalFields: true }, async ({ server }) => {
      const a = await tokensOf(oddLogin(server));
      const b = await tokensOf(oddLogin(server));
      const ids = [String(a.session_state), String(b.session_state)];
      assert.notEqual(ids[0], ids[1]);
      assert.deepEqual(server.sessionIds(), ids);
      assert.equal(jwtPayload(a.access_token).sid, ids[0]);
      assert.equal(jwtPayload(a.refresh_token).sid, ids[0]);
      assert.equal(server.sessionOf(String(a.access_token)), ids[0]);
      assert.equal(server.sessionOf(String(b.refresh_token)), ids[1]);
      assert.equal(server.sessionOf('nope'), undefined);

      const a2 = await tokensOf(refreshAt(server, a.refresh_token));
      assert.equal(a2.session_state, ids[0]);
      await tokensOf(refreshAt(server, a2.refresh_token));
      const other = await postForm(server.tokenUrl, {
        grant_type: 'refresh_token',
        refresh_token: String(a.refresh_token),
        client_id: 'sh-svc',
        client_secret: ODD_CLIENT_SECRET,
      });
      assert.equal(other.status, 400);
      assert.equal((await logoutAt(server, a.refresh_token)).status, 204);
      assert.deepEqual(server.sessionInfo(String(ids[0])), {
        id: ids[0],
        username: 'alice',
        clientId: 'cdse-public',
        startedAt: CLOCK_START,
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
      await expectExactError(
        await refreshAt(server, b.refresh_token),
        400,
        'invalid_grant',
        'Session not active',
      );
      assert.equal(server.activeSessions(), 0);
    }));
});

describe('refresh token rotation', () => {
  it('rejects a reused token without ending the session; older tokens are stale', () =>
    withOddServer({ rotateRefreshTokens: true }, async ({ server }) => {
      const t1 = await tokensOf(oddLogin(server));
      const t2 = await tokensOf(refreshAt(server, t1.refresh_token));
      const reuse = 'Maximum allowed refresh token reuse exceeded';
      await expectExactError(
        await refreshAt(server, t1.refresh_token),
        400,
        'invalid_grant',
        reuse,
      );
      assert.deepEqual(server.sessionIds(), [t1.session_state]);
      const t3 = await tokensOf(refreshAt(server, t2.refresh_token));
      await expectExactError(
        await refreshAt(server, t1.refresh_token),
        400,
        'invalid_grant',
        'Stale token',
      );
      await expectExactError(
        await refreshAt(server, t2.refresh_token),
        400,
        'invalid_grant',
        reuse,
      );
      assert.equal((await refreshAt(server, t3.refresh_token)).status, 200);
      assert.equal(server.sessionInfo(String(t1.session_state))?.refreshes, 3);
    }));

  it('refreshTokenMaxReuse lets the current token be used that many more times', () =>
    withOddServer({ rotateRefreshTokens: true, refreshTokenMaxReuse: 1 }, async ({ server }) => {
      const t1 = await tokensOf(oddLogin(server));
      assert.equal((await refreshAt(server, t1.refresh_token)).status, 200);
      assert.equal((await refreshAt(server, t1.refresh_token)).status, 200);
      assert.equal((await refreshAt(server, t1.refresh_token)).status, 400);
    }));

  it('serialises concurrent refreshes of one token: exactly one wins', () =>
    withOddServer({ rotateRefreshTokens: true }, async ({ server }) => {
      const t1 = await tokensOf(oddLogin(server));
      // Delays release the requests together, as parallel jobs sharing a token would.
      server.inject(...Array.from({ length: 12 }, () => ({ kind: 'delay' as const, ms: 30 })));
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => refreshAt(server, t1.refresh_token)),
      );
      const winners = answers.filter((res) => res.status === 200);
      assert.equal(winners.length, 1);
      for (const res of answers.filter((r) => r.status !== 200)) {
        await expectExactError(
          res,
          400,
          'invalid_grant',
          'Maximum allowed refresh token reuse exceeded',
        );
      }
      const won = await jsonOf(winners[0] as Response);
      assert.equal((await refreshAt(server, won.refresh_token)).status, 200);
      assert.equal(server.activeSessions(), 1);
    }));

  it("onRefreshReuse 'detach-session' ends the session's refreshes, as Keycloak does", () =>
    withOddServer(
      { rotateRefreshTokens: true, onRefreshReuse: 'detach-session' },
      async ({ server }) => {
        const t1 = await tokensOf(oddLogin(server));
        const answers = await Promise.all(
          Array.from({ length: 4 }, () => refreshAt(server, t1.refresh_token)),
        );
        const bodies = await Promise.all(answers.map(jsonOf));
        const descriptions = bodies.map((json) => json.error_description ?? 'ok');
        // Matches a live Keycloak: one success, one reuse error, the rest find no client.
        assert.deepEqual(descriptions.sort(), [
          'Maximum allowed refresh token reuse exceeded',
          "Session doesn't have required client",
          "Session doesn't have required client",
          'ok',
        ]);
        const won = bodies.find((json) => json.refresh_token !== undefined);
        await expectExactError(
          await refreshAt(server, won?.refresh_token),
          400,
          'invalid_grant',
          "Session doesn't have required client",
        );
        const id = String(t1.session_state);
        assert.equal(server.sessionInfo(id)?.detached, true);
        // Keycloak keeps the empty user session until logout or expiry.
        assert.equal(server.activeSessions(), 1);
        assert.equal((await logoutAt(server, t1.refresh_token)).status, 204);
        assert.equal(server.activeSessions(), 0);
      },
    ));
});
