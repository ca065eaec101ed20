// `cdse-auth s3` (print, list, delete), `logout` deleting the pair it created, and
// `header --openeo`: in-process through the CLI's run(deps), plus one bash `eval` of the built
// dist/cli against the real AWS SDK. Run `npm run build` after changing src/.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { run as cli } from '../src/cli/main.ts';
import { REPO_ROOT, run, SYSTEM_PATH } from './runner.ts';
import {
  OBJECT_BODY,
  OBJECT_KEY,
  PASSWORD,
  type Peers,
  SDK_ISOLATION,
  SDK_SCRIPT,
  startPeers,
  USER,
} from './s3-peers.ts';

let peers: Peers;
let home: string;
let file: string;

before(async () => {
  peers = await startPeers();
  home = await mkdtemp(join(tmpdir(), 'cdse-s3-cli-'));
});
beforeEach(async () => {
  peers.keys.resetCounts();
  for (const key of peers.keys.keys(USER)) key.deleted = true;
  file = join(home, `${Math.random().toString(36).slice(2)}`, 'credentials.json');
  assert.equal((await cdse(['login'], { CDSE_USERNAME: USER, CDSE_PASSWORD: PASSWORD })).code, 0);
});
after(async () => {
  await peers.close();
  await rm(home, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({
  CDSE_CREDENTIALS_FILE: file,
  CDSE_TOKEN_URL: peers.identity.tokenUrl,
  CDSE_S3_KEYS_URL: peers.keys.url,
  CDSE_S3_ENDPOINT: peers.s3.endpoint,
  ...extra,
});

/** One CLI call in-process; `log` interleaves both streams as a job log shows them. */
async function cdse(argv: string[], extra: Record<string, string> = {}) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const log: string[] = [];
  const code = await cli({
    argv,
    env: env(extra),
    stdout: (line) => {
      stdout.push(line);
      log.push(line);
    },
    stderr: (line) => {
      stderr.push(line);
      log.push(line);
    },
    interactive: false,
  });
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n'), log };
}

const created = () => peers.keys.allKeys().filter((k) => k.user === USER && !k.deleted);

describe('cdse-auth s3', () => {
  test('creates the pair once, prints export lines and --json, keeps it in the 0600 file', async () => {
    const first = await cdse(['s3']);
    assert.equal(first.code, 0, first.stderr);
    const [pair] = created();
    assert.ok(pair);
    const host = new URL(peers.s3.endpoint).host;
    assert.equal(
      first.stdout,
      [
        `export AWS_ACCESS_KEY_ID='${pair.accessId}'`,
        `export AWS_SECRET_ACCESS_KEY='${pair.secret}'`,
        `export AWS_ENDPOINT_URL_S3='${peers.s3.endpoint}'`,
        `export AWS_REGION='default'`,
        `export AWS_S3_ENDPOINT='${host}'`,
        `export AWS_VIRTUAL_HOSTING='FALSE'`,
        `export AWS_HTTPS='NO'`,
      ].join('\n'),
    );
    const json = await cdse(['s3', '--json']);
    assert.equal(JSON.parse(json.stdout).AWS_SECRET_ACCESS_KEY, pair.secret);
    assert.equal(peers.keys.counts.create, 1, 'the second call reuses the pair');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const meta = JSON.parse(await readFile(file, 'utf8')).meta;
    assert.equal(meta.s3.accessKeyId, pair.accessId);
    assert.equal(meta.s3.keysUrl, peers.keys.url);
  });

  test('in a workflow step the pair is masked on stderr before it is printed', async () => {
    const out = await cdse(['s3'], { GITHUB_ACTIONS: 'true' });
    const [pair] = created();
    assert.ok(pair);
    const printed = out.log.findIndex((l) => l.includes(pair.secret) && !l.startsWith('::'));
    for (const value of [pair.secret, pair.accessId]) {
      const masked = out.log.indexOf(`::add-mask::${value}`);
      assert.ok(masked >= 0 && masked < printed, `${value.slice(0, 4)}… masked before use`);
    }
    // A later call that reuses the stored pair masks it again (a new step, a new process).
    const again = await cdse(['s3'], { GITHUB_ACTIONS: 'true' });
    assert.ok(again.stderr.includes(`::add-mask::${pair.secret}`));
  });

  test('s3 list: ids and expiries, no secrets; the created one is marked', async () => {
    const other = peers.keys.addKey(USER);
    await cdse(['s3']);
    const [, ours] = created();
    assert.ok(ours);
    const listed = await cdse(['s3', 'list']);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = listed.stdout.split('\n').map((l) => l.split('\t'));
    assert.deepEqual(
      rows.map((r) => [r[0], r[2]]),
      [
        [other.accessId, undefined],
        [ours.accessId, 'created by this login'],
      ],
    );
    assert.ok(rows.every((r) => !Number.isNaN(Date.parse(r[1] as string))));
    for (const secret of [other.secret, ours.secret]) {
      assert.ok(!listed.stdout.includes(secret) && !listed.stderr.includes(secret));
    }
  });

  test('s3 delete ID deletes that key; --all-created the one this login made', async () => {
    const other = peers.keys.addKey(USER);
    await cdse(['s3']);
    assert.equal((await cdse(['s3', 'delete', other.accessId])).code, 0);
    assert.equal(peers.keys.secretOf(other.accessId), undefined);
    assert.equal(created().length, 1, 'only the named key went');
    assert.equal((await cdse(['s3', 'delete', '--all-created'])).code, 0);
    assert.equal(created().length, 0);
    assert.equal(JSON.parse(await readFile(file, 'utf8')).meta.s3, undefined, 'forgotten');
    const usage = await cdse(['s3', 'delete']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /needs an ID .* or --all-created/);
  });

  test('logout deletes the pair it created, then ends the session', async () => {
    const foreign = peers.keys.addKey(USER);
    await cdse(['s3']);
    const sessions = peers.identity.activeSessions();
    const out = await cdse(['logout']);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /deleted the S3 key pair this login created/);
    assert.deepEqual(
      created().map((k) => k.accessId),
      [foreign.accessId],
      'a key it did not create is left alone',
    );
    assert.equal(peers.identity.activeSessions(), sessions - 1);
  });

  test('an s3-keys-url over http to a remote host is a usage error naming the flag', async () => {
    const out = await cdse(['s3', '--s3-keys-url', 'http://keys.example.com/api/user/credentials']);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /--s3-keys-url must be an https:\/\/ URL/);
    assert.equal(peers.keys.counts.total, 0);
  });
});

