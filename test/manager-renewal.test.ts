// TokenManager against the test identity server, in-process: the order of renewal (stored
// token, refresh, full grant; TOTP codes and secrets; client credentials) and what it takes from
// token responses (rotated refresh tokens, lifetimes, malformed bodies). One server and clock for
// the file (fixtures.ts managerBench): the tests run one at a time and read its counts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ClientCredentialsAuth,
  InvalidCredentialsError,
  InvalidResponseError,
  MemoryTokenStore,
  PasswordAuth,
  RefreshTokenAuth,
  SessionExpiredError,
  TokenManager,
} from '../src/auth/index.ts';
import { MANAGER_PASSWORD, MANAGER_TOTP_SECRET, managerBench } from './fixtures.ts';
import { IdentityServer } from './servers/identity-server.ts';

const bench = managerBench();
const { advance, alice, manager, now, track } = bench;

describe('renewal order', () => {
  test('a valid stored access token is used with no request', async () => {
    const m = manager(alice());
    const first = await m.getTokenSet();
    assert.equal(m.lastGrant, 'password');
    assert.equal(await m.accessToken(), first.accessToken);
    assert.equal(await m.authorizationHeader(), `Bearer ${first.accessToken}`);
    assert.equal(bench.server.counts.total, 1);
  });

  test('after the access token expires the refresh token renews it', async () => {
    const m = manager(alice());
    const first = await m.getTokenSet();
    advance(600 - 29); // inside the 30 s skew
    const second = await m.getTokenSet();
    assert.notEqual(second.accessToken, first.accessToken);
    assert.equal(m.lastGrant, 'refresh_token');
    assert.deepEqual([bench.server.counts.password, bench.server.counts.refresh_token], [1, 1]);
    const refresh = bench.server.requests.at(-1);
    assert.deepEqual(Object.keys(refresh?.form ?? {}).sort(), [
      'client_id',
      'grant_type',
      'refresh_token',
    ]);
  });

  test('after the refresh token expires a full grant follows', async () => {
    const m = manager(alice());
    await m.getTokenSet();
    advance(3600);
    await m.getTokenSet();
    assert.deepEqual([bench.server.counts.password, bench.server.counts.refresh_token], [2, 0]);
  });

  test('a rejected refresh token (session ended) falls back to a full grant', async () => {
    const m = manager(alice());
    await m.getTokenSet();
    bench.server.endAllSessions();
    advance(600);
    const set = await m.getTokenSet();
    assert.ok(set.accessValid(30, now()));
    assert.deepEqual([bench.server.counts.password, bench.server.counts.refresh_token], [2, 1]);
  });

  test('forceRefresh renews a still-valid token', async () => {
    const m = manager(alice());
    const first = await m.getTokenSet();
    const forced = await m.forceRefresh();
    assert.notEqual(forced.accessToken, first.accessToken);
    assert.equal(bench.server.counts.refresh_token, 1);
  });

  test('the refresh-token provider ends with SessionExpiredError once its token dies', async () => {
    const seed = await manager(alice()).getTokenSet();
    const m = manager(new RefreshTokenAuth(seed.refreshToken as string));
    await m.getTokenSet();
    assert.equal(m.lastGrant, 'refresh_token');
    bench.server.endAllSessions();
    advance(600);
    await assert.rejects(m.getTokenSet(), (e: Error) => {
      assert.ok(e instanceof SessionExpiredError);
      assert.equal(e.error, 'invalid_grant');
      assert.match(e.message, /log in again/);
      return true;
    });
    // The dead token is not sent again.
    const refreshes = bench.server.counts.refresh_token;
    await assert.rejects(m.getTokenSet(), SessionExpiredError);
    assert.equal(bench.server.counts.refresh_token, refreshes);
  });

  test('a one-time TOTP code cannot log in again after the refresh token expires', async () => {
    const { totpCode } = await import('./servers/identity-server.ts');
    const m = manager(
      new PasswordAuth('bob', MANAGER_PASSWORD, {
        totp: totpCode(MANAGER_TOTP_SECRET, now()),
        now,
      }),
    );
    await m.getTokenSet();
    advance(3600);
    await assert.rejects(m.getTokenSet(), /one-time TOTP code cannot log in again/);
    assert.equal(bench.server.counts.password, 1);
  });

  test('a TOTP secret logs in again and again with codes the server accepts', async () => {
    const m = manager(
      new PasswordAuth('bob', MANAGER_PASSWORD, { totpSecret: MANAGER_TOTP_SECRET, now }),
    );
    await m.getTokenSet();
    advance(3600);
    await m.getTokenSet(); // a later login, a new code
    // A second login within the same 30 s step: the server refuses the used code, so the
    // provider sends the next step's code, which the server's look-around window accepts.
    bench.server.endAllSessions();
    await m.forceRefresh();
    assert.equal(bench.server.counts.password, 3);
    assert.deepEqual(
      bench.server.requests.filter((r) => r.grant === 'password').map((r) => r.status),
      [200, 200, 200],
    );
  });

  test('another client with the same TOTP secret in the same step is refused (why matrix jobs share one login)', async () => {
    advance(90); // past every step the previous tests used
    await manager(
      new PasswordAuth('bob', MANAGER_PASSWORD, { totpSecret: MANAGER_TOTP_SECRET, now }),
    ).getTokenSet();
    const parallel = manager(
      new PasswordAuth('bob', MANAGER_PASSWORD, { totpSecret: MANAGER_TOTP_SECRET, now }),
    );
    await assert.rejects(parallel.getTokenSet(), InvalidCredentialsError);
  });

  test('client credentials: no refresh token, a new grant at expiry', async () => {
    const m = manager(new ClientCredentialsAuth('sh-robot', 'robot-secret'));
    const first = await m.getTokenSet();
    assert.equal(first.refreshToken, undefined);
    assert.equal(bench.server.requests[0]?.form.client_secret, 'robot-secret');
    advance(600);
    await m.getTokenSet();
    assert.equal(bench.server.counts.client_credentials, 2);
  });

  test('a confidential client sends its secret with the refresh grant too', async () => {
    const store = new MemoryTokenStore();
    const seed = manager(new ClientCredentialsAuth('private-app', 'app-secret'));
    // private-app is not a service account: get its tokens through a refresh-token seed instead.
    await assert.rejects(seed.getTokenSet(), InvalidCredentialsError);
    bench.server.addClient({
      clientId: 'sh-refresh',
      clientSecret: 'sh-secret',
      serviceAccount: true,
    });
    const srv = await IdentityServer.start({
      now,
      clients: [{ clientId: 'sh-refresh', clientSecret: 'sh-secret', serviceAccount: true }],
      clientCredentialsRefreshToken: true,
    });
    try {
      const m = new TokenManager(new ClientCredentialsAuth('sh-refresh', 'sh-secret'), {
        tokenUrl: srv.tokenUrl,
        store,
        now,
      });
      track(m);
      await m.getTokenSet();
      advance(600);
      await m.getTokenSet();
      const refresh = srv.requests.find((r) => r.grant === 'refresh_token');
      assert.equal(refresh?.form.client_secret, 'sh-secret');
      assert.equal(refresh?.status, 200);
    } finally {
      await srv.close();
    }
  });
});

