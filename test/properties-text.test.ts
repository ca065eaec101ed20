// Property-based attack tests (fast-check), in-process on text: server text becomes one harmless
// line, redaction catches every form of a secret, and mask commands round-trip through the
// runner's unescaping.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { oneLine, redactor, serverText } from '../src/auth/redact.ts';
import { commandLine } from '../src/front/masks.ts';
import { hostilePiece, hostileText, runnerUnescape, workflowCommand } from './hostile.ts';

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
