// The library under a lying token endpoint, in-process and over real sockets: what it accepts,
// what its errors carry, and what it tells a front end to mask before anything is sent.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CdseAuthError,
  InvalidCredentialsError,
  InvalidResponseError,
  MemoryTokenStore,
  PasswordAuth,
  SessionExpiredError,
  TokenManager,
  type TokenManagerOptions,
  TokenSet,
} from '../src/auth/index.ts';
import { IdentityServer, randomBase32Secret } from './servers/identity-server.ts';

// Every character that an encoding changes: space, +, @, %, ", \, & and a non-ASCII letter.
const PASSWORD = 'p@ss word+%41"q\\&é-long';
const TOTP_SECRET = randomBase32Secret();
// Written out here, not taken from the code under test, so that a missing form fails; each also
// as a message line shows it, non-ASCII turned to spaces.
const FORMS = [
  PASSWORD,
  encodeURIComponent(PASSWORD),
  new URLSearchParams({ p: PASSWORD }).toString().slice(2),
  JSON.stringify(PASSWORD).slice(1, -1),
  [...PASSWORD].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
].flatMap((form) => [form, form.replace(/[^\x20-\x7e]/g, ' ')]);

let server: IdentityServer;
const managers: TokenManager[] = [];
const manager = (options: TokenManagerOptions = {}, password = PASSWORD) => {
  const m = new TokenManager(new PasswordAuth('alice', password), {
    tokenUrl: server.tokenUrl,
    maxAttempts: 1,
    ...options,
  });
  managers.push(m);
  return m;
};

before(async () => {
  server = await IdentityServer.start({
    users: [
      { username: 'alice', password: PASSWORD },
      { username: 'bob', password: PASSWORD, totpSecret: TOTP_SECRET },
    ],
  });
});
after(async () => {
  await Promise.all(managers.map((m) => m.close()));
  await server.close();
});

/** The error a rejected call threw, with every text it carries. */
async function failure(promise: Promise<unknown>): Promise<CdseAuthError> {
  const error = await promise.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof CdseAuthError, `a CdseAuthError, got ${String(error)}`);
  return error;
}
const texts = (e: CdseAuthError) => [e.message, e.error ?? '', e.errorDescription ?? ''];

describe('an endpoint that echoes the password', () => {
  const variants = [
    ['the form-encoded request', { kind: 'echo' }],
    ['the raw password in error', { kind: 'echo', variant: 'secret' }],
    ['its JSON literal', { kind: 'echo', variant: 'secret-json', into: 'error_description' }],
    ['its \\u escapes', { kind: 'echo', variant: 'secret-unicode', into: 'error_description' }],
  ] as const;
  for (const [what, fault] of variants) {
    test(`${what}: no form of it in the error's message or fields`, async () => {
      server.inject(fault);
      const error = await failure(manager().getTokenSet());
      for (const text of texts(error)) {
        for (const form of FORMS) {
          assert.ok(!text.includes(form), `${JSON.stringify(form)} in ${JSON.stringify(text)}`);
        }
        assert.ok(!text.includes('\n'), 'one line');
      }
    });
  }
});

describe('an endpoint that lies in a successful answer', () => {
  const lies: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a newline and a command in access_token', { access_token: 'a\n::error::x' }, /access_token/],
    ['%0A in token_type', { token_type: 'Bearer%0A::add-mask::x' }, /token_type/],
    ['a 150 kB access token', { access_token: 'A'.repeat(150_000) }, /access_token/],
    ['expires_in 1e13', { expires_in: 1e13 }, /expires_in/],
    ['a refresh token with a space', { refresh_token: 'r r' }, /refresh_token/],
    ['a scope with a newline', { scope: 'openid\n::warning::x' }, /scope/],
  ];
  for (const [what, set, field] of lies) {
    test(`${what}: one InvalidResponseError that names the field, nothing stored`, async () => {
      server.inject({ kind: 'tamper', set });
      const store = new MemoryTokenStore();
      const error = await failure(manager({ store }).getTokenSet());
      assert.ok(error instanceof InvalidResponseError);
      assert.match(error.message, field);
      assert.doesNotMatch(error.message, /\n/);
      assert.equal(await store.load(), undefined);
    });
  }

  test('an odd session_state is dropped, a good one kept as sessionId', async () => {
    server.inject({ kind: 'tamper', set: { session_state: 'x\n::error::y' } });
    const odd = await manager().getTokenSet();
    assert.equal(odd.sessionId, undefined);
    const good = await manager().getTokenSet();
    assert.equal(good.sessionId, server.sessionOf(good.accessToken));
  });

  test('a stored token set is validated like a response', () => {
    const base = { accessToken: 'a', expiresAt: new Date().toISOString() };
    assert.ok(TokenSet.from(base));
    assert.equal(TokenSet.from({ ...base, accessToken: 'a\nb' }), undefined);
    assert.equal(TokenSet.from({ ...base, tokenType: 'Bearer ::x' }), undefined);
  });
});

