// What the tests share, each idea once:
// - in-process steps: a runner that records what a step asks of it (the Runner seam of
//   src/action/runner.ts), and the action's steps run through it with action.yml's defaults;
// - jobs of the built dist/ (test/runner.ts) against the test identity server: a scenario per
//   test, the checks every step gets, the credentials file read and aged as time would;
// - the identity server spoken to directly (identity-server*.test.ts);
// - TokenManagers on one shared server and clock (manager*.test.ts).
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { after, before, beforeEach, type TestContext } from 'node:test';
import type { ActionDeps, Runner } from '../src/action/runner.ts';
import { PasswordAuth, TokenManager, type TokenManagerOptions } from '../src/auth/index.ts';
import { Job, type JobOptions, readActionYaml, type StepResult } from './runner.ts';
import {
  IdentityServer,
  type IdentityServerOptions,
  randomBase32Secret,
} from './servers/identity-server.ts';

/** One line the step would print, as the runner shows it. */
export interface RecordedLine {
  kind: 'info' | 'debug' | 'notice' | 'warning' | 'error' | 'group' | 'endgroup';
  text: string;
}

export class RecordingRunner implements Runner {
  readonly inputs: Record<string, string>;
  readonly state: Record<string, string>;
  readonly outputs: Record<string, string> = {};
  readonly exported: Record<string, string> = {};
  readonly paths: string[] = [];
  /** Every value registered with the masker, in order. */
  readonly secrets: string[] = [];
  readonly lines: RecordedLine[] = [];
  summary = '';
  failed = false;

  constructor(inputs: Record<string, string> = {}, state: Record<string, string> = {}) {
    this.inputs = inputs;
    this.state = state;
  }

  getInput(name: string): string {
    return (this.inputs[name] ?? '').trim();
  }
  getState(name: string): string {
    return this.state[name] ?? '';
  }
  setSecret(value: string): void {
    this.secrets.push(value);
  }
  setOutput(name: string, value: string): void {
    this.outputs[name] = value;
  }
  exportVariable(name: string, value: string): void {
    this.exported[name] = value;
  }
  addPath(dir: string): void {
    this.paths.push(dir);
  }
  saveState(name: string, value: string): void {
    this.state[name] = value;
  }
  info(text: string): void {
    this.lines.push({ kind: 'info', text });
  }
  debug(text: string): void {
    this.lines.push({ kind: 'debug', text });
  }
  notice(text: string): void {
    this.lines.push({ kind: 'notice', text });
  }
  warning(text: string): void {
    this.lines.push({ kind: 'warning', text });
  }
  setFailed(text: string): void {
    this.failed = true;
    this.lines.push({ kind: 'error', text });
  }
  startGroup(text: string): void {
    this.lines.push({ kind: 'group', text });
  }
  endGroup(): void {
    this.lines.push({ kind: 'endgroup', text: '' });
  }
  async appendSummary(markdown: string): Promise<void> {
    this.summary += markdown;
  }

  /** The texts of one kind of line. */
  said(kind: RecordedLine['kind']): string[] {
    return this.lines.filter((l) => l.kind === kind).map((l) => l.text);
  }
}

/** The step's inputs as the runner hands them over: action.yml's defaults, then `with:`. */
export async function actionInputs(given: Record<string, string>): Promise<Record<string, string>> {
  const action = await readActionYaml();
  const defaults = Object.entries(action.inputs ?? {}).flatMap(([name, spec]) =>
    spec?.default === undefined || spec.default === null ? [] : [[name, String(spec.default)]],
  );
  return { ...Object.fromEntries(defaults), ...given };
}

/** Dependencies for an in-process step: a recorder, the given environment, the real clock. */
export function stepDeps(runner: RecordingRunner, env: NodeJS.ProcessEnv = {}): ActionDeps {
  return { runner, env, now: Date.now };
}

// ---------------------------------------------------------------------------------------------
// Jobs of the built action against the test identity server

export interface Scenario {
  server: IdentityServer;
  job: Job;
  /** The inputs the test gave (without the scenario's token-url and cache). */
  inputs: Record<string, string>;
}

