// Property-based attack tests (fast-check): server text and log lines can never become workflow
// commands, redaction catches every form of a secret, mask commands round-trip through the
// runner's unescaping, any token answer is either a clean token set or a one-line CdseAuthError,
// and random action inputs never break the main step's log (run against the BUILT dist/).
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
import { oneLine, redactor, serverText } from '../src/auth/redact.ts';
import { commandLine } from '../src/front/masks.ts';
import {
  ACTION_DIR,
  assertNoStackTrace,
  describeStep,
  errorLines,
  foreignCommands,
  logLines,
  runnerUnescape,
  workflowCommand,
} from './hostile.ts';
import { assertNoLeaks } from './leaks.ts';
import { Job } from './runner.ts';
import { IdentityServer } from './servers/identity-server.ts';

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** Pieces the runner and the redaction care about. */
const HOSTILE_PIECES = [
  '\n',
  '\r',
  '\r\n',
  '%',
  ':',
  '#',
  '[',
  ']',
  '0A',
  '0D',
  '25',
  '::',
  '##[',
  '%0A',
  '%0D',
  '%25',
  '::error::',
  '::add-mask::',
  '##[error]',
  ' ',
  '\t',
  '\0',
  '\u001b[31m',
  '\u0085',
  '\u2028',
  'é',
  'ñ',
  '💥',
  '\ufeff',
  '*',
  '+',
  '@',
  '"',
  '\\',
  'Bearer ',
];
const hostilePiece = fc.constantFrom(...HOSTILE_PIECES);

/** Text mixing unicode, binary-ish code points and the hostile pieces above. */
const hostileText = (maxLength = 40) =>
  fc.oneof(
    fc.string({ unit: 'grapheme', maxLength }),
    fc.string({ unit: 'binary', maxLength }),
    fc.array(hostilePiece, { maxLength }).map((a) => a.join('')),
    fc
      .array(fc.oneof(hostilePiece, fc.string({ unit: 'binary', maxLength: 4 })), { maxLength })
      .map((a) => a.join('')),
  );

// ---------------------------------------------------------------------------------------------
// In-process: one-line text, redaction, mask commands

const PRINTABLE_LINE = /^[\x20-\x7e]*$/;

function assertHarmlessLine(line: string, max: number): void {
  assert.match(line, PRINTABLE_LINE, 'printable ASCII, no control character');
  assert.ok(!line.includes('::'), `no :: in ${JSON.stringify(line)}`);
  assert.ok(!line.includes('##['), `no ##[ in ${JSON.stringify(line)}`);
  assert.ok(line.length <= max + 3, `at most ${max} characters and "...": ${line.length}`);
  assert.equal(workflowCommand(line), undefined);
}

describe('server text becomes one harmless line', () => {
  test('oneLine: printable, no ::, no ##[, bounded', () => {
    fc.assert(
      fc.property(
        fc.oneof(hostileText(), hostileText(400)),
        fc.option(fc.integer({ min: 1, max: 500 }), { nil: undefined }),
        (text, max) => {
          assertHarmlessLine(oneLine(text, max), max ?? 2000);
        },
      ),
      { numRuns: 3000 },
    );
  });

  test('oneLine on large text stays bounded', () => {
    fc.assert(
      fc.property(hostileText(), fc.integer({ min: 1, max: 5000 }), (unit, times) => {
        assertHarmlessLine(oneLine(unit.repeat(times)), 2000);
      }),
      { numRuns: 100 },
    );
  });

  test('serverText: undefined or one harmless line of at most 200 characters', () => {
    const redact = redactor(() => ['s3cr3t-value']);
    fc.assert(
      fc.property(fc.option(hostileText(300), { nil: undefined }), (text) => {
        const out = serverText(text, redact);
        if (out === undefined) return;
        assert.ok(out.length > 0);
        assertHarmlessLine(out, 200);
      }),
      { numRuns: 3000 },
    );
  });
});

