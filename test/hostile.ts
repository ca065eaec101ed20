// Helpers of the attack suites (attack*.test.ts, properties*.test.ts): what the runner would read
// as a workflow command, how it unescapes command data, and every form a leaked secret can take.
// What every test shares (scenarios, log lines, step checks) is in fixtures.ts.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import fc from 'fast-check';
import {
  assertNoStackTrace,
  describeStep,
  errorLines,
  logLines,
  saidLines,
  scenario,
} from './fixtures.ts';
import { type Job, type JobOptions, REPO_ROOT, type StepResult } from './runner.ts';
import type { IdentityServer, IdentityServerOptions } from './servers/identity-server.ts';

/**
 * The action under attack: this repository's build, or another folder with action.yml and dist/
 * (CDSE_ATTACK_ACTION_DIR), e.g. a deliberately broken copy to check that the suite notices.
 */
export const ACTION_DIR = process.env.CDSE_ATTACK_ACTION_DIR || REPO_ROOT;
export const CLI = join(ACTION_DIR, 'dist', 'cli', 'index.js');

/**
 * A password with everything that escapes differently in a form (`+`, space, `@`, `%`), in JSON
 * (`"`, `\`) and outside ASCII (`ñ`). `Zebra` is a marker: no other text of a log holds it, so
 * any fragment of a half-redacted password shows.
 */
export const HOSTILE_PASSWORD = 'Zebra+fish@ocean 7%"q\\ñ-42';
export const HOSTILE_USER = 'ada@example.com';

/** The login of the attack tests that are not about the password's encodings. */
export const ATTACK_PASSWORD = 'attack-Password 9%';
export const ATTACK_USERS = { users: [{ username: HOSTILE_USER, password: ATTACK_PASSWORD }] };
export const ATTACK_LOGIN = () => ({ username: HOSTILE_USER, password: ATTACK_PASSWORD });

/** What the action may print: mask registrations, its messages and one failure. */
export const ACTION_COMMANDS = [
  'add-mask',
  'debug',
  'notice',
  'warning',
  'error',
  'group',
  'endgroup',
];

/**
 * The runner's unescaping of command data (actions/runner StringEscapingUtil.UnescapeData):
 * ordinal, case-sensitive replacements in this order.
 */
export const runnerUnescape = (data: string): string =>
  data.split('%0D').join('\r').split('%0A').join('\n').split('%25').join('%');

/**
 * The command the runner would execute for one log line, if any: `::name ...::data` after
 * leading whitespace (ActionCommand.TryParseV2), or the legacy `##[name ...]data` anywhere in the
 * line (ActionCommand.TryParse).
 */
export function workflowCommand(line: string): string | undefined {
  const v2 = /^\s*::([^\s:]*)/.exec(line);
  if (v2) return v2[1] ?? '';
  const v1 = /##\[([^\s\]]*)/.exec(line);
  if (v1) return `##[${v1[1] ?? ''}`;
  return undefined;
}

/** Every command line in `text` whose command is not in `allowed`. */
export function foreignCommands(text: string, allowed: readonly string[]): string[] {
  return logLines(text).filter((line) => {
    const command = workflowCommand(line);
    return command !== undefined && !allowed.includes(command);
  });
}

export function assertOnlyCommands(step: StepResult, allowed: readonly string[]): void {
  for (const [name, text] of [
    ['stdout', step.stdout],
    ['stderr', step.stderr],
  ] as const) {
    const foreign = foreignCommands(text, allowed);
    assert.deepEqual(foreign, [], `${name} has workflow commands other than ${allowed.join(', ')}`);
  }
}

/** The message of a `::error::` line as the runner shows it. */
export const errorMessage = (line: string): string =>
  runnerUnescape(line.replace(/^\s*::error[^:]*::/, ''));

const lowerHex = (s: string) => s.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase());
const unicodeAll = (s: string) =>
  [...s].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');

/**
 * The forms a password takes on the wire and in an echo: raw, `encodeURIComponent`, form-encoded
 * (`+` for space), JSON string contents (plain and with `\uXXXX` for non-ASCII), every character
 * as `\uXXXX`; percent forms in both hex cases.
 */