test('header --openeo prints "Bearer oidc/CDSE/<access token>" (openEO bearer format)', async () => {
  const token = await cdse(['token']);
  const header = await cdse(['header', '--openeo']);
  assert.equal(header.code, 0);
  assert.equal(header.stdout, `Bearer oidc/CDSE/${token.stdout}`);
});

test('--scope and CDSE_SCOPE are sent with the grant (the flag wins)', async () => {
  const creds = { CDSE_USERNAME: USER, CDSE_PASSWORD: PASSWORD };
  const lastGrant = () =>
    peers.identity.requests.filter((r) => r.form.grant_type === 'password').at(-1)?.form.scope;
  assert.equal((await cdse(['login'], { ...creds, CDSE_SCOPE: 'openid' })).code, 0);
  assert.equal(lastGrant(), 'openid');
  const both = await cdse(['login', '--scope', 'openid offline_access'], {
    ...creds,
    CDSE_SCOPE: 'openid',
  });
  assert.equal(both.code, 0);
  assert.equal(lastGrant(), 'openid offline_access');
});

test('bash: eval "$(cdse-auth s3)" then the AWS SDK; a second eval reuses the pair', async () => {
  const bin = join(REPO_ROOT, 'dist', 'cli', 'index.js');
  const sdk = import.meta.resolve('@aws-sdk/client-s3');
  const script = SDK_SCRIPT.replace("'@aws-sdk/client-s3'", JSON.stringify(sdk));
  const shell = [
    'set -euo pipefail',
    `cdse() { "$NODE" "$CLI" "$@"; }`,
    'eval "$(cdse s3)"',
    'eval "$(cdse s3)"',
    `"$NODE" --input-type=module -e "$SCRIPT"`,
  ].join('\n');
  const out = await run('/bin/bash', ['-c', shell], {
    env: {
      PATH: SYSTEM_PATH,
      HOME: home,
      NO_PROXY: '127.0.0.1,localhost',
      NODE: process.execPath,
      CLI: bin,
      SCRIPT: script,
      ...SDK_ISOLATION,
      ...env(),
    },
  });
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual(JSON.parse(out.stdout), { key: OBJECT_KEY, body: OBJECT_BODY });
  assert.equal(peers.keys.counts.create, 1);
});
