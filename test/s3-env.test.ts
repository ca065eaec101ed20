import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ConfigurationError } from '../src/auth/errors.ts';
import { exportLines, jsonForm, s3Environment } from '../src/s3/environment.ts';
import { createKeyPair } from '../src/s3/keys.ts';
import { passwordLogin, tokensOf } from './fixtures.ts';
import { IdentityServer } from './servers/identity-server.ts';
import { S3KeysServer } from './servers/s3-keys-server.ts';
import { S3Server } from './servers/s3-server.ts';

const run = promisify(execFile);
const pair = { accessKeyId: 'abc123', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

describe('s3Environment', () => {
  test('CDSE: every variable by value', () => {
    assert.deepEqual(
      s3Environment({ ...pair, endpoint: 'https://eodata.dataspace.copernicus.eu' }, {}),
      {
        AWS_ACCESS_KEY_ID: 'abc123',
        AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
        AWS_ENDPOINT_URL_S3: 'https://eodata.dataspace.copernicus.eu',
        AWS_REGION: 'default',
        AWS_S3_ENDPOINT: 'eodata.dataspace.copernicus.eu',
        AWS_VIRTUAL_HOSTING: 'FALSE',
        AWS_HTTPS: 'YES',
      },
    );
  });

  test('GDAL gets host[:port] only; https YES, http loopback NO', () => {
    const at = (endpoint: string) => s3Environment({ ...pair, endpoint }, {});
    assert.equal(
      at('https://eodata.ams.dataspace.copernicus.eu/').AWS_S3_ENDPOINT,
      'eodata.ams.dataspace.copernicus.eu',
    );
    assert.equal(
      at('https://eodata.ams.dataspace.copernicus.eu/').AWS_ENDPOINT_URL_S3,
      'https://eodata.ams.dataspace.copernicus.eu',
    );
    assert.equal(at('https://s3.example:8443').AWS_S3_ENDPOINT, 's3.example:8443');
    assert.equal(at('https://s3.example:443').AWS_S3_ENDPOINT, 's3.example');
    const local = at('http://127.0.0.1:9000');
    assert.equal(local.AWS_S3_ENDPOINT, '127.0.0.1:9000');
    assert.equal(local.AWS_HTTPS, 'NO');
    assert.equal(local.AWS_ENDPOINT_URL_S3, 'http://127.0.0.1:9000');
  });

  test('a region the user set wins', () => {
    for (const env of [{ AWS_REGION: 'eu-central-1' }, { AWS_DEFAULT_REGION: 'x' }]) {
      const vars = s3Environment(
        { ...pair, endpoint: 'https://eodata.dataspace.copernicus.eu' },
        env,
      );
      assert.equal('AWS_REGION' in vars, false);
    }
    const empty = s3Environment(
      { ...pair, endpoint: 'https://eodata.dataspace.copernicus.eu' },
      { AWS_REGION: '' },
    );
    assert.equal(empty.AWS_REGION, 'default');
  });

  test('unusable endpoints and key pairs are refused', () => {
    for (const endpoint of [
      'http://eodata.dataspace.copernicus.eu',
      'https://eodata.dataspace.copernicus.eu/eodata',
      'https://user:pw@eodata.dataspace.copernicus.eu',
      'https://eodata.dataspace.copernicus.eu/?x=1',
      'eodata.dataspace.copernicus.eu',
    ]) {
      assert.throws(() => s3Environment({ ...pair, endpoint }, {}), ConfigurationError, endpoint);
    }
    const endpoint = 'https://eodata.dataspace.copernicus.eu';
    for (const bad of [
      { accessKeyId: 'a\nb' },
      { secretAccessKey: "x' ; rm -rf ~ '" },
      { accessKeyId: '' },
    ]) {
      assert.throws(
        () => s3Environment({ ...pair, ...bad, endpoint }, {}),
        (error: Error) => {
          assert.ok(error instanceof ConfigurationError);
          assert.ok(!error.message.includes('rm -rf'));
          return true;
        },
      );
    }
  });

  test('the JSON form is the same table', () => {
    const vars = s3Environment({ ...pair, endpoint: 'https://eodata.dataspace.copernicus.eu' }, {});
    assert.deepEqual(JSON.parse(jsonForm(vars)), vars);
  });
});

describe('exportLines', () => {
  const hostile = [
    "it's",
    'two  spaces and a "double" quote',
    "'''",
    '$HOME `id` $(id) \\n \\ ; & | > < * ? ~ ! #',
    "end with a quote'",
    'line\nbreak',
  ];

  for (const shell of ['bash', 'sh']) {
    test(`values round-trip through ${shell} eval`, async () => {
      for (const secret of hostile) {
        const lines = exportLines({ AWS_SECRET_ACCESS_KEY: secret, AWS_REGION: undefined });
        const { stdout } = await run(
          shell,
          ['-c', 'eval "$LINES"; printf %s "$AWS_SECRET_ACCESS_KEY"'],
          {
            env: { PATH: process.env.PATH, LINES: lines },
          },
        );
        assert.equal(stdout, secret);
      }
    });
  }

  test('one export line per set variable, in the table order', () => {
    const vars = s3Environment({ ...pair, endpoint: 'https://eodata.dataspace.copernicus.eu' }, {});
    const lines = exportLines(vars).split('\n').filter(Boolean);
    assert.equal(lines.length, 7);
    assert.equal(lines[0], "export AWS_ACCESS_KEY_ID='abc123'");
    assert.equal(lines[4], "export AWS_S3_ENDPOINT='eodata.dataspace.copernicus.eu'");
  });

  test('a name that is not a shell name is refused', () => {
    assert.throws(() => exportLines({ 'A;id': 'x' }), ConfigurationError);
    assert.throws(() => exportLines({ '1A': 'x' }), ConfigurationError);
  });
});

describe('an SDK configured only from the environment', () => {
  let identity: IdentityServer;
  let keys: S3KeysServer;
  let s3: S3Server;
  let token: string;

  before(async () => {
    identity = await IdentityServer.start({ users: [{ username: 'alice', password: 'pw-alice' }] });
    keys = await S3KeysServer.start({
      authorize: (token) => identity.userOf(token),
    });
    s3 = await S3Server.start({ secretOf: (id) => keys.secretOf(id) });
    s3.put('Sentinel-2/MSI/L1C/2024/05/01/S2A.SAFE/manifest.safe', 'manifest bytes');
    token = String((await tokensOf(passwordLogin(identity, 'alice', 'pw-alice'))).access_token);
  });

  after(async () => {
    await s3?.close();
    await keys?.close();
    await identity?.close();
  });

  // No credentials, endpoint or region in code: all of it must come from the variables.
  const script = `
    import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
    const s3 = new S3Client({ forcePathStyle: true });
    const list = await s3.send(new ListObjectsV2Command({ Bucket: 'eodata', Prefix: 'Sentinel-2/' }));
    const key = list.Contents[0].Key;
    const got = await s3.send(new GetObjectCommand({ Bucket: 'eodata', Key: key }));
    process.stdout.write(JSON.stringify({ key, body: await got.Body.transformToString() }));
  `;

  async function child(extra: Record<string, string>) {
    const pair = await createKeyPair(keys.url, token);
    const vars = s3Environment({ ...pair, endpoint: s3.endpoint }, extra);
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url),
      env: {
        PATH: process.env.PATH,
        // Keep a developer's ~/.aws and instance metadata out of the picture.
        AWS_CONFIG_FILE: '/nonexistent/config',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
        AWS_EC2_METADATA_DISABLED: 'true',
        ...extra,
        ...vars,
      },
    });
    return { pair, result: JSON.parse(stdout) as { key: string; body: string } };
  }

  test('lists and gets an object from the S3 peer, signed with the pair and region default', async () => {
    const { pair, result } = await child({});
    assert.deepEqual(result, {
      key: 'Sentinel-2/MSI/L1C/2024/05/01/S2A.SAFE/manifest.safe',
      body: 'manifest bytes',
    });
    const seen = s3.requests.slice(-2);
    assert.deepEqual(
      seen.map((r) => [r.status, r.accessKeyId, r.region]),
      [
        [200, pair.accessKeyId, 'default'],
        [200, pair.accessKeyId, 'default'],
      ],
    );
  });

  test("the user's own AWS_REGION is kept and used", async () => {
    await child({ AWS_REGION: 'eu-central-1' });
    assert.equal(s3.requests.at(-1)?.region, 'eu-central-1');
  });
});
