import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  ClientCredentialsAuth,
  ConfigurationError,
  InvalidCredentialsError,
  InvalidResponseError,
  MemoryTokenStore,
  PasswordAuth,
  RefreshTokenAuth,
  SessionExpiredError,
  TokenEndpointError,
  TokenManager,
  type TokenManagerOptions,
} from '../src/auth/index.ts';
import { IdentityServer, randomBase32Secret } from './servers/identity-server.ts';

const PASSWORD = 'correct horse battery staple';
const TOTP_SECRET = randomBase32Secret();

// One clock for the server and the managers, so tests move time instead of sleeping.
let clock = Date.now();
const now = () => clock;
const advance = (seconds: number) => {
  clock += seconds * 1000;
};

let server: IdentityServer;
const managers: TokenManager[] = [];
function manager(
  provider: ConstructorParameters<typeof TokenManager>[0],
  options: TokenManagerOptions = {},
) {
  const m = new TokenManager(provider, { tokenUrl: server.tokenUrl, now, ...options });
  managers.push(m);
  return m;
}
const alice = (options = {}) => new PasswordAuth('alice', PASSWORD, { now, ...options });

before(async () => {
  server = await IdentityServer.start({
    now,
    users: [
      { username: 'alice', password: PASSWORD },
      { username: 'bob', password: PASSWORD, totpSecret: TOTP_SECRET },
    ],
    clients: [
      { clientId: 'cdse-public' },
      { clientId: 'sh-robot', clientSecret: 'robot-secret', serviceAccount: true },
      { clientId: 'private-app', clientSecret: 'app-secret' },
    ],
  });
});
beforeEach(() => server.resetCounts());
after(async () => {
  await Promise.all(managers.map((m) => m.close()));
  await server.close();
});

describe('renewal order', () => {
  test('a valid stored access token is used with no request', async () => {
    const m = manager(alice());
    const first = await m.getTokenSet();
    assert.equal(m.lastGrant, 'password');
    assert.equal(await m.accessToken(), first.accessToken);
    assert.equal(await m.authorizationHeader(), `Bearer ${first.accessToken}`);
    assert.equal(server.counts.total, 1);
  });

  test('after the access token expires the refresh token renews it', async () => {
    const m = manager(alice());
    const first = await m.getTokenSet();
    advance(600 - 29); // inside the 30 s skew
    const second = await m.getTokenSet();
    assert.notEqual(second.accessToken, first.accessToken);
    assert.equal(m.lastGrant, 'refresh_token');
    assert.deepEqual([server.counts.password, server.counts.refresh_token], [1, 1]);
    const refresh = server.requests.at(-1);
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
    assert.deepEqual([server.counts.password, server.counts.refresh_token], [2, 0]);
  });

  test('a rejected refresh token (session ended) falls back to a full grant', async () => {
    const m = manager(alice());
    await m.getTokenSet();
    server.endAllSessions();
    advance(600);
    const set = await m.getTokenSet();
    assert.ok(set.accessValid(30, clock));
    assert.deepEqual([server.counts.password, server.counts.refresh_token], [2, 1]);
  });

  test('forceRefresh renews a still-valid token', async () => {
    const m = manager(alice());
    const first = await m.getTokenSet();
    const forced = await m.forceRefresh();
    assert.notEqual(forced.accessToken, first.accessToken);
    assert.equal(server.counts.refresh_token, 1);
  });

  test('the refresh-token provider ends with SessionExpiredError once its token dies', async () => {
    const seed = await manager(alice()).getTokenSet();
    const m = manager(new RefreshTokenAuth(seed.refreshToken as string));
    await m.getTokenSet();
    assert.equal(m.lastGrant, 'refresh_token');
    server.endAllSessions();
    advance(600);
    await assert.rejects(m.getTokenSet(), (e: Error) => {
      assert.ok(e instanceof SessionExpiredError);
      assert.equal(e.error, 'invalid_grant');
      assert.match(e.message, /log in again/);
      return true;
    });
    // The dead token is not sent again.
    const refreshes = server.counts.refresh_token;
    await assert.rejects(m.getTokenSet(), SessionExpiredError);
    assert.equal(server.counts.refresh_token, refreshes);
  });

  test('a one-time TOTP code cannot log in again after the refresh token expires', async () => {
    const { totpCode } = await import('./servers/identity-server.ts');
    const m = manager(
      new PasswordAuth('bob', PASSWORD, { totp: totpCode(TOTP_SECRET, clock), now }),
    );
    await m.getTokenSet();
    advance(3600);
    await assert.rejects(m.getTokenSet(), /one-time TOTP code cannot log in again/);
    assert.equal(server.counts.password, 1);
  });

  test('a TOTP secret logs in again and again with codes the server accepts', async () => {
    const m = manager(new PasswordAuth('bob', PASSWORD, { totpSecret: TOTP_SECRET, now }));
    await m.getTokenSet();
    advance(3600);
    await m.getTokenSet(); // a later login, a new code
    // A second login within the same 30 s step: the server refuses the used code, so the
    // provider sends the next step's code, which the server's look-around window accepts.
    server.endAllSessions();
    await m.forceRefresh();
    assert.equal(server.counts.password, 3);
    assert.deepEqual(
      server.requests.filter((r) => r.grant === 'password').map((r) => r.status),
      [200, 200, 200],
    );
  });

  test('another client with the same TOTP secret in the same step is refused (why matrix jobs share one login)', async () => {
    advance(90); // past every step the previous tests used
    await manager(
      new PasswordAuth('bob', PASSWORD, { totpSecret: TOTP_SECRET, now }),
    ).getTokenSet();
    const parallel = manager(new PasswordAuth('bob', PASSWORD, { totpSecret: TOTP_SECRET, now }));
    await assert.rejects(parallel.getTokenSet(), InvalidCredentialsError);
  });

  test('client credentials: no refresh token, a new grant at expiry', async () => {
    const m = manager(new ClientCredentialsAuth('sh-robot', 'robot-secret'));
    const first = await m.getTokenSet();
    assert.equal(first.refreshToken, undefined);
    assert.equal(server.requests[0]?.form.client_secret, 'robot-secret');
    advance(600);
    await m.getTokenSet();
    assert.equal(server.counts.client_credentials, 2);
  });

  test('a confidential client sends its secret with the refresh grant too', async () => {
    const store = new MemoryTokenStore();
    const seed = manager(new ClientCredentialsAuth('private-app', 'app-secret'));
    // private-app is not a service account: get its tokens through a refresh-token seed instead.
    await assert.rejects(seed.getTokenSet(), InvalidCredentialsError);
    server.addClient({ clientId: 'sh-refresh', clientSecret: 'sh-secret', serviceAccount: true });
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
      managers.push(m);
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
      users: [{ username: 'alice', password: PASSWORD }],
    });
    try {
      const store = new MemoryTokenStore();
      const m = new TokenManager(alice(), { tokenUrl: srv.tokenUrl, store, now });
      managers.push(m);
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
        users: [{ username: 'alice', password: PASSWORD }],
      });
      try {
        const m = new TokenManager(alice(), { tokenUrl: srv.tokenUrl, now });
        managers.push(m);
        const set = await m.getTokenSet();
        assert.equal(set.refreshExpiresAt, undefined);
        assert.equal(set.refreshValid(10 ** 7, clock), true);
        assert.equal(set.tokenType, 'Bearer');
        assert.equal(set.expiresAt.getTime(), clock + 600_000);
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
      server.inject({ kind });
      await assert.rejects(manager(alice()).getTokenSet(), (e: Error) => {
        assert.ok(e instanceof InvalidResponseError, e.message);
        assert.match(e.message, message);
        assert.doesNotMatch(e.message, new RegExp(PASSWORD));
        return true;
      });
    });
  }

  test('a truncated body is a network fault: retried, then answered', async () => {
    server.inject({ kind: 'truncated' });
    const set = await manager(alice()).getTokenSet();
    assert.ok(set.accessToken);
    assert.equal(server.counts.password, 2);
  });
});

