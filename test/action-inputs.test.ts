// Bad action inputs, in-process through the main step's run(deps) seam with a recording runner:
// one error line that names the input, no secret in it, nothing sent, nothing created. A few of
// these rows also run against the built dist/ in test/action-failures.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run } from '../src/action/main.ts';
import {
  actionInputs,
  JOB_PASSWORD as PASSWORD,
  RecordingRunner,
  ROBOT,
  stepDeps,
  JOB_USER as USER,
} from './fixtures.ts';
import { IdentityServer, randomBase32Secret } from './servers/identity-server.ts';

const totpSecret = randomBase32Secret();

let server: IdentityServer;
let runnerTemp: string;
before(async () => {
  server = await IdentityServer.start();
  runnerTemp = await mkdtemp(join(tmpdir(), 'cdse-inputs-'));
});
after(async () => {
  await server.close();
  await rm(runnerTemp, { recursive: true, force: true });
});

describe('bad inputs fail with one error line that names the input', () => {
  const creds = { username: USER, password: PASSWORD };
  const rows: Array<{ name: string; inputs: Record<string, string>; error: RegExp[] }> = [
    {
      name: 'missing credentials',
      inputs: {},
      error: [/username/, /password/, /client-secret/, /refresh-token/],
    },
    {
      name: 'ambiguous credentials (password + client-secret)',
      inputs: { ...creds, 'client-id': ROBOT.clientId, 'client-secret': ROBOT.clientSecret },
      error: [/more than one grant/, /password/, /client-secret/, /grant/],
    },
    {
      name: 'grant password without a password',
      inputs: { grant: 'password', username: USER },
      error: [/password grant needs password/],
    },
    { name: 'unknown grant', inputs: { ...creds, grant: 'magic' }, error: [/Input grant:/] },
    {
      name: 'malformed token-url',
      inputs: { ...creds, 'token-url': 'not a url' },
      error: [/Input token-url:/, /not a valid URL/],
    },
    {
      name: 'http to a non-loopback host',
      inputs: { ...creds, 'token-url': 'http://identity.example.com/token' },
      error: [/Input token-url:/, /https/],
    },
    {
      name: 'non-numeric expiry-skew',
      inputs: { ...creds, 'expiry-skew': 'soon' },
      error: [/Input expiry-skew:/, /whole number/],
    },
    {
      name: 'non-numeric timeout',
      inputs: { ...creds, timeout: '10s' },
      error: [/Input timeout:/, /whole number/],
    },
    {
      name: 'non-numeric max-attempts',
      inputs: { ...creds, 'max-attempts': 'many' },
      error: [/Input max-attempts:/, /whole number/],
    },
    {
      name: 'bad boolean',
      inputs: { ...creds, 'export-env': 'yes' },
      error: [/Input export-env:/, /true or false/],
    },
    {
      name: 'bad totp',
      inputs: { ...creds, totp: '12ab56' },
      error: [/^totp: The TOTP code must be 6 to 8 digits/],
    },
    {
      name: 'bad totp-secret',
      inputs: { ...creds, 'totp-secret': 'not a base32 secret!' },
      error: [/totp-secret/],
    },
    {
      name: 'totp and totp-secret together',
      inputs: { ...creds, totp: '123456', 'totp-secret': totpSecret },
      error: [/totp/, /totp-secret/],
    },
  ];

  for (const row of rows) {
    test(row.name, async () => {
      const recorder = new RecordingRunner(
        await actionInputs({ 'token-url': server.tokenUrl, cache: 'false', ...row.inputs }),
      );
      const before = server.counts.total;
      await run(stepDeps(recorder, { RUNNER_TEMP: runnerTemp }));
      assert.ok(recorder.failed, 'the step failed');
      const errors = recorder.said('error');
      assert.equal(errors.length, 1, `one error line, got ${JSON.stringify(errors)}`);
      const [error = ''] = errors;
      for (const pattern of row.error) assert.match(error, pattern);
      assert.doesNotMatch(error, /fork/, 'no fork hint outside pull requests');
      assert.doesNotMatch(error, /\n/, 'one line');
      assert.equal(server.counts.total - before, 0, 'nothing was sent');
      assert.deepEqual(recorder.state, {}, 'nothing for post to clean up');
      assert.deepEqual(await readdir(runnerTemp), []);
      for (const name of ['password', 'totp', 'totp-secret', 'client-secret']) {
        const secret = row.inputs[name];
        if (!secret || secret.length < 4) continue;
        assert.ok(recorder.secrets.includes(secret), `${name} was masked`);
        for (const line of recorder.lines) assert.ok(!line.text.includes(secret), `${name} shown`);
      }
    });
  }
});
