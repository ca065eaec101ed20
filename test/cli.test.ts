// The `cdse-auth` command as users and later workflow steps run it: `node dist/cli/index.js` as a
// child process against the test identity server. Run `node scripts/build.ts` after changing src/.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { assertNoLeaks } from './leaks.ts';
import { REPO_ROOT, type RunResult, run, SYSTEM_PATH, stepLog } from './runner.ts';
import { IdentityServer, type IdentityServerOptions } from './servers/identity-server.ts';

const CLI = join(REPO_ROOT, 'dist', 'cli', 'index.js');
const USER = 'grace@example.com';
const PASSWORD = 'Hopper%1906 &=+ "compiler"';
const ROBOT = { clientId: 'sh-robot-9', clientSecret: 'robot-secret-0a1b2c3d4e5f' };

interface Env {
  server: IdentityServer;
  home: string;
  /** A credentials file in a folder that does not exist yet. */
  file: string;
  /** Runs the CLI with a minimal environment plus `env`. */
  cli(args: string[], env?: Record<string, string>): Promise<RunResult>;
  /** CDSE_USERNAME, CDSE_PASSWORD, CDSE_TOKEN_URL, CDSE_CREDENTIALS_FILE. */
  login: Record<string, string>;
}

async function setup(t: TestContext, options: IdentityServerOptions = {}): Promise<Env> {
  const server = await IdentityServer.start({
    users: [{ username: USER, password: PASSWORD }],
    clients: [{ clientId: 'cdse-public' }, { ...ROBOT, serviceAccount: true }],
    ...options,
  });
  const home = await mkdtemp(join(tmpdir(), 'cdse-cli-'));
  t.after(async () => {
    await server.close();
    await rm(home, { recursive: true, force: true });
  });
  const file = join(home, 'state', 'cdse', 'credentials.json');
  const base = { PATH: SYSTEM_PATH, HOME: home, NO_PROXY: '127.0.0.1,localhost' };
  return {
    server,
    home,
    file,
    cli: (args, env = {}) => run(process.execPath, [CLI, ...args], { env: { ...base, ...env } }),
    login: {
      CDSE_USERNAME: USER,
      CDSE_PASSWORD: PASSWORD,
      CDSE_TOKEN_URL: server.tokenUrl,
      CDSE_CREDENTIALS_FILE: file,
    },
  };
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

interface Stored {
  version: number;
  tokenSet: { accessToken: string; refreshToken?: string; expiresAt: string };
}
const readStored = async (path: string) => JSON.parse(await readFile(path, 'utf8')) as Stored;

function assertExit(result: RunResult, code: number): void {
  assert.equal(result.code, code, `exit ${result.code}, stderr:\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /^\s{4}at /m, 'a stack trace was printed');
}

describe('usage', { concurrency: true }, () => {
  test('--help prints the usage on stdout and exits 0', async (t) => {
    const { cli } = await setup(t);
    const result = await cli(['--help']);
    assertExit(result, 0);
    assert.match(result.stdout, /^Usage: cdse-auth <command> \[options\]$/m);
    for (const command of ['login', 'token', 'header', 'status', 'logout']) {
      assert.match(result.stdout, new RegExp(`^ {2}${command} `, 'm'));
    }
    assert.match(result.stdout, /CDSE_CREDENTIALS_FILE/);
    assert.equal(result.stderr, '');
    const version = await cli(['--version']);
    assertExit(version, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\S*\n$/);
  });

  test('help for one command: `help <command>` and `<command> --help`', async (t) => {
    const { cli } = await setup(t);
    for (const args of [
      ['help', 'token'],
      ['token', '--help'],
    ]) {
      const result = await cli(args);
      assertExit(result, 0);
      assert.match(result.stdout, /^Usage: cdse-auth token/);
      assert.doesNotMatch(result.stdout, /Commands:/, 'only that command');
    }
    const all = await cli(['help']);
    assertExit(all, 0);
    assert.match(all.stdout, /Commands:/);
    const unknown = await cli(['help', 'frobnicate']);
    assertExit(unknown, 2);
    assert.match(unknown.stderr, /no help for 'frobnicate'/);
  });

  const usageErrors: Array<[string, string[], RegExp]> = [
    ['no command', [], /Usage: cdse-auth/],
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['a misspelt command', ['tokn'], /did you mean 'token'/],
    ['a misspelt flag', ['token', '--tiemout', '5'], /did you mean '--timeout'/],
    ['an unknown flag', ['token', '--frobnicate'], /--frobnicate/],
    ['a flag without its value', ['token', '--username'], /--username/],
    ['an extra argument', ['token', 'extra'], /unexpected argument 'extra'/],
    ['an unknown grant', ['token', '--grant', 'magic'], /--grant: expected auto.*got 'magic'/],
  ];
  for (const [name, args, message] of usageErrors) {
    test(`${name} exits 2`, async (t) => {
      const { cli } = await setup(t);
      const result = await cli(args);
      assertExit(result, 2);
      assert.match(result.stderr, message);
      assert.equal(result.stdout, '');
    });
  }

  test('configuration errors exit 2 and name the flag', async (t) => {
    const { cli, login, server } = await setup(t);
    const http = await cli(['token'], {
      ...login,
      CDSE_TOKEN_URL: 'http://identity.example.com/t',
    });
    assertExit(http, 2);
    // The message names where the value came from: here the variable, not the flag.
    assert.match(http.stderr, /^cdse-auth: CDSE_TOKEN_URL must be an https:\/\/ URL/);
    const both = await cli(['token'], { ...login, CDSE_CLIENT_SECRET: ROBOT.clientSecret });
    assertExit(both, 2);
    assert.match(both.stderr, /more than one grant.*--password.*--client-secret.*--grant/);
    assert.equal(server.counts.total, 0);
    assert.ok(!http.stderr.includes(PASSWORD) && !both.stderr.includes(ROBOT.clientSecret));
  });
});

describe('sessions', { concurrency: true }, () => {
  test('token logs in, saves the file 0600 and reuses it; header, status, logout', async (t) => {
    const { cli, login, file, server } = await setup(t);

    const first = await cli(['token'], login);
    assertExit(first, 0);
    const lines = first.stdout.split('\n');
    assert.equal(lines.length, 2, 'one line');
    assert.equal(lines[1], '');
    const token = lines[0] ?? '';
    assert.ok(server.accessTokenValid(token), 'a token the server issued');
    assert.equal(first.stderr, '', 'nothing but the token outside a workflow');
    assert.equal(server.counts.password, 1);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(dirname(file))).mode & 0o777, 0o700);
    const stored = await readStored(file);
    assert.equal(stored.tokenSet.accessToken, token);
    assert.ok(stored.tokenSet.refreshToken);

    // The saved token is still valid: no request at all.
    const second = await cli(['token'], login);
    assertExit(second, 0);
    assert.equal(second.stdout, `${token}\n`);
    const header = await cli(['header'], { CDSE_CREDENTIALS_FILE: file });
    assertExit(header, 0);
    assert.equal(header.stdout, `Bearer ${token}\n`);
    assert.equal(server.counts.total, 1, 'no new request');

    // status: JSON with the facts and no secret.
    const status = await cli(['status'], { CDSE_CREDENTIALS_FILE: file });
    assertExit(status, 0);
    const report = JSON.parse(status.stdout) as Record<string, unknown>;
    assert.equal(report.loggedIn, true);
    assert.equal(report.accessTokenValid, true);
    assert.equal(report.refreshTokenValid, true);
    assert.equal(report.credentialsFile, file);
    assert.equal(report.tokenUrl, server.tokenUrl);
    assert.equal(report.clientId, 'cdse-public');
    assert.equal(report.accessTokenExpiresAt, stored.tokenSet.expiresAt);
    for (const secret of [token, stored.tokenSet.refreshToken ?? '', PASSWORD]) {
      assert.ok(!status.stdout.includes(secret), 'status shows no secret');
    }
    assert.equal(server.counts.total, 1);

    // Time passes: the saved access token expires; the refresh token renews it.
    stored.tokenSet.expiresAt = new Date(Date.now() - 1000).toISOString();
    await writeFile(file, JSON.stringify(stored));
    const renewed = await cli(['token'], { CDSE_CREDENTIALS_FILE: file });
    assertExit(renewed, 0);
    const newToken = renewed.stdout.trim();
    assert.notEqual(newToken, token);
    assert.ok(server.accessTokenValid(newToken));
    assert.equal(server.counts.refresh_token, 1);
    assert.equal(server.counts.password, 1);

    // logout (with nothing but the file): the server session ends and the file goes.
    assert.equal(server.activeSessions(), 1);
    const logout = await cli(['logout'], { CDSE_CREDENTIALS_FILE: file });
    assertExit(logout, 0);
    assert.match(logout.stderr, /Logged out/);
    assert.equal(server.counts.logout, 1);
    assert.equal(server.activeSessions(), 0);
    assert.equal(await exists(file), false);
    const after = await cli(['status'], { CDSE_CREDENTIALS_FILE: file });
    assertExit(after, 1);
    assert.equal((JSON.parse(after.stdout) as { loggedIn: boolean }).loggedIn, false);
  });

  test('client credentials; without CDSE_CREDENTIALS_FILE the file is in ~/.config', async (t) => {
    const { cli, home, server } = await setup(t);
    const file = join(home, '.config', 'cdse-auth', 'credentials.json');
    const env = {
      CDSE_CLIENT_ID: ROBOT.clientId,
      CDSE_CLIENT_SECRET: ROBOT.clientSecret,
      CDSE_TOKEN_URL: server.tokenUrl,
    };
    const result = await cli(['token', '--grant', 'client-credentials'], env);
    assertExit(result, 0);
    assert.ok(server.accessTokenValid(result.stdout.trim()));
    assert.equal(server.counts.client_credentials, 1);
    assert.equal(server.requests[0]?.form.client_id, ROBOT.clientId);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.ok(
      !(await readFile(file, 'utf8')).includes(ROBOT.clientSecret),
      'the file has no secret',
    );
  });

  test('a wrong password exits 1 after one request, without showing the password', async (t) => {
    const { cli, login, file, server } = await setup(t);
    const wrong = 'not-the-Password-77';
    const result = await cli(['token'], { ...login, CDSE_PASSWORD: wrong });
    assertExit(result, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^cdse-auth: .*rejected the credentials/);
    assert.ok(!result.stderr.includes(wrong));
    assert.equal(server.counts.password, 1);
    assert.equal(server.counts.total, 1);
    assert.equal(await exists(file), false);
  });

  test('not logged in: token, header and status exit 1', async (t) => {
    const { cli, file, server } = await setup(t);
    const env = { CDSE_CREDENTIALS_FILE: file, CDSE_TOKEN_URL: server.tokenUrl };
    for (const command of ['token', 'header']) {
      const result = await cli([command], env);
      assertExit(result, 1);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /Not logged in/);
    }
    const status = await cli(['status'], env);
    assertExit(status, 1);
    assert.equal((JSON.parse(status.stdout) as { loggedIn: boolean }).loggedIn, false);
    assert.equal(server.counts.total, 0);
  });

  test('in a workflow (GITHUB_ACTIONS=true) new tokens are masked on stderr first', async (t) => {
    const { cli, login, file, server } = await setup(t);
    const env = { ...login, GITHUB_ACTIONS: 'true' };
    const first = await cli(['token'], env);
    assertExit(first, 0);
    const token = first.stdout.trim();
    assert.equal(first.stdout, `${token}\n`, 'stdout is only the token');
    const { refreshToken } = (await readStored(file)).tokenSet;
    assert.ok(refreshToken);
    // The password it sent is masked too, escaped as the runner unescapes command data.
    const escapedPassword = PASSWORD.replace(/%/g, '%25');
    assert.deepEqual(
      first.stderr.split('\n').filter(Boolean).sort(),
      [
        `::add-mask::${escapedPassword}`,
        `::add-mask::${token}`,
        `::add-mask::Bearer ${token}`,
        `::add-mask::${refreshToken}`,
      ].sort(),
    );

    // A saved token was masked when it was new: no mask lines again.
    const again = await cli(['header'], env);
    assertExit(again, 0);
    assert.equal(again.stdout, `Bearer ${token}\n`);
    assert.equal(again.stderr, '');
    assert.equal(server.counts.total, 1);
    assertNoLeaks([stepLog(first), stepLog(again)], '', [token, refreshToken, PASSWORD]);
  });
});

/** Runs the CLI on a pseudo-terminal (util-linux `script`), answering each prompt as it comes. */
function onTerminal(
  args: string[],
  env: Record<string, string>,
  answers: Array<[prompt: string, answer: string]>,
): Promise<{ code: number | null; output: string }> {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ');
  const child = spawn('script', ['-qefc', command, '/dev/null'], {
    env: { SHELL: '/bin/sh', TERM: 'dumb', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  let next = 0;
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
    const pending = answers[next];
    // Answer only once the prompt shows: typed earlier, the terminal would echo it.
    if (pending && output.endsWith(pending[0])) {
      next++;
      child.stdin.write(`${pending[1]}\r`);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const hasScript = await new Promise<boolean>((resolve) => {
  const probe = spawn('script', ['--version'], { stdio: 'ignore' });
  probe.on('error', () => resolve(false));
  probe.on('close', (code) => resolve(code === 0));
});

describe('interactive login', () => {
  test('prompts on a terminal and never echoes the password', {
    skip: hasScript ? false : 'util-linux script is not installed',
  }, async (t) => {
    const { server, file, home } = await setup(t);
    const result = await onTerminal(
      ['login'],
      {
        PATH: SYSTEM_PATH,
        HOME: home,
        CDSE_TOKEN_URL: server.tokenUrl,
        CDSE_CREDENTIALS_FILE: file,
      },
      [
        ['CDSE username (e-mail): ', USER],
        ['Password: ', PASSWORD],
        ['2FA code (leave empty if none): ', ''],
      ],
    );
    assert.equal(result.code, 0, result.output);
    assert.ok(result.output.includes(USER), 'the username is echoed');
    assert.ok(!result.output.includes(PASSWORD), `the password was echoed: ${result.output}`);
    assert.match(result.output, /Logged in to 127\.0\.0\.1:\d+/);
    assert.equal(server.counts.password, 1);
    assert.equal(server.requests[0]?.form.password, PASSWORD);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });
});