describe('faults and retries', () => {
  // Waits are recorded, not slept: the tests take milliseconds and still see every backoff.
  let waits: number[] = [];
  const sleep = async (ms: number) => {
    waits.push(ms);
  };
  beforeEach(() => {
    waits = [];
  });

  test('wrong password: exactly one request, a clear error without the password', async () => {
    const m = manager(new PasswordAuth('alice', 'wrong-password-xyz'));
    await assert.rejects(m.getTokenSet(), (e: Error) => {
      assert.ok(e instanceof InvalidCredentialsError);
      assert.equal(e.status, 401);
      assert.equal(e.error, 'invalid_grant');
      assert.equal(e.attempts, 1);
      assert.match(e.message, /rejected the credentials/);
      assert.doesNotMatch(e.message, /wrong-password-xyz/);
      // Keycloak answers a missing TOTP code like a wrong password: the hint says so.
      assert.match((e as InvalidCredentialsError).hint ?? '', /TOTP secret/);
      return true;
    });
    // And the manager never sends it again.
    await assert.rejects(m.getTokenSet(), InvalidCredentialsError);
    assert.equal(server.counts.password, 1);
  });

  test('a bad client secret is not retried either', async () => {
    await assert.rejects(
      manager(new ClientCredentialsAuth('sh-robot', 'nope')).getTokenSet(),
      (e: Error) => {
        assert.ok(e instanceof InvalidCredentialsError);
        assert.equal(e.error, 'invalid_client');
        return true;
      },
    );
    assert.equal(server.counts.client_credentials, 1);
  });

  test('a rejected password with a TOTP secret gets no two-factor hint', async () => {
    const m = manager(
      new PasswordAuth('alice', 'wrong-password-xyz', { totpSecret: TOTP_SECRET, now }),
    );
    await assert.rejects(m.getTokenSet(), (e: Error) => {
      assert.ok(e instanceof InvalidCredentialsError);
      assert.equal(e.hint, undefined);
      return true;
    });
  });

  test('429 with Retry-After is waited out and recovered', async () => {
    server.inject({ kind: 'status', status: 429, retryAfter: '1' });
    await manager(alice(), { sleep }).getTokenSet();
    assert.deepEqual(waits, [1000], 'waited exactly what Retry-After asked');
    assert.equal(server.counts.password, 2);
  });

  test('a 5xx burst and a reset socket are recovered within the attempt budget', async () => {
    server.inject(
      { kind: 'status', status: 503 },
      { kind: 'reset' },
      { kind: 'status', status: 502 },
    );
    await manager(alice(), { maxAttempts: 4, sleep, random: () => 0.5 }).getTokenSet();
    assert.equal(server.counts.password, 4);
    // Exponential backoff with jitter in the upper half: 250, 500, 1000 ms ceilings.
    assert.deepEqual(waits, [187.5, 375, 750]);
  });

  test('retries are bounded: the last status and the attempts are reported', async () => {
    server.inject(...Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 503 })));
    await assert.rejects(manager(alice(), { maxAttempts: 3, sleep }).getTokenSet(), (e: Error) => {
      assert.ok(e instanceof TokenEndpointError);
      assert.equal(e.status, 503);
      assert.equal(e.attempts, 3);
      assert.match(e.message, /HTTP 503 after 3 attempts/);
      return true;
    });
    assert.equal(server.counts.password, 3);
  });

  test('a Retry-After beyond a minute is not waited for', async () => {
    server.inject({ kind: 'status', status: 429, retryAfter: '3600' });
    await assert.rejects(manager(alice()).getTokenSet(), /retry after 3600 s/);
    assert.equal(server.counts.password, 1);
  });

  test('a slow server hits the timeout, which is retried', async () => {
    server.inject({ kind: 'delay', ms: 1500 });
    await manager(alice(), { timeout: 1, sleep }).getTokenSet();
    assert.equal(server.counts.password, 2);
  });

  test('an unreachable endpoint fails with a clear error after the attempts', async () => {
    const m = new TokenManager(alice(), {
      tokenUrl: 'http://127.0.0.1:9/token',
      maxAttempts: 2,
      sleep,
    });
    managers.push(m);
    await assert.rejects(
      m.getTokenSet(),
      /Could not reach 127\.0\.0\.1:9: ECONNREFUSED \(after 2 attempts\)/,
    );
  });

  test('a host name that does not resolve is not retried', async () => {
    // .invalid never resolves (RFC 6761); the resolver answers at once, without the network.
    const m = new TokenManager(alice(), {
      tokenUrl: 'https://identity.cdse-auth.invalid/token',
      maxAttempts: 5,
      sleep,
    });
    managers.push(m);
    await assert.rejects(m.getTokenSet(), /ENOTFOUND \(after 1 attempt\)\. Check the host name/);
    assert.deepEqual(waits, []);
  });
});

