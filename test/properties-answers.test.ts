// Property-based attack tests (fast-check), in-process against a live identity server: any
// token answer, however tampered, gives a TokenManager either a clean token set or one
// CdseAuthError line.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  CdseAuthError,
  MAX_TOKEN_LENGTH,
  MemoryTokenStore,
  PasswordAuth,
  TokenManager,
} from '../src/auth/index.ts';
import { hostileText } from './hostile.ts';
import { IdentityServer } from './servers/identity-server.ts';

const FIELDS = [
  'access_token',
  'token_type',
  'expires_in',
  'refresh_token',
  'refresh_expires_in',
  'scope',
  'session_state',
] as const;

const jsonish: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    1e308,
    -1,
    0,
    -0,
    0.5,
    1e-300,
    1e13,
    Number.MAX_SAFE_INTEGER,
    315_360_000,
    315_360_001,
    'NaN',
    'Infinity',
    '-1',
    '1e999',
    ' 300 ',
    '0x10',
    '',
    true,
    null,
    [],
    [300],
    {},
    'Bearer',
    'bearer',
    'Bearer\n::error::x',
    '::error::x',
    '##[error]x',
    'a b',
    'ey.J\u00e9',
    undefined,
  ),
  hostileText(30),
  fc
    .tuple(fc.constantFrom('A', '::', '%0A', 'é'), fc.integer({ min: 1, max: 200_000 }))
    .map(([unit, n]) => unit.repeat(n)),
);

/** Raw JSON number texts JSON.stringify cannot make. */
const rawNumber = fc.constantFrom('1e999', '-1e999', '-0', '1E400', '0.0000', '"\\ud800"', 'NaN');

const tamperArb = fc.record(
  {
    set: fc.dictionary(fc.constantFrom(...FIELDS), jsonish, { maxKeys: 4 }),
    raw: fc.dictionary(fc.constantFrom(...FIELDS), rawNumber, { maxKeys: 1 }),
  },
  { requiredKeys: ['set'] },
);

const VISIBLE_TOKEN = /^[\x21-\x7e]+$/;

describe('any token answer: a clean token set or one CdseAuthError line', () => {
  test('TokenManager.getTokenSet against tampered answers', async (t) => {
    const server = await IdentityServer.start({
      users: [{ username: 'alice', password: 'pw-Prop3rty' }],
      maxSessionsPerUser: 1_000_000,
    });
    t.after(() => server.close());
    await fc.assert(
      fc.asyncProperty(tamperArb, fc.boolean(), async ({ set, raw }, refresh) => {
        const store = new MemoryTokenStore();
        const manager = new TokenManager(new PasswordAuth('alice', 'pw-Prop3rty'), {
          tokenUrl: server.tokenUrl,
          store,
          maxAttempts: 1,
        });
        try {
          // With `refresh`, a good login first: the tampered answer is then a refresh's.
          if (refresh) await manager.getTokenSet();
          server.inject({
            kind: 'tamper',
            on: refresh ? 'refresh_token' : 'password',
            set,
            ...(raw && { raw }),
          });
          let outcome: unknown;
          try {
            outcome = await (refresh ? manager.forceRefresh() : manager.getTokenSet());
          } catch (error) {
            assert.ok(
              error instanceof CdseAuthError,
              `not a CdseAuthError: ${String((error as Error)?.stack ?? error).slice(0, 500)}`,
            );
            assert.ok(!/[\r\n]/.test(error.message), 'one line');
            assert.ok(error.message.length < 1000, 'short');
            assert.doesNotMatch(error.message, /::|##\[/);
            return;
          }
          const ts = outcome as Awaited<ReturnType<TokenManager['getTokenSet']>>;
          for (const token of [ts.accessToken, ts.refreshToken]) {
            if (token === undefined) continue;
            assert.match(token, VISIBLE_TOKEN, 'visible ASCII without whitespace');
            assert.ok(token.length <= MAX_TOKEN_LENGTH, 'at most 16 KiB');
          }
          assert.ok(ts.accessToken.length > 0);
          assert.match(ts.authorizationHeader, /^[\x21-\x7e]+ [\x21-\x7e]+$/);
          assert.ok(Number.isFinite(ts.expiresAt.getTime()), 'a real expiry');
          if (ts.refreshExpiresAt) assert.ok(Number.isFinite(ts.refreshExpiresAt.getTime()));
          assert.ok(!/[\r\n]/.test(JSON.stringify(ts)), 'serialises on one line');
        } finally {
          await manager.close();
          server.endAllSessions();
        }
      }),
      { numRuns: 250 },
    );
  });
});