describe('token responses', () => {
  test('a rotated refresh token is stored and used next', async () => {
    const srv = await IdentityServer.start({
      now,
      rotateRefreshTokens: true,
      users: [{ username: 'alice', password: MANAGER_PASSWORD }],
    });
    try {
      const store = new MemoryTokenStore();
      const m = new TokenManager(alice(), { tokenUrl: srv.tokenUrl, store, now });
      track(m);
      const first = await m.getTokenSet();
      advance(600);
      const second = await m.getTokenSet();
      assert.notEqual(second.refreshToken, first.refreshToken);
      assert.equal((await store.load())?.refreshToken, second.refreshToken);
      advance(600);
      await m.getTokenSet(); // would fail with "reuse exceeded" had the old one been kept
      assert.deepEqual(
        srv.requests.map((r) => r.status),
        [200, 200, 200],
      );
    } finally {
      await srv.close();
    }
  });

  test('lifetimes: refresh_expires_in 0 is no expiry, a missing one is unknown', async () => {
    for (const options of [{ refreshLifetime: 0 }, { omitOptionalFields: true }]) {
      const srv = await IdentityServer.start({
        now,
        ...options,
        users: [{ username: 'alice', password: MANAGER_PASSWORD }],
      });
      try {
        const m = new TokenManager(alice(), { tokenUrl: srv.tokenUrl, now });
        track(m);
        const set = await m.getTokenSet();
        assert.equal(set.refreshExpiresAt, undefined);
        assert.equal(set.refreshValid(10 ** 7, now()), true);
        assert.equal(set.tokenType, 'Bearer');
        assert.equal(set.expiresAt.getTime(), now() + 600_000);
      } finally {
        await srv.close();
      }
    }
  });

  const malformed = [
    ['html', /HTML page/],
    ['invalid-json', /not JSON/],
    ['no-access-token', /access_token/],
  ] as const;
  for (const [kind, message] of malformed) {
    test(`a 200 with ${kind} is an InvalidResponseError`, async () => {
      bench.server.inject({ kind });
      await assert.rejects(manager(alice()).getTokenSet(), (e: Error) => {
        assert.ok(e instanceof InvalidResponseError, e.message);
        assert.match(e.message, message);
        assert.doesNotMatch(e.message, new RegExp(MANAGER_PASSWORD));
        return true;
      });
    });
  }

  test('a truncated body is a network fault: retried, then answered', async () => {
    bench.server.inject({ kind: 'truncated' });
    const set = await manager(alice()).getTokenSet();
    assert.ok(set.accessToken);
    assert.equal(bench.server.counts.password, 2);
  });
});
