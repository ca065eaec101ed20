// The action as GitHub's runner runs it: `node dist/main/index.js`, later `run:` steps, then
// `node dist/post/index.js`, each a child process against the test identity server.
// Run `node scripts/build.ts` after changing src/: these tests run the bundles.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, parse, sep } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { assertNoLeaks } from './leaks.ts';
import { Job, type JobOptions, parseFileCommands, REPO_ROOT, type StepResult } from './runner.ts';
import {
  IdentityServer,
  type IdentityServerOptions,
  randomBase32Secret,
  totpCode,
} from './servers/identity-server.ts';

// Characters that need escaping in forms, URLs and workflow commands.
const USER = 'ada@example.com';
const PASSWORD = 'c0rrect horse%battery=staple&42';
const ROBOT = { clientId: 'sh-robot-7', clientSecret: 'robot-secret-5f1e2d3c4b5a' };
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

interface Scenario {
  server: IdentityServer;
  job: Job;
}

/** A fresh identity server and job, both removed when the test ends. */
async function scenario(
  t: TestContext,
  serverOptions: IdentityServerOptions,
  inputs: Record<string, string>,
  jobOptions: Omit<JobOptions, 'inputs'> = {},
): Promise<Scenario> {
  const server = await IdentityServer.start(serverOptions);
  const job = await Job.create({
    ...jobOptions,
    inputs: { 'token-url': server.tokenUrl, cache: 'false', ...inputs },
  });
  t.after(async () => {
    await job.cleanup();
    await server.close();
  });
  return { server, job };
}

const errorLines = (step: StepResult) =>
  `${step.stdout}\n${step.stderr}`.split(/\r?\n/).filter((l) => l.startsWith('::error'));

function assertOk(step: StepResult, what: string): void {
  assert.equal(
    step.code,
    0,
    `${what} exited ${step.code}:\n${step.stdout}\n${step.stderr}`.slice(0, 4000),
  );
  assert.deepEqual(errorLines(step), [], `${what} printed an error`);
}

function assertNoStackTrace(step: StepResult): void {
  assert.doesNotMatch(`${step.stdout}\n${step.stderr}`, /^\s{4}at /m, 'a stack trace was printed');
}

/** Everything secret the server saw or issued, plus what the job's files hold. */
function secretsOf(server: IdentityServer, extra: Array<string | undefined> = []): string[] {
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

interface StoredFile {
  version: number;
  tokenSet: {
    accessToken: string;
    refreshToken?: string;
    expiresAt: string;
    tokenUrl?: string;
    clientId?: string;
  };
}
const readStored = async (path: string) => JSON.parse(await readFile(path, 'utf8')) as StoredFile;

/** Moves the stored access token's expiry into the past, as if its lifetime had passed. */
async function expireStoredAccessToken(path: string): Promise<void> {
  const stored = await readStored(path);
  stored.tokenSet.expiresAt = new Date(Date.now() - 60_000).toISOString();
  await writeFile(path, JSON.stringify(stored));
  assert.equal((await stat(path)).mode & 0o777, 0o600);
}

/** A refresh token from a direct password login at the server (for the refresh-token grant). */
async function refreshTokenFrom(server: IdentityServer): Promise<string> {
  const response = await fetch(server.tokenUrl, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'password',
      client_id: 'cdse-public',
      username: USER,
      password: PASSWORD,
    }),
  });
  const body = (await response.json()) as { refresh_token: string };
  assert.ok(body.refresh_token);
  server.resetCounts();
  return body.refresh_token;
}

interface GrantCase {
  name: string;
  grant: 'password' | 'refresh_token' | 'client_credentials';
  /** What the job summary calls the grant. */
  summary: RegExp;
  server: () => IdentityServerOptions;
  inputs: (server: IdentityServer) => Promise<Record<string, string>> | Record<string, string>;
  /** Fields of the one token request main makes. */
  form: (inputs: Record<string, string>) => Record<string, string | RegExp>;
  refreshable: boolean;
}

const totpSecret = randomBase32Secret();
const totpUser = () => ({
  users: [{ username: USER, password: PASSWORD, totpSecret }],
});

