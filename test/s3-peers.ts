// What the S3 tests share: the identity, keys-manager and S3 peers wired together (the keys
// peer knows users through the identity peer's tokens, the S3 peer knows keys through the keys
// peer), a runner that keeps one transcript in the order a job log would show it, and the AWS
// SDK script that later steps run.
import { RecordingRunner } from './fixtures.ts';
import { displayedLines } from './leaks.ts';
import { IdentityServer } from './servers/identity-server.ts';
import { S3KeysServer, type S3KeysServerOptions } from './servers/s3-keys-server.ts';
import { S3Server } from './servers/s3-server.ts';

export const USER = 'alice';
export const PASSWORD = 'pw-alice%=& "s3"';
export const OBJECT_KEY = 'Sentinel-2/MSI/L2A/2025/06/01/S2A.SAFE/manifest.safe';
export const OBJECT_BODY = 'manifest bytes';

export interface Peers {
  identity: IdentityServer;
  keys: S3KeysServer;
  s3: S3Server;
  close(): Promise<void>;
}

export async function startPeers(options: Partial<S3KeysServerOptions> = {}): Promise<Peers> {
  const identity = await IdentityServer.start({ users: [{ username: USER, password: PASSWORD }] });
  const keys = await S3KeysServer.start({
    authorize: (token) => identity.userOf(token),
    ...options,
  });
  const s3 = await S3Server.start({ secretOf: (id) => keys.secretOf(id) });
  s3.put(OBJECT_KEY, OBJECT_BODY);
  return {
    identity,
    keys,
    s3,
    close: async () => {
      await Promise.all([s3.close(), keys.close(), identity.close()]);
    },
  };
}

/** The action's inputs for the peers (cache off unless given). */
export const peerInputs = (peers: Peers, inputs: Record<string, string> = {}) => ({
  username: USER,
  password: PASSWORD,
  'token-url': peers.identity.tokenUrl,
  's3-keys-url': peers.keys.url,
  's3-endpoint': peers.s3.endpoint,
  cache: 'false',
  ...inputs,
});

/** A RecordingRunner that also writes the job log as the runner would: masks inline, in order. */
export class TranscriptRunner extends RecordingRunner {
  readonly transcript: string[] = [];

  override setSecret(value: string): void {
    super.setSecret(value);
    this.transcript.push(`::add-mask::${value}`);
  }
  override info(text: string): void {
    super.info(text);
    this.transcript.push(text);
  }
  override debug(text: string): void {
    super.debug(text);
    this.transcript.push(`::debug::${text}`);
  }
  override notice(text: string): void {
    super.notice(text);
    this.transcript.push(`::notice::${text}`);
  }
  override warning(text: string): void {
    super.warning(text);
    this.transcript.push(`::warning::${text}`);
  }
  override setFailed(text: string): void {
    super.setFailed(text);
    this.transcript.push(`::error::${text}`);
  }
  override startGroup(text: string): void {
    super.startGroup(text);
    this.transcript.push(`::group::${text}`);
  }

  /** The log as displayed, masks applied. */
  get shown(): string[] {
    return displayedLines([this.transcript.join('\n')]);
  }
}

/**
 * A later step's program: the real AWS SDK, configured from the environment only (no
 * credentials, endpoint or region in code), lists the bucket and gets the first object.
 */
export const SDK_SCRIPT = `
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
const s3 = new S3Client({ forcePathStyle: true });
const list = await s3.send(new ListObjectsV2Command({ Bucket: 'eodata', Prefix: 'Sentinel-2/' }));
const key = list.Contents[0].Key;
const got = await s3.send(new GetObjectCommand({ Bucket: 'eodata', Key: key }));
process.stdout.write(JSON.stringify({ key, body: await got.Body.transformToString() }));
`;

/** Keeps a developer's ~/.aws and instance metadata out of an SDK run. */
export const SDK_ISOLATION = {
  AWS_CONFIG_FILE: '/nonexistent/config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
  AWS_EC2_METADATA_DISABLED: 'true',
};
