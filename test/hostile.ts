// Helpers of the attack suites (attack*.test.ts, properties.test.ts): what the runner would read
// as a workflow command, how it unescapes command data, and every form a leaked secret can take.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Job, type JobOptions, REPO_ROOT, type StepResult } from './runner.ts';
import { IdentityServer, type IdentityServerOptions } from './servers/identity-server.ts';

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

/** The log lines of a text, split as the runner splits them (`\r`, `\n`, `\r\n`). */
export const logLines = (text: string): string[] => text.split(/\r\n|\r|\n/).filter(Boolean);

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

export function assertNoStackTrace(step: Pick<StepResult, 'stdout' | 'stderr'>): void {
  assert.doesNotMatch(`${step.stdout}\n${step.stderr}`, /^\s+at /m, 'a stack trace was printed');
}

/** Lines that start with `::error` (with or without properties). */
export const errorLines = (step: Pick<StepResult, 'stdout' | 'stderr'>): string[] =>
  logLines(`${step.stdout}\n${step.stderr}`).filter((l) => /^\s*::error[\s:]/.test(l));

/** The message of a `::error::` line as the runner shows it. */
export const errorMessage = (line: string): string =>
  runnerUnescape(line.replace(/^\s*::error[^:]*::/, ''));

/** stderr lines of the CLI that are not mask registrations. */
export const saidLines = (text: string): string[] =>
  logLines(text).filter((l) => !l.startsWith('::add-mask::'));

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

export interface Scenario {
  server: IdentityServer;
  job: Job;
}

/** A fresh identity server and job for one test, both removed when it ends. */
export async function scenario(
  t: TestContext,
  serverOptions: IdentityServerOptions,
  inputs: (server: IdentityServer) => Record<string, string>,
  jobOptions: Omit<JobOptions, 'inputs'> = {},
): Promise<Scenario> {
  const server = await IdentityServer.start(serverOptions);
  const job = await Job.create({
    actionDir: ACTION_DIR,
    ...jobOptions,
    inputs: { 'token-url': server.tokenUrl, cache: 'false', ...inputs(server) },
  });
  t.after(async () => {
    await job.cleanup();
    await server.close();
  });
  return { server, job };
}

/** The CLI as a later `run:` step of `job` (GITHUB_ACTIONS=true), with `env` on top. */
export const cliStep = (job: Job, args: string[], env: Record<string, string> = {}) =>
  job.runStep(process.execPath, [CLI, ...args], env);

export function describeStep(step: StepResult): string {
  return `exit ${step.code}\n--- stdout\n${step.stdout.slice(0, 3000)}\n--- stderr\n${step.stderr.slice(0, 3000)}`;
}
