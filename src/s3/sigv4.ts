// AWS Signature Version 4 for the one request this package makes itself (the readiness probe):
// small enough to read in one sitting, so the action does not carry the AWS SDK.
import { createHash, createHmac } from 'node:crypto';

export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

export interface SignInput {
  method: string;
  /** The URL the request goes to, exactly as it will be sent. */
  url: URL;
  /** Further headers to sign (and send); `host` and `x-amz-date` are added. */
  headers?: Record<string, string>;
  accessKeyId: string;
  secretAccessKey: string;
  /** CDSE accepts any region string; its examples use `default`. */
  region: string;
  service?: string;
  /** Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`. Default: the hash of an empty body. */
  payloadHash?: string;
  date: Date;
}

const sha256 = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: string | Buffer, data: string) =>
  createHmac('sha256', key).update(data, 'utf8').digest();

/** SigV4's URI encoding: RFC 3986 unreserved characters stay, the rest is `%XX` in upper case. */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

// A `%` that starts no escape is a literal percent sign, not a reason to fail.
const decode = (text: string) => {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
};

/** S3's canonical URI: each segment decoded and encoded once (S3 is never double-encoded). */
export function canonicalUri(pathname: string): string {
  return (
    pathname
      .split('/')
      .map((segment) => uriEncode(decode(segment)))
      .join('/') || '/'
  );
}

/** Parameters encoded, then sorted by name and value; `+` is a plus sign, not a space. */
export function canonicalQuery(search: string): string {
  return (
    search
      .replace(/^\?/, '')
      .split('&')
      .filter((pair) => pair !== '')
      .map((pair) => {
        const eq = pair.indexOf('=');
        const [name, value] = eq < 0 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)];
        return [uriEncode(decode(name)), uriEncode(decode(value))] as const;
      })
      // By name, then value: sorting the joined `name=value` would put `a-b=` before `a=`.
      .sort(([an, av], [bn, bv]) =>
        an !== bn ? (an < bn ? -1 : 1) : av < bv ? -1 : av > bv ? 1 : 0,
      )
      .map(([name, value]) => `${name}=${value}`)
      .join('&')
  );
}

/**
 * The headers to send with the request, `authorization` included. For service `s3` the payload
 * hash travels as `x-amz-content-sha256`, which S3 requires.
 */
export function signRequest(input: SignInput): Record<string, string> {
  const service = input.service ?? 's3';
  const amzDate = input.date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const payloadHash = input.payloadHash ?? sha256('');
  const headers: Record<string, string> = {
    host: input.url.host,
    'x-amz-date': amzDate,
    ...(service === 's3' && { 'x-amz-content-sha256': payloadHash }),
  };
  for (const [name, value] of Object.entries(input.headers ?? {})) {
    headers[name.toLowerCase()] = value.trim().replace(/\s+/g, ' ');
  }
  const names = Object.keys(headers).sort();
  const canonical = [
    input.method.toUpperCase(),
    canonicalUri(input.url.pathname),
    canonicalQuery(input.url.search),
    names.map((name) => `${name}:${headers[name]}\n`).join(''),
    names.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${day}/${input.region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let key = hmac(`AWS4${input.secretAccessKey}`, day);
  for (const part of [input.region, service, 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  return {
    ...headers,
    authorization: `AWS4-HMAC-SHA256 Credential=${input.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`,
  };
}
