// `cdse-auth token` with a valid stored token is called once per request in download loops: the
// built CLI must answer it from the file alone. Checked by what it loads, not by timing (the
// bench measures time).
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, run, SYSTEM_PATH } from './runner.ts';

const TOKEN = 'eyJhbGciOi.hot-path-token.sig';
const TOKEN_URL = 'http://127.0.0.1:9/auth/realms/CDSE/protocol/openid-connect/token';
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cdse-hot-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function credentials(name: string, tokenSet: Record<string, unknown>, mode = 0o600) {
  const path = join(dir, name);
  await writeFile(path, JSON.stringify({ version: 1, tokenSet }), { mode });
  await chmod(path, mode);
  return path;
}
const valid = (extra: Record<string, unknown> = {}) => ({
  accessToken: TOKEN,
  tokenType: 'bearer',
  expiresAt: new Date(Date.now() + 600_000).toISOString(),
  refreshToken: 'refresh.token.value',
  tokenUrl: TOKEN_URL,
  clientId: 'cdse-public',
  ...extra,
});

// Prints, at exit, the built-in modules and bindings the process loaded.
const MODULE_LIST_HOOK = `data:text/javascript,process.on('exit',()=>process.stderr.write('MODULES '+JSON.stringify(process.moduleLoadList)+'\\n'))`;

function cli(script: string, args: string[], env: Record<string, string>) {
  return run(process.execPath, ['--import', MODULE_LIST_HOOK, script, ...args], {
    env: { PATH: SYSTEM_PATH, HOME: dir, ...env },
  });
}
const modulesOf = (stderr: string): string[] =>
  JSON.parse(/^MODULES (.*)$/m.exec(stderr)?.[1] ?? '[]') as string[];
// What a token request needs: HTTP, TLS, DNS, sockets, undici.
const NETWORK =
  /^(NativeModule (https?|tls|dns|net|_http_\w+|internal\/deps\/undici\/.*)|Internal Binding (tls_wrap|tcp_wrap|cares_wrap|http_parser))$/;

/** What the hot path loads beyond a process that only writes a line to the same pipe. */
async function beyondBaseline(loaded: string[]): Promise<string[]> {
  const baseline = await run(
    process.execPath,
    ['--import', MODULE_LIST_HOOK, '-e', 'process.stdout.write("x\\n")'],
    { env: { PATH: SYSTEM_PATH } },
  );
  const known = new Set(modulesOf(baseline.stderr));
  assert.ok(known.size > 0, 'the baseline module list was read');
  return loaded.filter((m) => !known.has(m));
}

describe('the CLI hot path (a valid stored token)', () => {
  test('answers token and header without the shared bundle and without any network module', async () => {
    // The entry alone, without dist/shared beside it: loading the full CLI would fail.
    const alone = join(dir, 'alone', 'cli');
    await mkdir(alone, { recursive: true });
    await copyFile(join(REPO_ROOT, 'dist', 'cli', 'index.js'), join(alone, 'index.js'));
    await copyFile(join(REPO_ROOT, 'dist', 'cli', 'package.json'), join(alone, 'package.json'));
    const file = await credentials('valid.json', valid());
    const env = { CDSE_CREDENTIALS_FILE: file, CDSE_TOKEN_URL: TOKEN_URL };

    const token = await cli(join(alone, 'index.js'), ['token'], env);
    assert.equal(token.code, 0, token.stderr);
    assert.equal(token.stdout, `${TOKEN}\n`);
    const header = await cli(join(alone, 'index.js'), ['header'], env);
    assert.equal(
      header.stdout,
      `Bearer ${TOKEN}\n`,
      'the scheme is normalised as the library does',
    );
    const loaded = modulesOf(token.stderr);
    assert.ok(loaded.length > 0, 'the module list was read');
    assert.deepEqual(
      (await beyondBaseline(loaded)).filter((m) => NETWORK.test(m)),
      [],
    );

    // The same entry with a token due for renewal goes to the full CLI, which is not there.
    const due = await credentials(
      'due.json',
      valid({ expiresAt: new Date(Date.now() + 10_000).toISOString() }),
    );
    const slow = await cli(join(alone, 'index.js'), ['token'], { CDSE_CREDENTIALS_FILE: due });
    assert.notEqual(slow.code, 0, 'a token within the expiry skew is not answered from the file');
  });

  const refused: Array<[string, Record<string, unknown>, number, Record<string, string>]> = [
    ['a file others can read', valid(), 0o644, {}],
    ['a token with a newline', valid({ accessToken: 'a\n::error::x' }), 0o600, {}],
    ['another token URL', valid(), 0o600, { CDSE_TOKEN_URL: 'https://other.example/token' }],
    ['a larger expiry skew', valid(), 0o600, { CDSE_EXPIRY_SKEW: '900' }],
  ];
  for (const [what, tokenSet, mode, env] of refused) {
    test(`${what}: not answered from the file`, async () => {
      const file = await credentials(`${what.replace(/\W/g, '-')}.json`, tokenSet, mode);
      const result = await cli(join(REPO_ROOT, 'dist', 'cli', 'index.js'), ['token'], {
        CDSE_CREDENTIALS_FILE: file,
        ...env,
      });
      assert.notEqual(result.stdout, `${TOKEN}\n`);
      assert.equal(result.code, 1, `the full CLI answered: ${result.stderr}`);
      assert.ok(
        modulesOf(result.stderr).some((m) => NETWORK.test(m)),
        'the full CLI ran',
      );
    });
  }
});