const GRANTS: GrantCase[] = [
  {
    name: 'password',
    grant: 'password',
    summary: /password/,
    server: () => ({ users: [{ username: USER, password: PASSWORD }] }),
    inputs: () => ({ username: USER, password: PASSWORD }),
    form: () => ({ grant_type: 'password', username: USER, password: PASSWORD }),
    refreshable: true,
  },
  {
    name: 'password + one-time totp code',
    grant: 'password',
    summary: /password/,
    server: totpUser,
    inputs: () => ({ username: USER, password: PASSWORD, totp: totpCode(totpSecret) }),
    form: (inputs) => ({ grant_type: 'password', totp: inputs.totp as string }),
    refreshable: true,
  },
  {
    name: 'password + base32 totp-secret',
    grant: 'password',
    summary: /password/,
    server: totpUser,
    // As authenticator apps show it: lower case, in groups.
    inputs: () => ({
      username: USER,
      password: PASSWORD,
      'totp-secret': totpSecret.toLowerCase().replace(/(.{4})/g, '$1 '),
    }),
    form: () => ({ grant_type: 'password', totp: /^\d{6}$/ }),
    refreshable: true,
  },
  {
    name: 'password + otpauth:// totp-secret',
    grant: 'password',
    summary: /password/,
    server: totpUser,
    inputs: () => ({
      username: USER,
      password: PASSWORD,
      'totp-secret': `otpauth://totp/CDSE:${encodeURIComponent(USER)}?secret=${totpSecret}&issuer=CDSE&digits=6&period=30`,
    }),
    form: () => ({ grant_type: 'password', totp: /^\d{6}$/ }),
    refreshable: true,
  },
  {
    name: 'client-credentials',
    grant: 'client_credentials',
    summary: /client credentials/,
    server: () => ({ clients: [{ clientId: 'cdse-public' }, { ...ROBOT, serviceAccount: true }] }),
    inputs: () => ({ 'client-id': ROBOT.clientId, 'client-secret': ROBOT.clientSecret }),
    form: () => ({
      grant_type: 'client_credentials',
      client_id: ROBOT.clientId,
      client_secret: ROBOT.clientSecret,
    }),
    refreshable: false,
  },
  {
    name: 'refresh-token',
    grant: 'refresh_token',
    summary: /refresh token/,
    server: () => ({ users: [{ username: USER, password: PASSWORD }], rotateRefreshTokens: true }),
    inputs: async (server) => ({ 'refresh-token': await refreshTokenFrom(server) }),
    form: (inputs) => ({
      grant_type: 'refresh_token',
      refresh_token: inputs['refresh-token'] as string,
    }),
    refreshable: true,
  },
];

