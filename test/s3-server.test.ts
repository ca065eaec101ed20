// The S3 peer, checked by the real AWS SDK: if the SDK's signatures pass and wrong ones fail, the
// peer's SigV4 is S3's, and src/s3/sigv4.ts can be judged against it.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { signRequest, UNSIGNED_PAYLOAD } from '../src/s3/sigv4.ts';
import { passwordLogin, tokensOf } from './fixtures.ts';
import { IdentityServer } from './servers/identity-server.ts';
import { S3KeysServer } from './servers/s3-keys-server.ts';
import { S3Server } from './servers/s3-server.ts';

let identity: IdentityServer;
let keys: S3KeysServer;
let s3: S3Server;
let token: string;
const clock = { ms: Date.now() };

async function login(username: string, password: string): Promise<string> {
  return String((await tokensOf(passwordLogin(identity, username, password))).access_token);
}

async function newPair(): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const res = await fetch(keys.url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { access_id: string; secret: string };
  return { accessKeyId: body.access_id, secretAccessKey: body.secret };
}

function client(credentials: { accessKeyId: string; secretAccessKey: string }): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: 'default',
    credentials,
    maxAttempts: 1,
  });
}

async function s3Error(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof S3ServiceException, String(error));
    return error.name;
  }
  assert.fail('the request succeeded');
}

before(async () => {
  identity = await IdentityServer.start({ users: [{ username: 'alice', password: 'pw-alice' }] });
  keys = await S3KeysServer.start({
    authorize: (token) => identity.userOf(token),
    now: () => clock.ms,
  });
  s3 = await S3Server.start({ secretOf: (id) => keys.secretOf(id) });
  s3.put('Sentinel-2/MSI/L2A/2024/01/01/a.SAFE/manifest.safe', '<manifest/>');
  s3.put('Sentinel-2/MSI/L2A/2024/01/01/b.SAFE/manifest.safe', 'b');
  s3.put('Sentinel-1/readme (1).txt', 'spaces+parens');
  token = await login('alice', 'pw-alice');
});

after(async () => {
  await s3?.close();
  await keys?.close();
  await identity?.close();
});