type ScenarioInputs =
  | Record<string, string>
  | ((server: IdentityServer) => Record<string, string> | Promise<Record<string, string>>);

/**
 * A fresh identity server and job for one test, both removed when it ends. The job logs in at
 * that server with `cache: false` unless `inputs` (given, or made from the server) say otherwise.
 */
export async function scenario(
  t: TestContext,
  serverOptions: IdentityServerOptions,
  inputs: ScenarioInputs,
  jobOptions: Omit<JobOptions, 'inputs'> = {},
): Promise<Scenario> {
  const server = await IdentityServer.start(serverOptions);
  const given = typeof inputs === 'function' ? await inputs(server) : inputs;
  const job = await Job.create({
    ...jobOptions,
    inputs: { 'token-url': server.tokenUrl, cache: 'false', ...given },
  });
  t.after(async () => {
    await job.cleanup();
    await server.close();
  });
  return { server, job, inputs: given };
}

// A login with characters that need escaping in forms, URLs and workflow commands, and a
// service account (action*.test.ts).
export const JOB_USER = 'ada@example.com';
export const JOB_PASSWORD = 'c0rrect horse%battery=staple&42';
export const ROBOT = { clientId: 'sh-robot-7', clientSecret: 'robot-secret-5f1e2d3c4b5a' };

/** The user of `loggedIn` scenarios (characters that need escaping in forms and URLs). */
export const SESSION_USER = 'lin@example.com';
export const SESSION_PASSWORD = 'p4ss word%with=odd&chars';

/** A later step's own credentials, for `cdse-auth` to log in with when the session is over. */
export const SESSION_LOGIN_ENV = { CDSE_USERNAME: SESSION_USER, CDSE_PASSWORD: SESSION_PASSWORD };

export interface LoggedIn extends Scenario {
  main: StepResult;
  /** The job's credentials file (CDSE_CREDENTIALS_FILE). */
  file: string;
}

/** A fresh server and job whose main step has logged in with the password grant. */
export async function loggedIn(
  t: TestContext,
  serverOptions: IdentityServerOptions,
  inputs: Record<string, string> = {},
): Promise<LoggedIn> {
  const started = await scenario(
    t,
    { users: [{ username: SESSION_USER, password: SESSION_PASSWORD }], ...serverOptions },
    { username: SESSION_USER, password: SESSION_PASSWORD, ...inputs },
  );
  const { server, job } = started;
  const main = await job.runMain();
  assertOk(main, 'main');
  assert.equal(server.counts.password, 1);
  assert.equal(server.counts.total, 1);
  const file = job.exportedEnv.CDSE_CREDENTIALS_FILE ?? '';
  assert.ok(file, 'main exported CDSE_CREDENTIALS_FILE');
  return { ...started, main, file };
}

/** Refresh token rotation off and on: the two ways a server may run. */
export const ROTATIONS = [false, true] as const;
export const rotationName = (rotate: boolean) => (rotate ? 'rotation on' : 'rotation off');

/** The log lines of a text, split as the runner splits them (`\r`, `\n`, `\r\n`). */
export const logLines = (text: string): string[] => text.split(/\r\n|\r|\n/).filter(Boolean);

/** Lines that start with `::error` (with or without properties), as the runner reads them. */
export const errorLines = (step: Pick<StepResult, 'stdout' | 'stderr'>): string[] =>
  logLines(`${step.stdout}\n${step.stderr}`).filter((l) => /^\s*::error[\s:]/.test(l));

/** Lines of a CLI's stderr that are not mask registrations: what a person reads in the log. */
export const saidLines = (text: string): string[] =>
  logLines(text).filter((l) => !l.startsWith('::add-mask::'));

export function describeStep(step: Pick<StepResult, 'code' | 'stdout' | 'stderr'>): string {
  return `exit ${step.code}\n--- stdout\n${step.stdout.slice(0, 3000)}\n--- stderr\n${step.stderr.slice(0, 3000)}`;
}

