import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalQuery, canonicalUri, signRequest, uriEncode } from '../src/s3/sigv4.ts';

const signature = (headers: Record<string, string>) =>
  /Signature=([0-9a-f]{64})$/.exec(headers.authorization ?? '')?.[1];

describe('SigV4 signer against AWS published vectors', () => {
  test('get-vanilla (AWS SigV4 test suite)', () => {
    const headers = signRequest({
      method: 'GET',
      url: new URL('https://example.amazonaws.com/'),
      accessKeyId: 'AKIDEXAMPLE',
      secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      region: 'us-east-1',
      service: 'service',
      date: new Date('2015-08-30T12:36:00Z'),
    });
    assert.equal(
      headers.authorization,
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
    assert.equal(headers['x-amz-date'], '20150830T123600Z');
    assert.equal(headers['x-amz-content-sha256'], undefined);
  });

  const s3Example = {
    accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    region: 'us-east-1',
    date: new Date('2013-05-24T00:00:00Z'),
  };

  test('S3 GetObject with Range (S3 SigV4 header-auth example)', () => {
    const headers = signRequest({
      ...s3Example,
      method: 'GET',
      url: new URL('https://examplebucket.s3.amazonaws.com/test.txt'),
      headers: { Range: 'bytes=0-9' },
    });
    assert.match(
      headers.authorization ?? '',
      /SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,/,
    );
    assert.equal(
      signature(headers),
      'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
    assert.equal(
      headers['x-amz-content-sha256'],
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  test('S3 ListObjects with a query (S3 SigV4 header-auth example)', () => {
    const headers = signRequest({
      ...s3Example,
      method: 'GET',
      url: new URL('https://examplebucket.s3.amazonaws.com/?prefix=J&max-keys=2'),
    });
    assert.equal(
      signature(headers),
      '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
    );
  });
});

describe('SigV4 canonical forms for S3', () => {
  test('encodes once, upper-case hex, unreserved characters kept', () => {
    assert.equal(uriEncode("a b+c/d~e!'()*"), 'a%20b%2Bc%2Fd~e%21%27%28%29%2A');
    assert.equal(canonicalUri('/eodata/a%20b/c(1).txt'), '/eodata/a%20b/c%281%29.txt');
    // Already encoded is not encoded again.
    assert.equal(canonicalUri('/eodata/%2541'), '/eodata/%2541');
    assert.equal(canonicalUri(''), '/');
  });

  test('query sorted by name then value; empty values kept; + is a plus', () => {
    assert.equal(canonicalQuery('?b=2&a-b=1&a=3&a=1&list-type'), 'a=1&a=3&a-b=1&b=2&list-type=');
    assert.equal(canonicalQuery('?prefix=a+b%2Fc'), 'prefix=a%2Bb%2Fc');
    assert.equal(canonicalQuery(''), '');
  });
});