export function passwordForms(secret: string): string[] {
  const form = new URLSearchParams({ s: secret }).toString().slice(2);
  const json = JSON.stringify(secret).slice(1, -1);
  const asciiJson = json.replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  const encoded = [encodeURIComponent(secret), form];
  return [
    ...new Set([secret, json, asciiJson, unicodeAll(secret), ...encoded, ...encoded.map(lowerHex)]),
  ];
}

/**
 * The first line of `text` (mask registrations aside) holding the password in any form, or the
 * `Zebra` marker of `HOSTILE_PASSWORD`; `undefined` when there is none.
 */
export function rawLeak(text: string, secret: string, marker?: string): string | undefined {
  const forms = passwordForms(secret);
  return logLines(text).find(
    (line) =>
      !line.startsWith('::add-mask::') &&
      (forms.some((f) => line.includes(f)) || (marker !== undefined && line.includes(marker))),
  );
}

/**
 * A fresh identity server and job for one test (fixtures.ts `scenario`), running the action
 * under attack.
 */
export const attackScenario = (
  t: TestContext,
  serverOptions: IdentityServerOptions,
  inputs: (server: IdentityServer) => Record<string, string>,
  jobOptions: Omit<JobOptions, 'inputs'> = {},
) => scenario(t, serverOptions, inputs, { actionDir: ACTION_DIR, ...jobOptions });

/** The CLI as a later `run:` step of `job` (GITHUB_ACTIONS=true), with `env` on top. */
export const cliStep = (job: Job, args: string[], env: Record<string, string> = {}) =>
  job.runStep(process.execPath, [CLI, ...args], env);

/** A later `cdse-auth` step refused the answer: one `cdse-auth:` line, nothing else said. */
export function assertCliRefused(step: StepResult, field: string): void {
  assert.equal(step.code, 1, describeStep(step));
  assert.equal(step.stdout, '', 'nothing on stdout');
  const said = saidLines(step.stderr);
  assert.equal(said.length, 1, `one line besides masks:\n${step.stderr}`);
  assert.match(said[0] ?? '', /^cdse-auth: /);
  assert.ok(said[0]?.includes(field), `names ${field}: ${said[0]}`);
  assertOnlyCommands(step, ['add-mask']);
  assertNoStackTrace(step);
}

/** The main step failed with one `::error::` line naming `field`, and exported nothing. */
export function assertMainRefused(main: StepResult, field: RegExp | string): void {
  assert.equal(main.code, 1, describeStep(main));
  const errors = errorLines(main);
  assert.equal(errors.length, 1, `one error line:\n${describeStep(main)}`);
  const message = errorMessage(errors[0] ?? '');
  if (typeof field === 'string') assert.ok(message.includes(field), `names ${field}: ${message}`);
  else assert.match(message, field);
  assert.doesNotMatch(message, /failed unexpectedly/);
  assert.deepEqual(main.outputs, {}, 'no outputs');
  assert.deepEqual(main.env, {}, 'nothing exported to GITHUB_ENV');
  assert.deepEqual(main.path, [], 'nothing added to PATH');
  assertOnlyCommands(main, ACTION_COMMANDS);
  assertNoStackTrace(main);
}

// Arbitraries of the property tests (properties*.test.ts)

/** Pieces the runner and the redaction care about. */
export const HOSTILE_PIECES = [
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
export const hostilePiece = fc.constantFrom(...HOSTILE_PIECES);

/** Text mixing unicode, binary-ish code points and the hostile pieces above. */
export const hostileText = (maxLength = 40) =>
  fc.oneof(
    fc.string({ unit: 'grapheme', maxLength }),
    fc.string({ unit: 'binary', maxLength }),
    fc.array(hostilePiece, { maxLength }).map((a) => a.join('')),
    fc
      .array(fc.oneof(hostilePiece, fc.string({ unit: 'binary', maxLength: 4 })), { maxLength })
      .map((a) => a.join('')),
  );