describe('grants: outputs, environment, credentials file, later steps, post', {
  concurrency: 4,
}, () => {
  for (const c of GRANTS) {
    for (const debug of [false, true]) {
      test(`${c.name}${debug ? ' (RUNNER_DEBUG=1)' : ''}`, async (t) => {
        const server = await IdentityServer.start(c.server());
        const inputs = await c.inputs(server);
        const job = await Job.create({
          inputs: { 'token-url': server.tokenUrl, cache: 'false', ...inputs },
          env: debug ? { RUNNER_DEBUG: '1' } : {},
        });
        t.after(async () => {
          await job.cleanup();
          await server.close();
        });

        const main = await job.runMain();
        assertOk(main, 'main');
        assertNoStackTrace(main);

        // Exactly one token request, of the expected grant and form.
        assert.equal(server.counts.total, 1, 'main made one token request');
        assert.equal(server.counts[c.grant], 1);
        const form = server.requests[0]?.form ?? {};
        for (const [field, want] of Object.entries(c.form(inputs))) {
          if (typeof want === 'string') assert.equal(form[field], want, field);
          else assert.match(form[field] ?? '', want, field);
        }

        // Outputs.
        const out = main.outputs;
        assert.ok(out['access-token'] && out['access-token'].length > 20);
        assert.ok(server.accessTokenValid(out['access-token']), 'the server issued the token');
        assert.equal(out['token-type'], 'Bearer');
        assert.match(out['expires-at'] ?? '', ISO_UTC);
        const expiresIn = Date.parse(out['expires-at'] ?? '') - Date.now();
        assert.ok(expiresIn > 500_000 && expiresIn <= 600_000, `expires in ${expiresIn} ms`);
        assert.equal(out.grant, c.grant);
        assert.equal(out['cache-hit'], 'false');
        assert.equal('refresh-token' in out, false, 'no refresh-token output unless asked');

        // The credentials file: 0600, in a 0700 folder under RUNNER_TEMP.
        const file = out['credentials-file'] ?? '';
        assert.ok(file.startsWith(job.runnerTemp + sep), `${file} is under RUNNER_TEMP`);
        assert.equal((await stat(file)).mode & 0o777, 0o600);
        const sessionDir = dirname(file);
        assert.equal((await stat(sessionDir)).mode & 0o777, 0o700);
        const stored = await readStored(file);
        assert.equal(stored.tokenSet.accessToken, out['access-token']);
        assert.equal(stored.tokenSet.tokenUrl, server.tokenUrl);
        assert.equal(stored.tokenSet.refreshToken === undefined, !c.refreshable);
        const firstRefreshToken = stored.tokenSet.refreshToken;

        // Environment for later steps and the cdse-auth command on PATH.
        assert.deepEqual(main.env, {
          CDSE_ACCESS_TOKEN: out['access-token'],
          CDSE_TOKEN_EXPIRES_AT: out['expires-at'],
          CDSE_TOKEN_URL: server.tokenUrl,
          CDSE_CREDENTIALS_FILE: file,
        });
        assert.deepEqual(main.path, [join(sessionDir, 'bin')]);

        // The summary names the grant.
        assert.match(main.summary, /CDSE login/);
        assert.match(main.summary, c.summary);

        // A later step: `cdse-auth` resolves to the launcher and prints the same, valid token.
        // (The debug run checks only what RUNNER_DEBUG can change: main and post.)
        if (!debug) {
          const token = await job.runStep('sh', [
            '-c',
            'command -v cdse-auth && cdse-auth token && cdse-auth header',
          ]);
          assertOk(token, 'cdse-auth token');
          assert.equal(
            token.stdout,
            `${join(sessionDir, 'bin', 'cdse-auth')}\n${out['access-token']}\nBearer ${out['access-token']}\n`,
          );
          assert.equal(server.counts.total, 1, 'a valid stored token needs no request');
        }

        // Time passes: the access token expires and the next call renews it. (The CLI does not
        // read RUNNER_DEBUG: the debug run goes on with post.)
        let renewed: string | undefined;
        if (!debug && c.refreshable) {
          await expireStoredAccessToken(file);
          const later = await job.runStep('cdse-auth', ['token']);
          assertOk(later, 'cdse-auth token after expiry');
          renewed = later.stdout.trim();
          assert.notEqual(renewed, out['access-token']);
          assert.equal(later.stdout, `${renewed}\n`);
          assert.ok(server.accessTokenValid(renewed));
          assert.equal(server.counts.refresh_token, c.grant === 'refresh_token' ? 2 : 1);
          assert.equal(server.counts.total, 2);
          assert.equal(server.requests.at(-1)?.form.refresh_token, firstRefreshToken);
          // The new token was registered for masking before it was printed.
          assert.ok(later.stderr.includes(`::add-mask::${renewed}`));
          assert.equal((await readStored(file)).tokenSet.accessToken, renewed);
        } else if (!debug) {
          // No refresh token: renewing needs the client secret, which the file never holds.
          await expireStoredAccessToken(file);
          const refused = await job.runStep('cdse-auth', ['token']);
          assert.equal(refused.code, 1);
          assert.match(refused.stderr, /CDSE_CLIENT_SECRET/);
          assert.equal(refused.stdout, '');
          const withSecret = await job.runStep('cdse-auth', ['token'], {
            CDSE_CLIENT_ID: ROBOT.clientId,
            CDSE_CLIENT_SECRET: ROBOT.clientSecret,
          });
          assertOk(withSecret, 'cdse-auth token with the client secret');
          renewed = withSecret.stdout.trim();
          assert.notEqual(renewed, out['access-token']);
          assert.ok(server.accessTokenValid(renewed));
          assert.equal(server.counts.client_credentials, 2);
        }
        const finalStored = await readStored(file);

        // Post removes the folder and does not end the session (logout is false).
        const post = await job.runPost();
        assertOk(post, 'post');
        await assert.rejects(stat(sessionDir), { code: 'ENOENT' });
        assert.equal(server.counts.logout, 0);

        assertNoLeaks(
          job.logs,
          job.summary,
          secretsOf(server, [
            ...Object.entries(inputs)
              .filter(([name]) => name !== 'username')
              .map(([, value]) => value),
            totpSecret,
            out['access-token'],
            firstRefreshToken,
            renewed,
            finalStored.tokenSet.refreshToken,
          ]),
          { state: [job.stateText] },
        );
        if (debug) assert.match(main.stdout, /^::debug::/m, 'RUNNER_DEBUG run printed debug lines');
      });
    }
  }
});