/** The step exited 0 and printed no `::error`. */
export function assertOk(step: StepResult, what: string): void {
  assert.equal(
    step.code,
    0,
    `${what} exited ${step.code}:\n${step.stdout}\n${step.stderr}`.slice(0, 4000),
  );
  assert.doesNotMatch(`${step.stdout}\n${step.stderr}`, /^::error/m, `${what} printed an error`);
}

export function assertNoStackTrace(step: Pick<StepResult, 'stdout' | 'stderr'>): void {
  assert.doesNotMatch(`${step.stdout}\n${step.stderr}`, /^\s+at /m, 'a stack trace was printed');
}

/** Runs the job's main step, which must exit 0. */
export async function mainOk(job: Job): Promise<StepResult> {
  const main = await job.runMain();
  assert.equal(main.code, 0, `main failed: ${describeStep(main)}`);
  return main;
}

/**
 * The step failed (exit 1) with one `cdse-auth:` line, and no token on stdout. In a workflow a
 * session that cannot be carried on says how to fix it: pass credentials, or offline_access.
 */
export function assertSessionOverLine(step: StepResult, what: string): string {
  assert.equal(step.code, 1, `${what} exited ${step.code}:\n${step.stderr}`);
  assert.equal(step.stdout, '', `${what} printed no token`);
  const lines = saidLines(step.stderr);
  assert.equal(lines.length, 1, `${what} says one line:\n${lines.join('\n')}`);
  const line = lines[0] ?? '';
  assert.match(line, /^cdse-auth: /);
  assert.match(line, /pass-credentials/);
  assert.match(line, /scope: offline_access/);
  assert.doesNotMatch(line, /^\s+at /m);
  return line;
}

/** Everything secret the server saw or issued, plus `extra` (what the job's files hold). */
export function secretsOf(server: IdentityServer, extra: Array<string | undefined> = []): string[] {
  const secrets = new Set<string>();
  for (const request of server.requests) {
    for (const field of ['password', 'totp', 'client_secret', 'refresh_token']) {
      const value = request.form[field];
      if (value) secrets.add(value);
    }
  }
  for (const value of extra) if (value) secrets.add(value);
  return [...secrets];
}

/** The environment that logs `cdse-auth` in on its own, as a `run:` step of `job` would set it. */
export const cliLogin = (server: IdentityServer, job: Job, username: string, password: string) => ({
  CDSE_USERNAME: username,
  CDSE_PASSWORD: password,
  CDSE_TOKEN_URL: server.tokenUrl,
  CDSE_CREDENTIALS_FILE: `${job.runnerTemp}/credentials.json`,
});

/** A refresh token from a password login outside the job, as a user would paste into a secret. */
export async function refreshTokenFrom(
  server: IdentityServer,
  username: string,
  password: string,
): Promise<string> {
  const response = await passwordLogin(server, username, password);
  return ((await response.json()) as { refresh_token: string }).refresh_token;
}

// ---------------------------------------------------------------------------------------------
// The credentials file a job's steps share

export interface StoredFile {
  version: number;
  tokenSet: Record<string, unknown> & {
    accessToken: string;
    refreshToken?: string;
    expiresAt: string;
    refreshExpiresAt?: string;
    sessionId?: string;
    tokenUrl?: string;
    clientId?: string;
  };
  meta?: Record<string, unknown>;
}

export const readStored = async (path: string) =>
  JSON.parse(await readFile(path, 'utf8')) as StoredFile;

/** Rewrites the credentials file as time passing would leave it; the file keeps mode 0600. */
export async function editStored(
  path: string,
  edit: (stored: StoredFile) => void,
): Promise<StoredFile> {
  const stored = await readStored(path);
  edit(stored);
  await writeFile(path, JSON.stringify(stored));
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  return stored;
}

/**
 * Moves the stored access token's expiry to `secondsLeft` from now (past by default), as if its
 * lifetime had passed. Returns the file as it was before.
 */
export const expireStoredAccess = (path: string, secondsLeft = -60) =>
  editStored(path, (s) => {
    s.tokenSet.expiresAt = new Date(Date.now() + secondsLeft * 1000).toISOString();
  });

