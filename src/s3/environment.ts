// The one table from a key pair to what S3 tools read: the AWS SDKs and CLI
// (AWS_ENDPOINT_URL_S3, AWS_REGION) and GDAL's /vsis3/ (AWS_S3_ENDPOINT as host only, path-style,
// https switch). The action's outputs, `cdse-auth s3` and `--json` all print from this table.
import { checkEndpointUrl } from '../auth/endpoint.ts';
import { ConfigurationError } from '../auth/errors.ts';
import { AccessKeyId, SecretAccessKey } from './keys.ts';

export const DEFAULT_S3_ENDPOINT = 'https://eodata.dataspace.copernicus.eu';
/** Any region string works at CDSE; this is the one its own examples use. */
export const DEFAULT_REGION = 'default';

export interface S3Settings {
  accessKeyId: string;
  secretAccessKey: string;
  endpoint: string;
}

// A type alias, not an interface: it must pass as a `Record<string, string>` to exportLines.
export type S3Variables = {
  AWS_ACCESS_KEY_ID: string;
  AWS_SECRET_ACCESS_KEY: string;
  AWS_ENDPOINT_URL_S3: string;
  /** Only when the environment names no region: a user's choice wins. */
  AWS_REGION?: string;
  AWS_S3_ENDPOINT: string;
  AWS_VIRTUAL_HOSTING: 'FALSE';
  AWS_HTTPS: 'YES' | 'NO';
};

/**
 * The variables for one key pair. The endpoint must be an origin (GDAL takes a host, not a URL
 * with a path), over https except on this machine; the key pair must be what the keys manager
 * may hand out, so no value can break a shell line or a runner command.
 */
export function s3Environment(
  settings: S3Settings,
  env: Record<string, string | undefined> = process.env,
): S3Variables {
  const url = checkEndpointUrl(settings.endpoint, 's3-endpoint');
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new ConfigurationError(
      `s3-endpoint must be a bare https:// origin without a path, got ${url.origin}${url.pathname === '/' ? '' : ' with a path'}.`,
    );
  }
  if (!AccessKeyId.safeParse(settings.accessKeyId).success) {
    throw new ConfigurationError('The S3 access key id is malformed.');
  }
  if (!SecretAccessKey.safeParse(settings.secretAccessKey).success) {
    throw new ConfigurationError('The S3 secret access key is malformed.');
  }
  const regionSet = !!env.AWS_REGION || !!env.AWS_DEFAULT_REGION;
  return {
    AWS_ACCESS_KEY_ID: settings.accessKeyId,
    AWS_SECRET_ACCESS_KEY: settings.secretAccessKey,
    AWS_ENDPOINT_URL_S3: url.origin,
    ...(!regionSet && { AWS_REGION: DEFAULT_REGION }),
    // `host` keeps a non-default port, which GDAL needs as much as the name.
    AWS_S3_ENDPOINT: url.host,
    AWS_VIRTUAL_HOSTING: 'FALSE',
    AWS_HTTPS: url.protocol === 'https:' ? 'YES' : 'NO',
  };
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** POSIX single quotes keep everything literal; a quote itself is closed, escaped and reopened. */
export const shellQuote = (value: string): string => `'${value.replaceAll("'", `'\\''`)}'`;

/** `export NAME='value'` lines for `eval "$(cdse-auth s3)"`, in the table's order. */
export function exportLines(vars: Readonly<Record<string, string | undefined>>): string {
  return Object.entries(vars)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => {
      if (!NAME.test(name)) throw new ConfigurationError(`Not a variable name: ${name}.`);
      return `export ${name}=${shellQuote(value)}\n`;
    })
    .join('');
}

/** The same table as one JSON object (`cdse-auth s3 --json`). */
export function jsonForm(vars: Readonly<Record<string, string | undefined>>): string {
  return `${JSON.stringify(vars, null, 2)}\n`;
}