describe('inputs that shape the result', { concurrency: 4 }, () => {
  const passwordServer = () => ({ users: [{ username: USER, password: PASSWORD }] });

  test('output-refresh-token: true sets the refresh-token output, masked', async (t) => {
    const { job, server } = await scenario(t, passwordServer(), {
      username: USER,
      password: PASSWORD,
      'output-refresh-token': 'true',
    });
    const main = await job.runMain();
    assertOk(main, 'main');
    const stored = await readStored(main.outputs['credentials-file'] ?? '');
    assert.ok(stored.tokenSet.refreshToken);
    assert.equal(main.outputs['refresh-token'], stored.tokenSet.refreshToken);
    assert.ok(main.stdout.includes(`::add-mask::${stored.tokenSet.refreshToken}`));
    assertNoLeaks(job.logs, job.summary, secretsOf(server, [stored.tokenSet.refreshToken]), {
      state: [job.stateText],
    });
  });

  test('export-env: false exports nothing and adds nothing to PATH', async (t) => {
    const { job } = await scenario(t, passwordServer(), {
      username: USER,
      password: PASSWORD,
      'export-env': 'false',
    });
    const main = await job.runMain();
    assertOk(main, 'main');
    assert.deepEqual(main.env, {});
    assert.deepEqual(main.path, []);
    assert.ok(main.outputs['access-token']);
    const step = await job.runStep('sh', ['-c', 'command -v cdse-auth; env | grep ^CDSE_ || true']);
    assert.equal(step.stdout, '');
    // The folder still exists for the outputs' credentials file, and post removes it.
    const dir = dirname(main.outputs['credentials-file'] ?? '');
    await stat(dir);
    assertOk(await job.runPost(), 'post');
    await assert.rejects(stat(dir), { code: 'ENOENT' });
  });

  test('logout: true ends the server session in post', async (t) => {
    const { job, server } = await scenario(t, passwordServer(), {
      username: USER,
      password: PASSWORD,
      logout: 'true',
    });
    assertOk(await job.runMain(), 'main');
    assert.equal(server.activeSessions(), 1);
    const post = await job.runPost();
    assertOk(post, 'post');
    assert.deepEqual(errorLines(post), []);
    assert.doesNotMatch(post.stdout, /::warning::/);
    assert.equal(server.counts.logout, 1);
    assert.equal(server.activeSessions(), 0);
    assert.match(post.stdout, /Ended the CDSE session/);
    const dir = dirname(job.steps[0]?.outputs['credentials-file'] ?? '');
    await assert.rejects(stat(dir), { code: 'ENOENT' });
    assertNoLeaks(job.logs, job.summary, secretsOf(server), { state: [job.stateText] });
  });
});

describe('bad inputs fail with one error line that names the input', { concurrency: 4 }, () => {
  const creds = { username: USER, password: PASSWORD };
  // The whole table runs in-process (test/action-inputs.test.ts); these rows show the built
  // bundle renders such an error the same way.
  const rows: Array<{ name: string; inputs: Record<string, string>; error: RegExp[] }> = [
    {
      name: 'missing credentials',
      inputs: {},
      error: [/username/, /password/, /client-secret/, /refresh-token/],
    },
    {
      name: 'malformed token-url',
      inputs: { ...creds, 'token-url': 'not a url' },
      error: [/Input token-url:/],
    },
  ];

  for (const row of rows) {
    test(row.name, async (t) => {
      const { job, server } = await scenario(t, {}, row.inputs);
      const main = await job.runMain();
      assert.equal(main.code, 1, `exit code; output:\n${main.stdout}${main.stderr}`);
      const errors = errorLines(main);
      assert.equal(errors.length, 1, `one ::error:: line, got ${JSON.stringify(errors)}`);
      for (const pattern of row.error) assert.match(errors[0] ?? '', pattern);
      assert.doesNotMatch(errors[0] ?? '', /fork/, 'no fork hint outside pull requests');
      assertNoStackTrace(main);
      assert.equal(server.counts.total, 0, 'nothing was sent');
      // Nothing was created, so post has nothing to do.
      assert.deepEqual(main.state, {});
      assert.deepEqual(await readdir(job.runnerTemp), []);
      if (row === rows[0]) assertOk(await job.runPost(), 'post');
      const secrets = ['password', 'totp', 'totp-secret', 'client-secret']
        .map((name) => row.inputs[name])
        .filter((v): v is string => !!v && v.length >= 4);
      if (secrets.length) assertNoLeaks(job.logs, job.summary, secrets);
    });
  }
});

