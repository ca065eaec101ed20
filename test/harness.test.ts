// The test harness itself: test/runner.ts reads file commands as the runner does, and
// test/leaks.ts follows the runner's masking when it scans a log for secrets.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertNoLeaks } from './leaks.ts';
import { parseFileCommands } from './runner.ts';

describe('the harness itself', () => {
  test('parseFileCommands reads both formats; a later entry wins', () => {
    const text = [
      'plain=a=b',
      'multi<<ghadelimiter_1',
      'line 1',
      'line 2',
      'ghadelimiter_1',
      'plain=again',
      'empty<<EOF',
      'EOF',
      '',
    ].join('\n');
    assert.deepEqual(parseFileCommands(text), {
      plain: 'again',
      multi: 'line 1\nline 2',
      empty: '',
    });
    assert.throws(() => parseFileCommands('x<<EOF\nno end\n'), /missing delimiter/);
  });

  test('the leak scanner follows the runner: masked from registration on, never in files', () => {
    const secret = 's3cret-Value!';
    assert.doesNotThrow(() =>
      assertNoLeaks([`::add-mask::${secret}`, `uses ${secret} here`], 'summary', [secret]),
    );
    // Shown before it was registered, in another encoding, or masked only inside a longer value.
    assert.throws(() => assertNoLeaks([`early ${secret}`, `::add-mask::${secret}`], '', [secret]));
    const b64 = Buffer.from(`user:${secret}`).toString('base64');
    assert.throws(() => assertNoLeaks([`Authorization: Basic ${b64}`], '', [secret]));
    assert.throws(() => assertNoLeaks([`::add-mask::Bearer ${secret}`, secret], '', [secret]));
    // Escaped command data is unescaped, and a multi-line value masked line by line.
    assert.doesNotThrow(() =>
      assertNoLeaks(['::add-mask::p%25ss%0Aword', 'p%ss', 'word'], '', ['p%ss', 'word']),
    );
    assert.throws(() => assertNoLeaks([`::add-mask::${secret}`], `| ${secret} |`, [secret]));
    assert.throws(() => assertNoLeaks([], '', [secret], { state: [`dir=${secret}`] }));
    assert.throws(() => assertNoLeaks([], '', [secret], { cacheKeys: [`k-${secret}`] }));
  });
});