describe('concurrency and sessions', () => {
  test('100 concurrent callers share one request', async () => {
    const m = manager(alice());
    const tokens = await Promise.all(Array.from({ length: 100 }, () => m.accessToken()));
    assert.equal(new Set(tokens).size, 1);
    assert.equal(server.counts.total, 1);
    advance(600);
    await Promise.all(Array.from({ length: 100 }, () => m.accessToken()));
    assert.equal(server.counts.refresh_token, 1);
  });

  test('logout ends the server session and clears the store', async () => {
    const store = new MemoryTokenStore();
    const m = manager(alice(), { store });
    const { accessToken } = await m.getTokenSet();
    // This test's own session, not a count other tests' sessions could change.
    const session = server.sessionOf(accessToken) as string;
    assert.equal(server.sessionInfo(session)?.active, true);
    assert.equal(await m.logout(), true);
    assert.equal(server.sessionInfo(session)?.active, false);
    assert.equal(await store.load(), undefined);
    assert.equal(server.requests.at(-1)?.path.endsWith('/logout'), true);
    assert.equal(await m.logout(), false, 'nothing left to end');
  });

  test('a stored token set from another endpoint or client is not used', async () => {
    const store = new MemoryTokenStore();
    await manager(alice(), { store }).getTokenSet();
    const other = manager(new PasswordAuth('alice', PASSWORD, { clientId: 'other-client' }), {
      store,
    });
    await assert.rejects(other.getTokenSet(), InvalidCredentialsError); // it asked the server itself
    assert.equal(server.counts.password, 2);
  });
});

describe('configuration', () => {
  test('the token URL must be https except for loopback, without credentials', () => {
    const bad = [
      'http://example.com/token',
      'ftp://127.0.0.1/x',
      'not a url',
      'https://u:p@example.com/t',
    ];
    for (const tokenUrl of bad) {
      assert.throws(() => new TokenManager(alice(), { tokenUrl }), ConfigurationError, tokenUrl);
    }
    for (const tokenUrl of ['https://example.com/t', 'http://localhost:1/t', 'http://[::1]:1/t']) {
      assert.doesNotThrow(() => new TokenManager(alice(), { tokenUrl }));
    }
    const m = new TokenManager(alice());
    assert.equal(m.logoutUrl, m.tokenUrl.replace(/token$/, 'logout'));
  });
});