export const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** How many requests sent this refresh token (refresh grants and logouts). */
export const sendsOf = (server: IdentityServer, refreshToken: string | undefined) =>
  server.requests.filter((r) => r.form.refresh_token === refreshToken).length;

/** Resolves once `check` holds, polling every `every` ms; fails after `ms`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 10_000,
  every = 20,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

// ---------------------------------------------------------------------------------------------
// The identity server spoken to directly

export function postForm(
  url: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, { method: 'POST', headers, body: new URLSearchParams(fields) });
}

export async function jsonOf(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

/** The body of a 200 answer. */
export async function tokensOf(
  res: Response | Promise<Response>,
): Promise<Record<string, unknown>> {
  const answer = await res;
  assert.equal(answer.status, 200);
  return jsonOf(answer);
}

/** A password grant of the public client (fields in the order a form would send them). */
export const passwordLogin = (
  server: IdentityServer,
  username: string,
  password: string,
  extra: Record<string, string> = {},
) =>
  postForm(server.tokenUrl, {
    grant_type: 'password',
    username,
    password,
    client_id: 'cdse-public',
    ...extra,
  });

export const refreshAt = (
  server: IdentityServer,
  token: unknown,
  extra: Record<string, string> = {},
) =>
  postForm(server.tokenUrl, {
    grant_type: 'refresh_token',
    refresh_token: String(token),
    client_id: 'cdse-public',
    ...extra,
  });

export const logoutAt = (server: IdentityServer, token: unknown) =>
  postForm(server.logoutUrl, { client_id: 'cdse-public', refresh_token: String(token) });

/** An error answer: its status and `error`, and `error_description` when given. */
export async function expectError(
  res: Response,
  status: number,
  error: string,
  description?: string,
): Promise<void> {
  assert.equal(res.status, status);
  const json = await jsonOf(res);
  assert.equal(json.error, error);
  if (description !== undefined) assert.equal(json.error_description, description);
}

/** An error answer that is exactly `{ error, error_description }`. */
export async function expectExactError(
  res: Response,
  status: number,
  error: string,
  description: string,
): Promise<void> {
  assert.equal(res.status, status);
  assert.deepEqual(await jsonOf(res), { error, error_description: description });
}

export function jwtPayload(token: unknown): Record<string, unknown> {
  assert.equal(typeof token, 'string');
  const parts = String(token).split('.');
  assert.equal(parts.length, 3);
  for (const part of parts) assert.match(part, /^[A-Za-z0-9_-]+$/);
  return JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8'));
}

export function basicAuth(id: string, secret: string): Record<string, string> {
  const raw = `${encodeURIComponent(id)}:${encodeURIComponent(secret)}`;
  return { authorization: `Basic ${Buffer.from(raw).toString('base64')}` };
}

/** The start of a server clock that tests move by hand. */
export const CLOCK_START = Date.UTC(2025, 0, 1, 12, 0, 10);

export interface ClockedServer {
  server: IdentityServer;
  clock: { ms: number };
}

export async function clockedServer(options: IdentityServerOptions): Promise<ClockedServer> {
  const clock = { ms: CLOCK_START };
  const server = await IdentityServer.start({ now: () => clock.ms, ...options });
  return { server, clock };
}

/** bob's TOTP secret in `realmServer` (the secret of RFC 6238's test vectors). */
export const REALM_TOTP_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

/**
 * The realm of identity-server-*.test.ts on a clock the test moves: alice (pw-alice), bob
 * (pw-bob, TOTP), and a public, a confidential and a service-account client.
 */
export const realmServer = (options: IdentityServerOptions = {}) =>
  clockedServer({
    users: [
      { username: 'alice', password: 'pw-alice' },
      { username: 'bob', password: 'pw-bob', totpSecret: REALM_TOTP_SECRET },
    ],
    clients: [
      { clientId: 'cdse-public' },
      { clientId: 'conf', clientSecret: 'conf-secret' },
      { clientId: 'sh-svc', clientSecret: 'svc-secret', serviceAccount: true },
    ],
    ...options,
  });