describe('failures at the server and in pull requests', { concurrency: 4 }, () => {
  test('a wrong password fails once, without retrying or showing it', async (t) => {
    const wrong = 'wrong-Password-123';
    const { job, server } = await scenario(
      t,
      { users: [{ username: USER, password: PASSWORD }] },
      {
        username: USER,
        password: wrong,
      },
    );
    const main = await job.runMain();
    assert.equal(main.code, 1);
    assert.equal(server.counts.password, 1, 'exactly one password request');
    assert.equal(server.counts.total, 1);
    const errors = errorLines(main);
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0] ?? '', /rejected the credentials/);
    assert.ok(!(errors[0] ?? '').includes(wrong));
    assertNoStackTrace(main);
    assert.deepEqual(main.outputs, {});
    assert.deepEqual(main.env, {});
    // post still runs (post-if: always()) and removes the folder main created.
    const dir = main.state.dir;
    assert.ok(dir);
    const post = await job.runPost();
    assertOk(post, 'post');
    await assert.rejects(stat(dir), { code: 'ENOENT' });
    assertNoLeaks(job.logs, job.summary, [wrong], { state: [job.stateText] });
  });

  test('a fork pull request without secrets gets the fork hint', async (t) => {
    const { job, server } = await scenario(
      t,
      {},
      {},
      {
        eventName: 'pull_request',
        eventPayload: {
          repository: { full_name: 'cdse-auth/example', private: false, visibility: 'public' },
          pull_request: {
            head: { repo: { full_name: 'someone/example', fork: true } },
            base: { repo: { full_name: 'cdse-auth/example' } },
          },
        },
      },
    );
    const main = await job.runMain();
    assert.equal(main.code, 1);
    const errors = errorLines(main);
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.match(errors[0] ?? '', /No credentials/);
    assert.match(errors[0] ?? '', /forks receive no secrets/);
    assertNoStackTrace(main);
    assert.equal(server.counts.total, 0);
  });
});

describe('bundles', () => {
  test('dist runs from a copy with no node_modules anywhere above it', async (t) => {
    const copy = await mkdtemp(join(tmpdir(), 'cdse-action-copy-'));
    t.after(() => rm(copy, { recursive: true, force: true }));
    await cp(join(REPO_ROOT, 'dist'), join(copy, 'dist'), { recursive: true });
    await cp(join(REPO_ROOT, 'action.yml'), join(copy, 'action.yml'));
    for (let dir = copy; ; dir = dirname(dir)) {
      await assert.rejects(stat(join(dir, 'node_modules')), { code: 'ENOENT' });
      if (dir === parse(dir).root) break;
    }
    const server = await IdentityServer.start({ users: [{ username: USER, password: PASSWORD }] });
    const job = await Job.create({
      actionDir: copy,
      inputs: { 'token-url': server.tokenUrl, cache: 'false', username: USER, password: PASSWORD },
    });
    t.after(async () => {
      await job.cleanup();
      await server.close();
    });
    const main = await job.runMain();
    assertOk(main, 'main from the copy');
    assert.equal(main.outputs.grant, 'password');
    const token = await job.runStep('cdse-auth', ['token']);
    assertOk(token, 'cdse-auth from the copy');
    assert.equal(token.stdout, `${main.outputs['access-token']}\n`);
    assert.match(
      await readFile(join(main.path[0] ?? '', 'cdse-auth'), 'utf8'),
      new RegExp(`${copy}/dist/cli/index\\.js`),
    );
    assertOk(await job.runPost(), 'post from the copy');
  });
});

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
