// Attack suite, hostile and oversized answers: error bodies of megabytes full of `::error::`,
// `##[` and `%0A`, tokens of 150 kB, expiries out of range; the BUILT action's main step and
// `cdse-auth` each say one short, harmless line. Run `npm run build` first.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cliLogin, errorLines, logLines, saidLines } from './fixtures.ts';
import {
  ATTACK_LOGIN,
  ATTACK_PASSWORD,
  ATTACK_USERS,
  assertCliRefused,
  assertMainRefused,
  attackScenario,
  cliStep,
  errorMessage,
  HOSTILE_USER,
} from './hostile.ts';
import type { Fault } from './servers/identity-server.ts';

describe('a hostile error answer', { concurrency: 4 }, () => {
  const bodies: Array<{ name: string; json: Record<string, string> }> = [
    {
      // Larger than the 1 MiB the client reads: the body is cut, so it is not JSON any more.
      name: '3 MB error_description with ##[error] and %0A, error with \\n::error::',
      json: { error: 'x\n::error::y', error_description: `##[error]z%0A${'M'.repeat(3 << 20)}` },
    },
    {
      name: '64 kB error_description that parses, with newlines, ::, ##[ and %0A',
      json: {
        error: 'invalid_grant\r\n::error title=E::forged',
        error_description: `line1\n::warning::w\n##[group]g%0A::add-mask::Bearer ${'D'.repeat(64 << 10)}`,
      },
    },
    {
      name: 'message (gateway form) with ::error:: at the start',
      json: { message: '::error::gateway\n##[error]again' } as Record<string, string>,
    },
  ];

  for (const body of bodies) {
    test(`main step: ${body.name}`, async (t) => {
      const { server, job } = await attackScenario(t, ATTACK_USERS, ATTACK_LOGIN);
      server.inject({ kind: 'status', status: 400, json: body.json, on: 'password' });
      const main = await job.runMain();
      assertMainRefused(main, /HTTP 400/);
      const line = errorLines(main)[0] ?? '';
      assert.ok(line.length < 1000, `bounded: ${line.length} chars`);
      const message = errorMessage(line);
      assert.doesNotMatch(message, /::|##\[|[\r\n]/, `one harmless line: ${message}`);
      for (const l of logLines(`${main.stdout}\n${main.stderr}`)) {
        assert.ok(!l.includes('##['), `no ##[ in ${l.slice(0, 200)}`);
      }
      assert.ok(main.stdout.length + main.stderr.length < 20_000, 'the log stays small');
    });

    test(`cdse-auth: ${body.name}`, async (t) => {
      const { server, job } = await attackScenario(t, ATTACK_USERS, ATTACK_LOGIN);
      server.inject({ kind: 'status', status: 400, json: body.json, on: 'password' });
      const step = await cliStep(
        job,
        ['token'],
        cliLogin(server, job, HOSTILE_USER, ATTACK_PASSWORD),
      );
      assertCliRefused(step, 'HTTP 400');
      const said = saidLines(step.stderr)[0] ?? '';
      assert.ok(said.length < 1000, `bounded: ${said.length} chars`);
      assert.doesNotMatch(said.replace(/^cdse-auth: /, ''), /::|##\[/);
    });
  }
});

describe('oversized and out-of-range answers', { concurrency: 4 }, () => {
  const cases: Array<{ name: string; fault: Fault; field: string }> = [
    {
      name: 'a 150 kB access_token',
      fault: { kind: 'tamper', on: 'password', set: { access_token: 'A'.repeat(150_000) } },
      field: 'access_token',
    },
    {
      name: 'expires_in 1e13',
      fault: { kind: 'tamper', on: 'password', set: { expires_in: 1e13 } },
      field: 'expires_in',
    },
    {
      name: 'expires_in 1e999 (Infinity)',
      fault: { kind: 'tamper', on: 'password', raw: { expires_in: '1e999' } },
      field: 'expires_in',
    },
    {
      name: 'refresh_expires_in -1',
      fault: { kind: 'tamper', on: 'password', set: { refresh_expires_in: -1 } },
      field: 'refresh_expires_in',
    },
  ];
  for (const c of cases) {
    test(`main step: ${c.name}`, async (t) => {
      const { server, job } = await attackScenario(t, ATTACK_USERS, ATTACK_LOGIN);
      server.inject(c.fault);
      const main = await job.runMain();
      assertMainRefused(main, c.field);
      const message = errorMessage(errorLines(main)[0] ?? '');
      assert.ok(message.length < 1000, `one short line: ${message.length} chars`);
      // Not a raw validation dump.
      assert.doesNotMatch(message, /too_big|"code"|\[\s*\{|invalid_type|Infinity/);
    });

    test(`cdse-auth: ${c.name}`, async (t) => {
      const { server, job } = await attackScenario(t, ATTACK_USERS, ATTACK_LOGIN);
      server.inject(c.fault);
      const step = await cliStep(
        job,
        ['token'],
        cliLogin(server, job, HOSTILE_USER, ATTACK_PASSWORD),
      );
      assertCliRefused(step, c.field);
      assert.doesNotMatch(step.stderr, /unexpected|too_big|"code"/);
    });
  }
});
