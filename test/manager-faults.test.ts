// TokenManager against the test identity server, in-process: faults and retries (rejected
// credentials sent once, 429 and 5xx backoff, timeouts, unreachable hosts), concurrent callers
// sharing one request, logout, and configuration checks. One server and clock for the file
// (fixtures.ts managerBench): the tests run one at a time and read its counts.
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import {
  ClientCredentialsAuth,
  ConfigurationError,
  InvalidCredentialsError,
  MemoryTokenStore,
  PasswordAuth,
  TokenEndpointError,
  TokenManager,
} from '../src/auth/index.ts';
import { MANAGER_PASSWORD, MANAGER_TOTP_SECRET, managerBench } from './fixtures.ts';

const bench = managerBench();
const { advance, alice, manager, now, track } = bench;

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
    assert.equal(bench.server.counts.password, 1);
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
    assert.equal(bench.server.counts.client_credentials, 1);
  });

  test('a rejected password with a TOTP secret gets no two-factor hint', async () => {
    const m = manager(
      new PasswordAuth('alice', 'wrong-password-xyz', { totpSecret: MANAGER_TOTP_SECRET, now }),
    );
    await assert.rejects(m.getTokenSet(), (e: Error) => {
      assert.ok(e instanceof InvalidCredentialsError);
      assert.equal(e.hint, undefined);
      return true;
    });
  });

  test('429 with Retry-After is waited out and recovered', async () => {
    bench.server.inject({ kind: 'status', status: 429, retryAfter: '1' });
    await manager(alice(), { sleep }).getTokenSet();
    assert.deepEqual(waits, [1000], 'waited exactly what Retry-After asked');
    assert.equal(bench.server.counts.password, 2);
  });

  test('a 5xx burst and a reset socket are recovered within the attempt budget', async () => {
    bench.server.inject(
      { kind: 'status', status: 503 },
      { kind: 'reset' },
      { kind: 'status', status: 502 },
    );
    await manager(alice(), { maxAttempts: 4, sleep, random: () => 0.5 }).getTokenSet();
    assert.equal(bench.server.counts.password, 4);
    // Exponential backoff with jitter in the upper half: 250, 500, 1000 ms ceilings.
    assert.deepEqual(waits, [187.5, 375, 750]);
  });

  test('retries are bounded: the last status and the attempts are reported', async () => {
    bench.server.inject(
      ...Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 503 })),
    );
    await assert.rejects(manager(alice(), { maxAttempts: 3, sleep }).getTokenSet(), (e: Error) => {
      assert.ok(e instanceof TokenEndpointError);
      assert.equal(e.status, 503);
      assert.equal(e.attempts, 3);
      assert.match(e.message, /HTTP 503 after 3 attempts/);
      return true;
    });
    assert.equal(bench.server.counts.password, 3);
  });

  test('a Retry-After beyond a minute is not waited for', async () => {
    bench.server.inject({ kind: 'status', status: 429, retryAfter: '3600' });
    await assert.rejects(manager(alice()).getTokenSet(), /retry after 3600 s/);
    assert.equal(bench.server.counts.password, 1);
  });

  test('a slow server hits the timeout, which is retried', async () => {
    bench.server.inject({ kind: 'delay', ms: 1500 });
    await manager(alice(), { timeout: 1, sleep }).getTokenSet();
    assert.equal(bench.server.counts.password, 2);
  });

  test('an unreachable endpoint fails with a clear error after the attempts', async () => {
    const m = new TokenManager(alice(), {
      tokenUrl: 'http://127.0.0.1:9/token',
      maxAttempts: 2,
      sleep,
    });
    track(m);
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
    track(m);
    await assert.rejects(m.getTokenSet(), /ENOTFOUND \(after 1 attempt\)\. Check the host name/);
    assert.deepEqual(waits, []);
  });
});

describe('concurrency and sessions', () => {
  test('100 concurrent callers share one request', async () => {
    const m = manager(alice());
    const tokens = await Promise.all(Array.from({ length: 100 }, () => m.accessToken()));
    assert.equal(new Set(tokens).size, 1);
    assert.equal(bench.server.counts.total, 1);
    advance(600);
    await Promise.all(Array.from({ length: 100 }, () => m.accessToken()));
    assert.equal(bench.server.counts.refresh_token, 1);
  });

  test('logout ends the server session and clears the store', async () => {
    const store = new MemoryTokenStore();
    const m = manager(alice(), { store });
    const { accessToken } = await m.getTokenSet();
    // This test's own session, not a count other tests' sessions could change.
    const session = bench.server.sessionOf(accessToken) as string;
    assert.equal(bench.server.sessionInfo(session)?.active, true);
    assert.equal(await m.logout(), true);
    assert.equal(bench.server.sessionInfo(session)?.active, false);
    assert.equal(await store.load(), undefined);
    assert.equal(bench.server.requests.at(-1)?.path.endsWith('/logout'), true);
    assert.equal(await m.logout(), false, 'nothing left to end');
  });

  test('a stored token set from another endpoint or client is not used', async () => {
    const store = new MemoryTokenStore();
    await manager(alice(), { store }).getTokenSet();
    const other = manager(
      new PasswordAuth('alice', MANAGER_PASSWORD, { clientId: 'other-client' }),
      {
        store,
      },
    );
    await assert.rejects(other.getTokenSet(), InvalidCredentialsError); // it asked the server itself
    assert.equal(bench.server.counts.password, 2);
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