describe('S3 peer with the AWS SDK', () => {
  test('GetObject, HeadObject and ListObjectsV2 succeed with an issued pair', async () => {
    const sdk = client(await newPair());
    const got = await sdk.send(
      new GetObjectCommand({
        Bucket: 'eodata',
        Key: 'Sentinel-2/MSI/L2A/2024/01/01/a.SAFE/manifest.safe',
      }),
    );
    assert.equal(await got.Body?.transformToString(), '<manifest/>');
    // A key with characters SigV4 must encode once, not twice.
    const head = await sdk.send(
      new HeadObjectCommand({ Bucket: 'eodata', Key: 'Sentinel-1/readme (1).txt' }),
    );
    assert.equal(head.ContentLength, 'spaces+parens'.length);
    const listed = await sdk.send(
      new ListObjectsV2Command({
        Bucket: 'eodata',
        Prefix: 'Sentinel-2/MSI/L2A/2024/01/01/',
        Delimiter: '/',
      }),
    );
    assert.deepEqual(
      listed.CommonPrefixes?.map((p) => p.Prefix),
      ['Sentinel-2/MSI/L2A/2024/01/01/a.SAFE/', 'Sentinel-2/MSI/L2A/2024/01/01/b.SAFE/'],
    );
    assert.equal(listed.KeyCount, 2);
  });

  test('ListObjectsV2 pages with continuation tokens', async () => {
    const sdk = client(await newPair());
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await sdk.send(
        new ListObjectsV2Command({ Bucket: 'eodata', MaxKeys: 1, ContinuationToken: token }),
      );
      seen.push(...(page.Contents ?? []).map((c) => String(c.Key)));
      token = page.NextContinuationToken;
    } while (token !== undefined);
    assert.equal(seen.length, 3);
  });

  test('Range reads answer 206 with the slice', async () => {
    const sdk = client(await newPair());
    const got = await sdk.send(
      new GetObjectCommand({
        Bucket: 'eodata',
        Key: 'Sentinel-1/readme (1).txt',
        Range: 'bytes=0-5',
      }),
    );
    assert.equal(await got.Body?.transformToString(), 'spaces');
  });

  test('a wrong secret is SignatureDoesNotMatch', async () => {
    const pair = await newPair();
    // Another last character (a fixed one would equal the real one once in 64 runs).
    const last = pair.secretAccessKey.endsWith('A') ? 'B' : 'A';
    const sdk = client({ ...pair, secretAccessKey: `${pair.secretAccessKey.slice(0, -1)}${last}` });
    assert.equal(
      await s3Error(sdk.send(new ListObjectsV2Command({ Bucket: 'eodata' }))),
      'SignatureDoesNotMatch',
    );
  });

  test('a deleted key is InvalidAccessKeyId', async () => {
    const pair = await newPair();
    const sdk = client(pair);
    await sdk.send(new ListObjectsV2Command({ Bucket: 'eodata', MaxKeys: 0 }));
    const res = await fetch(`${keys.url}/access_id/${pair.accessKeyId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 204);
    assert.equal(
      await s3Error(sdk.send(new ListObjectsV2Command({ Bucket: 'eodata' }))),
      'InvalidAccessKeyId',
    );
  });

  test('an unknown key, and a key still propagating, are InvalidAccessKeyId', async () => {
    const unknown = client({ accessKeyId: 'A'.repeat(32), secretAccessKey: 'x'.repeat(40) });
    assert.equal(
      await s3Error(unknown.send(new ListObjectsV2Command({ Bucket: 'eodata' }))),
      'InvalidAccessKeyId',
    );
    keys.propagationMs = 5_000;
    try {
      const sdk = client(await newPair());
      assert.equal(
        await s3Error(sdk.send(new ListObjectsV2Command({ Bucket: 'eodata' }))),
        'InvalidAccessKeyId',
      );
      clock.ms += 5_000;
      const listed = await sdk.send(new ListObjectsV2Command({ Bucket: 'eodata', MaxKeys: 0 }));
      assert.equal(listed.KeyCount, 0);
    } finally {
      keys.propagationMs = 0;
    }
  });

  test('missing objects and other buckets are NoSuchKey and NoSuchBucket', async () => {
    const sdk = client(await newPair());
    assert.equal(
      await s3Error(sdk.send(new GetObjectCommand({ Bucket: 'eodata', Key: 'nope' }))),
      'NoSuchKey',
    );
    assert.equal(
      await s3Error(sdk.send(new ListObjectsV2Command({ Bucket: 'other' }))),
      'NoSuchBucket',
    );
  });
});

describe('S3 peer with src/s3/sigv4.ts', () => {
  function send(
    url: URL,
    headers: Record<string, string>,
  ): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'GET', headers }, (res) => {
        let body = '';
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  test('our signer is accepted for an encoded key, a sorted query and UNSIGNED-PAYLOAD', async () => {
    const pair = await newPair();
    for (const [path, payloadHash] of [
      ['/eodata/Sentinel-1/readme%20%281%29.txt', undefined],
      ['/eodata?prefix=Sentinel-1%2F&list-type=2&max-keys=5', undefined],
      ['/eodata?list-type=2&max-keys=0', UNSIGNED_PAYLOAD],
    ] as const) {
      const url = new URL(path, s3.endpoint);
      const headers = signRequest({
        method: 'GET',
        url,
        region: 'default',
        date: new Date(),
        ...pair,
        ...(payloadHash && { payloadHash }),
      });
      const res = await send(url, headers);
      assert.equal(res.status, 200, `${path}: ${res.body}`);
    }
  });

  test('a request changed after signing is SignatureDoesNotMatch', async () => {
    const pair = await newPair();
    const url = new URL('/eodata?list-type=2&max-keys=0', s3.endpoint);
    const headers = signRequest({
      method: 'GET',
      url,
      region: 'default',
      date: new Date(),
      ...pair,
    });
    const res = await send(new URL('/eodata?list-type=2&max-keys=1', s3.endpoint), headers);
    assert.equal(res.status, 403);
    assert.match(res.body, /<Code>SignatureDoesNotMatch<\/Code>/);
  });

  test('a request signed 20 minutes ago is RequestTimeTooSkewed', async () => {
    const pair = await newPair();
    const url = new URL('/eodata?list-type=2&max-keys=0', s3.endpoint);
    const headers = signRequest({
      method: 'GET',
      url,
      region: 'default',
      date: new Date(Date.now() - 20 * 60_000),
      ...pair,
    });
    const res = await send(url, headers);
    assert.equal(res.status, 403);
    assert.match(res.body, /RequestTimeTooSkewed/);
  });
});