/** The forms a secret is embedded in, each with the text that must be gone afterwards. */
const EMBEDDINGS: Array<[name: string, embed: (s: string) => string, gone: (s: string) => string]> =
  [
    ['raw', (s) => s, (s) => s],
    ['encodeURIComponent', encodeURIComponent, encodeURIComponent],
    [
      'form-encoded',
      (s) => new URLSearchParams({ s }).toString().slice(2),
      (s) => new URLSearchParams({ s }).toString().slice(2),
    ],
    ['JSON.stringify', (s) => JSON.stringify(s), (s) => JSON.stringify(s).slice(1, -1)],
    [
      'JSON.stringify of the form body',
      (s) =>
        JSON.stringify(
          `grant_type=password&password=${new URLSearchParams({ s }).toString().slice(2)}`,
        ),
      (s) => new URLSearchParams({ s }).toString().slice(2),
    ],
  ];

/** Secrets of at least 4 UTF-16 units. */
const secretArb = fc
  .oneof(
    fc.string({ unit: 'binary', minLength: 4, maxLength: 24 }),
    fc.string({ unit: 'grapheme', minLength: 4, maxLength: 24 }),
    fc.array(hostilePiece, { minLength: 4, maxLength: 12 }).map((a) => a.join('')),
  )
  .filter((s) => s.length >= 4);