describe('what a front end is told to mask', () => {
  test('the password and the TOTP code before they are sent, the tokens before use', async () => {
    const seen: string[] = [];
    const m = new TokenManager(new PasswordAuth('bob', PASSWORD, { totpSecret: TOTP_SECRET }), {
      tokenUrl: server.tokenUrl,
      onSecret: (value) => seen.push(value),
    });
    managers.push(m);
    const before = server.requests.length;
    const tokenSet = await m.getTokenSet();
    const sent = server.requests[before]?.form ?? {};
    assert.ok(sent.totp && seen.indexOf(sent.totp) >= 0, 'the TOTP code that was sent');
    assert.ok(seen.includes(PASSWORD));
    for (const value of [tokenSet.accessToken, tokenSet.authorizationHeader]) {
      assert.ok(seen.includes(value));
    }
    assert.ok(tokenSet.refreshToken && seen.includes(tokenSet.refreshToken));
  });

  test('a rejected password is reported as such and never sent twice', async () => {
    const m = manager({}, 'wrong-password');
    const before = server.counts.password;
    await assert.rejects(m.getTokenSet(), InvalidCredentialsError);
    await assert.rejects(m.forceRefresh(), InvalidCredentialsError);
    assert.equal(server.counts.password - before, 1);
  });
});

describe('scope and the stored-session mode', () => {
  test('scope goes with every grant', async () => {
    const m = manager({ scope: 'openid offline_access' });
    const before = server.requests.length;
    await m.getTokenSet();
    await m.forceRefresh();
    const forms = server.requests.slice(before).map((r) => r.form);
    assert.deepEqual(
      forms.map((f) => [f.grant_type, f.scope]),
      [
        ['password', 'openid offline_access'],
        ['refresh_token', 'openid offline_access'],
      ],
    );
  });

  test('a stored session is refreshed but never replaced by a login', async () => {
    const store = new MemoryTokenStore();
    const first = await manager({ store }).getTokenSet();
    const carried = TokenManager.storedSession({ tokenUrl: server.tokenUrl, store });
    managers.push(carried);
    const renewed = await carried.forceRefresh();
    assert.notEqual(renewed.accessToken, first.accessToken);
    assert.equal(carried.lastGrant, 'refresh_token');
    assert.equal(carried.requestCount, 1);

    const before = server.counts.total;
    await store.save(new TokenSet({ ...renewed.toJSON(), refreshExpiresAt: new Date(0) }));
    const dead = TokenManager.storedSession({ tokenUrl: server.tokenUrl, store });
    managers.push(dead);
    const error = await failure(dead.forceRefresh());
    assert.ok(error instanceof SessionExpiredError);
    assert.match(error.message, /refresh token has expired/);
    assert.equal(server.counts.total, before, 'a refresh token known to be dead is not sent');
  });
});

describe('errors carry fields, not only words', () => {
  test('retryable: a fault that outlasted the attempts, not a refusal', async () => {
    server.inject({ kind: 'status', status: 503 });
    const fault = await failure(manager({ maxAttempts: 1 }).getTokenSet());
    assert.equal(fault.retryable, true);
    assert.equal(fault.status, 503);
    const refusal = await failure(manager({}, 'wrong-password').getTokenSet());
    assert.equal(refusal.retryable, false);
  });

  test('input: which setting is at fault, by the library name', () => {
    const bad = (options: ConstructorParameters<typeof PasswordAuth>[2]) => {
      try {
        new PasswordAuth('u', 'p', options);
      } catch (error) {
        return (error as CdseAuthError).input;
      }
      return 'no error';
    };
    assert.equal(bad({ totp: '12ab' }), 'totp');
    assert.equal(bad({ totpSecret: 'not base32 !' }), 'totpSecret');
    assert.equal(bad({ totp: '123456', totpSecret: TOTP_SECRET }), 'totpSecret');
  });

  test('a token set names its own secrets', async () => {
    const tokenSet = await manager().getTokenSet();
    assert.deepEqual(tokenSet.secrets(), [
      tokenSet.accessToken,
      `Bearer ${tokenSet.accessToken}`,
      tokenSet.refreshToken,
    ]);
  });
});
