// A new key pair is unknown to the S3 endpoints for a while (propagation). Rather than sleep a
// guessed time, ask S3 with the pair until it is recognised: the wait is as long as the actual
// delay, and bounded.
import { setTimeout as delay } from 'node:timers/promises';
import { type Dispatcher, getGlobalDispatcher, request } from 'undici';
import { checkEndpointUrl } from '../auth/endpoint.ts';
import { DEFAULT_REGION } from './environment.ts';
import { signRequest } from './sigv4.ts';

/** What one probe learnt: an HTTP status and S3's error code, or a network fault. */
export interface ProbeAnswer {
  status: number;
  /** S3's `<Code>` for an error answer, e.g. `InvalidAccessKeyId`. */
  code?: string;
}

export interface WaitOptions {
  /** Give up after this long. Default 30 s. */
  deadlineMs?: number;
  sleep?: (ms: number) => Promise<unknown>;
  now?: () => number;
}

export interface ReadyResult {
  /** The pair was recognised; false when the deadline passed first. */
  usable: boolean;
  probes: number;
  waitedMs: number;
  /** The last answer, for a message when the pair never became usable. */
  last?: ProbeAnswer;
}

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 2_000;

/**
 * Not known yet: S3 refuses the key (every 403, as CDSE lets any user list `eodata`). Network
 * faults, 429 and 5xx say nothing about the key either, so they are asked again too.
 */
const notYetKnown = (answer: ProbeAnswer | undefined) =>
  answer === undefined ||
  answer.status === 403 ||
  answer.status === 429 ||
  answer.status >= 500 ||
  answer.code === 'InvalidAccessKeyId';

/**
 * Calls `probe` until it answers something that shows the key is known, with
 * backoff from 250 ms growing by half up to 2 s, never past the deadline. Does not throw: whether
 * a pair that is still unknown fails the job is the caller's call.
 */
export async function waitUntilUsable(
  probe: () => Promise<ProbeAnswer>,
  options: WaitOptions = {},
): Promise<ReadyResult> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? delay;
  const deadline = options.deadlineMs ?? 30_000;
  const start = now();
  let pause = FIRST_DELAY_MS;
  for (let probes = 1; ; probes++) {
    let last: ProbeAnswer | undefined;
    try {
      last = await probe();
    } catch {
      last = undefined;
    }
    const waitedMs = now() - start;
    const result = { probes, waitedMs, ...(last !== undefined && { last }) };
    if (!notYetKnown(last)) return { usable: true, ...result };
    const left = deadline - waitedMs;
    if (left <= 0) return { usable: false, ...result };
    await sleep(Math.min(pause, left));
    pause = Math.min(MAX_DELAY_MS, pause * 1.5);
  }
}

export interface ProbeOptions {
  accessKeyId: string;
  secretAccessKey: string;
  endpoint: string;
  bucket?: string;
  region?: string;
  dispatcher?: Dispatcher;
  timeoutMs?: number;
}

const MAX_ERROR_BODY = 16 * 1024;

/**
 * The cheapest signed request that tells a known key from an unknown one: ListObjectsV2 with
 * max-keys=0 (a HEAD would carry no error code to tell the reasons for a 403 apart).
 */
export function s3Probe(options: ProbeOptions): () => Promise<ProbeAnswer> {
  const base = checkEndpointUrl(options.endpoint, 's3-endpoint');
  const url = new URL(`/${options.bucket ?? 'eodata'}?list-type=2&max-keys=0`, base);
  return async () => {
    const headers = signRequest({
      method: 'GET',
      url,
      accessKeyId: options.accessKeyId,
      secretAccessKey: options.secretAccessKey,
      region: options.region ?? DEFAULT_REGION,
      date: new Date(),
    });
    const response = await request(url, {
      method: 'GET',
      headers,
      dispatcher: options.dispatcher ?? getGlobalDispatcher(),
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    let text = '';
    for await (const chunk of response.body) {
      text += chunk.toString('utf8');
      if (text.length > MAX_ERROR_BODY) {
        response.body.destroy();
        break;
      }
    }
    // Only a code from a closed set of characters: it may end up in a message.
    const code = /<Code>([A-Za-z0-9]{1,64})<\/Code>/.exec(text)?.[1];
    return { status: response.statusCode, ...(code !== undefined && { code }) };
  };
}