describe('redaction', () => {
  for (const [name, embed, gone] of EMBEDDINGS) {
    test(`redactor removes a secret embedded ${name} in arbitrary text`, () => {
      fc.assert(
        fc.property(
          // A secret with `*` can be rebuilt by the `***` marker itself: see the next test.
          secretArb.filter((s) => !s.includes('*')),
          hostileText(),
          hostileText(),
          (secret, before, after) => {
            const out = redactor(() => [secret])(`${before}${embed(secret)}${after}`);
            assert.ok(!out.includes(gone(secret)), `${JSON.stringify(out)} still holds it`);
          },
        ),
        { numRuns: 1500 },
      );
    });
  }

  // e.g. secret `x***` in the text `xx***`: redacting gives `x***`, the secret again.
  test('redactor removes a secret that contains `***` (the marker cannot rebuild it)', () => {
    const star = fc.string({ unit: fc.constantFrom('*', 'a', 'b'), maxLength: 6 });
    fc.assert(
      fc.property(
        star.filter((s) => s.length >= 4),
        star,
        star,
        (secret, before, after) => {
          const out = redactor(() => [secret])(`${before}${secret}${after}`);
          assert.ok(!out.includes(secret), `${JSON.stringify(out)} still holds it`);
        },
      ),
      { numRuns: 1500 },
    );
  });

  test('several secrets at once, each in any form', () => {
    fc.assert(
      fc.property(
        fc.array(
          secretArb.filter((s) => !s.includes('*')),
          { minLength: 1, maxLength: 4 },
        ),
        fc.array(fc.tuple(fc.nat(), fc.nat(EMBEDDINGS.length - 1), hostileText(8))),
        (secrets, parts) => {
          const text = parts
            .map(([which, how, filler]) => {
              const secret = secrets[which % secrets.length] as string;
              return `${filler}${(EMBEDDINGS[how] as (typeof EMBEDDINGS)[number])[1](secret)}`;
            })
            .join('');
          const out = redactor(() => secrets)(text);
          for (const secret of secrets) {
            for (const [, , gone] of EMBEDDINGS) {
              assert.ok(!out.includes(gone(secret)), `${JSON.stringify(out)} holds a secret`);
            }
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('mask commands', () => {
  test('commandLine(add-mask, v) is one line the runner unescapes back to exactly v', () => {
    fc.assert(
      fc.property(fc.oneof(hostileText(), hostileText(300)), (value) => {
        const line = commandLine('add-mask', value);
        assert.ok(!/[\r\n]/.test(line), 'one line');
        assert.ok(line.startsWith('::add-mask::'));
        assert.equal(workflowCommand(line), 'add-mask');
        // The runner's V2 parser: the data is everything after the second `::`.
        const data = line.slice(line.indexOf('::', 2) + 2);
        assert.equal(runnerUnescape(data), value);
      }),
      { numRuns: 3000 },
    );
  });

  test('the unescape order matters: %250A stays a literal %0A', () => {
    assert.equal(runnerUnescape(commandLine('add-mask', '%0A').slice(12)), '%0A');
    assert.equal(runnerUnescape(commandLine('add-mask', '%\n').slice(12)), '%\n');
    assert.equal(runnerUnescape('%250D%0D'), '%0D\r');
  });
});

// ---------------------------------------------------------------------------------------------
// In-process against a live identity server: any token answer

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

// ---------------------------------------------------------------------------------------------
// Through dist/: random action inputs

const USER = 'prop@example.com';
const PASSWORD = 'Pr0perty pass%word';
/** What the main step may print. save-state/set-output never: file commands are used. */
const ACTION_COMMANDS = ['add-mask', 'error', 'warning', 'notice', 'debug', 'group', 'endgroup'];

/** Up to ~100 kB (UTF-8) of hostile text, no NUL (an environment variable cannot hold one). */
const inputText = fc
  .oneof(
    { weight: 4, arbitrary: hostileText(60) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(hostileText(12), fc.integer({ min: 100, max: 8_000 }))
        .map(([unit, n]) => unit.repeat(n)),
    },
  )
  .map((s) => {
    let text = s.replace(/\0/g, '');
    while (Buffer.byteLength(text) > 100_000) text = text.slice(0, Math.floor(text.length * 0.9));
    return text;
  });

describe('random action inputs through dist/', () => {
  test('main exits 0, or 1 with one ::error:: line; no stray command, no leak', async (t) => {
    const server = await IdentityServer.start({
      users: [{ username: USER, password: PASSWORD }],
      maxSessionsPerUser: 1_000_000,
    });
    t.after(() => server.close());
    // Mostly valid values, so that runs get past the input checks to the server.
    const pick = (valid: fc.Arbitrary<string>) =>
      fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: inputText });
    const valid = {
      username: USER,
      password: PASSWORD,
      'token-url': server.tokenUrl,
      'client-id': 'cdse-public',
      grant: 'auto',
      timeout: '30',
      scope: '',
    };
    const inputsArb = fc.record({
      username: pick(fc.constant(USER)),
      password: pick(fc.constant(PASSWORD)),
      'token-url': pick(
        fc.oneof(
          fc.constant(server.tokenUrl),
          inputText.map((s) => `${server.tokenUrl}${s}`),
        ),
      ),
      'client-id': pick(fc.constant('cdse-public')),
      grant: pick(fc.constantFrom('auto', 'password', 'refresh-token', 'client-credentials')),
      timeout: pick(fc.constantFrom('30', '1', '600', '0', '-1', '1e3', '30s')),
      scope: pick(fc.constantFrom('', 'openid', 'openid offline_access')),
    });
    await fc.assert(
      fc.asyncProperty(inputsArb, async (inputs) => {
        const job = await Job.create({
          actionDir: ACTION_DIR,
          inputs: { ...inputs, cache: 'false', 'max-attempts': '1' },
        });
        try {
          const main = await job.runMain();
          const errors = errorLines(main);
          if (main.code === 0) {
            assert.deepEqual(errors, [], describeStep(main));
          } else {
            assert.equal(main.code, 1, describeStep(main));
            assert.equal(errors.length, 1, describeStep(main));
          }
          assertNoStackTrace(main);
          for (const text of [main.stdout, main.stderr]) {
            assert.deepEqual(foreignCommands(text, ACTION_COMMANDS), [], describeStep(main));
            assert.ok(
              !logLines(text).some((l) => /^\s*::(save-state|set-output|set-env)\b/.test(l)),
            );
          }
          // core.getInput trims; the action masks the value and each of its lines.
          const password = inputs.password.trim();
          const secrets = [password, ...password.split(/\r?\n/).map((l) => l.trim())].filter(
            (s) => s.length >= 4,
          );
          if (secrets.length > 0) {
            assertNoLeaks(job.logs, job.summary, secrets, { state: [job.stateText] });
          }
        } finally {
          await job.cleanup();
          server.endAllSessions();
        }
      }),
      // The valid inputs as a fixed first example: the success path is always covered.
      { numRuns: 25, examples: [[valid]] },
    );
    assert.ok(server.counts.password >= 1, 'at least one run logged in');
  });
});
