// TokenManager + FileTokenStore in one process: managers that share a credentials file renew
// through its lock, and a refused refresh looks for the token set that replaced it before it
// gives up or deletes anything.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import {
  FileTokenStore,
  type FileTokenStoreOptions,
  MemoryTokenStore,
  PasswordAuth,
  SessionExpiredError,
  TokenManager,
  type TokenManagerOptions,
} from '../src/auth/index.ts';
import { ROTATIONS, refreshAt, rotationName, sendsOf, until } from './fixtures.ts';
import { IdentityServer } from './servers/identity-server.ts';

const USER = 'mei@example.com';
const PASSWORD = 'shared-file-password';

interface Setup {
  server: IdentityServer;
  path: string;
  /** The managers' clock; the server keeps real time, so moving it only ages the stored set. */
  advance(seconds: number): void;
  /** A manager on the shared file, with its own store object (as another process would have). */
  manager(
    kind: 'password' | 'stored',
    store?: FileTokenStoreOptions,
    options?: TokenManagerOptions,
  ): TokenManager;
  /** A password manager on its own store (another job's login), sharing the clock. */
  elsewhere(): TokenManager;
}

async function setup(t: TestContext, rotate: boolean): Promise<Setup> {
  const server = await IdentityServer.start({
    users: [{ username: USER, password: PASSWORD }],
    rotateRefreshTokens: rotate,
  });
  const dir = await mkdtemp(join(tmpdir(), 'cdse-managers-'));
  const managers: TokenManager[] = [];
  t.after(async () => {
    await Promise.all(managers.map((m) => m.close()));
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  let clock = Date.now();
  const now = () => clock;
  const path = join(dir, 'credentials.json');
  const make = (m: TokenManager) => {
    managers.push(m);
    return m;
  };
  const common = { tokenUrl: server.tokenUrl, now };
  return {
    server,
    path,
    advance: (seconds) => {
      clock += seconds * 1000;
    },
    manager: (kind, storeOptions = {}, options = {}) => {
      const store = new FileTokenStore(path, storeOptions);
      return make(
        kind === 'password'
          ? new TokenManager(new PasswordAuth(USER, PASSWORD), { ...common, store, ...options })
          : TokenManager.storedSession({ ...common, store, ...options }),
      );
    },
    elsewhere: () =>
      make(
        new TokenManager(new PasswordAuth(USER, PASSWORD), {
          ...common,
          store: new MemoryTokenStore(),
        }),
      ),
  };
}

const readFileSet = async (path: string) =>
  (JSON.parse(await readFile(path, 'utf8')) as { tokenSet: { accessToken: string } }).tokenSet;

describe('managers sharing one credentials file', { concurrency: true }, () => {
  for (const rotate of ROTATIONS) {
    test(`two managers in one process renew once (${rotationName(rotate)})`, async (t) => {
      const s = await setup(t, rotate);
      const login = await s.manager('password').getTokenSet();
      s.advance(601); // the access token has expired; the refresh token lives
      const a = s.manager('password');
      const b = s.manager('stored');
      const [fromA, fromB] = await Promise.all([a.getTokenSet(), b.getTokenSet()]);
      assert.equal(fromA.accessToken, fromB.accessToken);
      assert.notEqual(fromA.accessToken, login.accessToken);
      assert.ok(s.server.accessTokenValid(fromA.accessToken));
      assert.equal(s.server.counts.refresh_token, 1, 'one refresh');
      assert.equal(s.server.counts.password, 1, 'no second login');
      assert.equal(a.requestCount + b.requestCount, 1);
      assert.equal((await readFileSet(s.path)).accessToken, fromA.accessToken);
      // Both carry on from the file with no request.
      assert.equal(await a.accessToken(), fromA.accessToken);
      assert.equal(await b.accessToken(), fromA.accessToken);
      assert.equal(s.server.counts.total, 2);
    });
  }

  test('rotation on: a manager refused after another renewed uses the set it finds in the file', async (t) => {
    const s = await setup(t, true);
    const login = await s.manager('password').getTokenSet();
    const stale = login.refreshToken;
    s.advance(601);
    // B renews first and holds the lock while the server sits on its request; A finds B's lock
    // stale (its holder looks hung: staleMs 1) and renews the same refresh token meanwhile.
    s.server.inject({ kind: 'delay', ms: 2_000, on: 'refresh_token' });
    const b = s.manager('password');
    const pendingB = b.getTokenSet();
    await until(() => s.server.counts.refresh_token === 1, 'B’s refresh request', 10_000, 5);
    const a = s.manager('password', { lock: { staleMs: 1 } });
    const fromA = await a.getTokenSet();
    assert.equal(a.lastGrant, 'refresh_token');
    // Precondition: A's renewal was done before the server answered B.
    assert.equal(s.server.requests.find((r) => r.grant === 'refresh_token')?.status, 0);

    // B's request carried the refresh token A had already used: the server refuses it, and B
    // takes A's set from the file instead of logging in or giving up.
    const fromB = await pendingB;
    assert.equal(fromB.accessToken, fromA.accessToken);
    assert.equal(b.requestCount, 0, 'B got no tokens from the server');
    const refreshes = s.server.requests.filter((r) => r.grant === 'refresh_token');
    // In the order the server received them: B's (refused), then A's (the one renewal).
    assert.deepEqual(
      refreshes.map((r) => r.status),
      [400, 200],
    );
    assert.equal(sendsOf(s.server, stale), 2, 'each of A and B sent it once');
    assert.equal(s.server.counts.password, 1, 'no password grant after the login');
    assert.equal((await readFileSet(s.path)).accessToken, fromA.accessToken, 'file kept');
  });

  for (const rotate of ROTATIONS) {
    test(`a refused refresh never deletes a file another writer changed meanwhile (${rotationName(rotate)})`, async (t) => {
      const s = await setup(t, rotate);
      const login = await s.manager('password').getTokenSet();
      const session = s.server.sessionOf(login.accessToken) ?? '';
      s.advance(601);
      // The session ends (an admin, or another job's logout) while B's refresh is under way,
      // and another writer puts a new login into the file (FileTokenStore.save takes no lock).
      s.server.endSession(session);
      s.server.inject({ kind: 'delay', ms: 2_000, on: 'refresh_token' });
      const b = s.manager('stored');
      const pendingB = b.getTokenSet();
      await until(() => s.server.counts.refresh_token === 1, 'B’s refresh request', 10_000, 5);
      const fresh = await s.elsewhere().getTokenSet();
      await new FileTokenStore(s.path).save(fresh);
      assert.equal(s.server.requests.find((r) => r.grant === 'refresh_token')?.status, 0);

      const fromB = await pendingB;
      assert.equal(s.server.requests.find((r) => r.grant === 'refresh_token')?.status, 400);
      assert.equal(fromB.accessToken, fresh.accessToken, 'B carries on with the new login');
      assert.equal((await readFileSet(s.path)).accessToken, fresh.accessToken, 'file kept');
      assert.equal(sendsOf(s.server, login.refreshToken), 1);
      assert.equal(s.server.counts.password, 2, 'only the two logins');
    });
  }

  test('rotation on: a refusal with nobody else renewing clears the file and ends the session', async (t) => {
    const s = await setup(t, true);
    const login = await s.manager('password').getTokenSet();
    // Someone outside this file (another job) used the refresh token first.
    const outside = await refreshAt(s.server, login.refreshToken ?? '');
    assert.equal(outside.status, 200);
    await outside.body?.cancel();
    s.advance(601);
    const b = s.manager('stored');
    await assert.rejects(b.getTokenSet(), SessionExpiredError);
    await assert.rejects(readFile(s.path), { code: 'ENOENT' });
    // Asked again, it sends nothing: the refused token is never sent twice.
    await assert.rejects(b.getTokenSet(), SessionExpiredError);
    assert.equal(sendsOf(s.server, login.refreshToken), 2, 'the outsider’s and B’s, once');
  });
});
