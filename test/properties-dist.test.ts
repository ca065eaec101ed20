// Property-based attack tests (fast-check) through the BUILT dist/: random action inputs never
// break the main step's log (exit 0, or 1 with one ::error:: line; no stray workflow command, no
// stack trace, no leak of the password). Run `npm run build` first.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { assertNoStackTrace, describeStep, errorLines, logLines } from './fixtures.ts';
import { ACTION_COMMANDS, ACTION_DIR, foreignCommands, hostileText } from './hostile.ts';
import { assertNoLeaks } from './leaks.ts';
import { Job } from './runner.ts';
import { IdentityServer } from './servers/identity-server.ts';

const USER = 'prop@example.com';
const PASSWORD = 'Pr0perty pass%word';
// What the main step may print: ACTION_COMMANDS. save-state/set-output never: file commands are
// used.

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