/** alice's password login in `realmServer`. */
export const realmLogin = (server: IdentityServer, extra: Record<string, string> = {}) =>
  passwordLogin(server, 'alice', 'pw-alice', extra);

/** A password and a client secret with everything JSON and forms escape (identity-server-odd*). */
export const ODD_PASSWORD = 'correct horse@battery "quoted" back\\slash\nline';
export const ODD_CLIENT_SECRET = 'svc "secret"\\';
/** alice's login form with ODD_PASSWORD, fields in the order the form sends them. */
export const ODD_LOGIN = {
  grant_type: 'password',
  username: 'alice',
  password: ODD_PASSWORD,
  client_id: 'cdse-public',
};

/**
 * Runs `test` against a clocked server with alice (ODD_PASSWORD), the public client and a service
 * account (ODD_CLIENT_SECRET); closes the server after.
 */
export async function withOddServer(
  options: IdentityServerOptions,
  test: (h: ClockedServer) => Promise<void>,
): Promise<void> {
  const h = await clockedServer({
    users: [{ username: 'alice', password: ODD_PASSWORD }],
    clients: [
      { clientId: 'cdse-public' },
      { clientId: 'sh-svc', clientSecret: ODD_CLIENT_SECRET, serviceAccount: true },
    ],
    ...options,
  });
  try {
    await test(h);
  } finally {
    await h.server.close();
  }
}

export const oddLogin = (server: IdentityServer, extra: Record<string, string> = {}) =>
  postForm(server.tokenUrl, { ...ODD_LOGIN, ...extra });

// ---------------------------------------------------------------------------------------------
// TokenManagers on one shared server and clock (manager*.test.ts)

export const MANAGER_PASSWORD = 'correct horse battery staple';
export const MANAGER_TOTP_SECRET = randomBase32Secret();

export interface ManagerBench {
  /** The file's server (started in `before`; its counts reset before each test). */
  readonly server: IdentityServer;
  /** One clock for the server and the managers, so tests move time instead of sleeping. */
  now(): number;
  advance(seconds: number): void;
  /** Closes `m` when the file's tests are done. */
  track(m: TokenManager): TokenManager;
  /** A manager on the file's server and clock. */
  manager(
    provider: ConstructorParameters<typeof TokenManager>[0],
    options?: TokenManagerOptions,
  ): TokenManager;
  /** alice's password login, on the file's clock. */
  alice(options?: ConstructorParameters<typeof PasswordAuth>[2]): PasswordAuth;
}

/**
 * A server for the whole file (alice; bob with TOTP; a public client, a service account and a
 * confidential app), the hooks that start, reset and close it, and managers on its clock. Tests
 * of such a file run one at a time: they read the server's counts.
 */
export function managerBench(): ManagerBench {
  let clock = Date.now();
  const now = () => clock;
  let server: IdentityServer | undefined;
  const managers: TokenManager[] = [];
  before(async () => {
    server = await IdentityServer.start({
      now,
      users: [
        { username: 'alice', password: MANAGER_PASSWORD },
        { username: 'bob', password: MANAGER_PASSWORD, totpSecret: MANAGER_TOTP_SECRET },
      ],
      clients: [
        { clientId: 'cdse-public' },
        { clientId: 'sh-robot', clientSecret: 'robot-secret', serviceAccount: true },
        { clientId: 'private-app', clientSecret: 'app-secret' },
      ],
    });
  });
  beforeEach(() => server?.resetCounts());
  after(async () => {
    await Promise.all(managers.map((m) => m.close()));
    await server?.close();
  });
  const bench: ManagerBench = {
    get server() {
      assert.ok(server, 'the server starts in before()');
      return server;
    },
    now,
    advance: (seconds) => {
      clock += seconds * 1000;
    },
    track: (m) => {
      managers.push(m);
      return m;
    },
    manager: (provider, options = {}) =>
      bench.track(new TokenManager(provider, { tokenUrl: bench.server.tokenUrl, now, ...options })),
    alice: (options = {}) => new PasswordAuth('alice', MANAGER_PASSWORD, { now, ...options }),
  };
  return bench;
}
