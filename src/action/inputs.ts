import * as z from 'zod/mini';
import { type AuthProvider, ConfigurationError, checkEndpointUrl } from '../auth/index.ts';
import {
  CREDENTIAL_NAMES,
  type CredentialField,
  GRANT_NAMES,
  grantChoice,
  providerFromCredentials,
  SECRET_FIELDS,
} from '../front/credentials.ts';
import { maskValues } from '../front/masks.ts';
import { LIMITS } from '../front/session-file.ts';
import type { Runner } from './runner.ts';

const optional = () =>
  z.pipe(
    z.string(),
    z.transform((s) => s || undefined),
  );
const flag = z.pipe(
  z.enum(['true', 'True', 'TRUE', 'false', 'False', 'FALSE'], { error: 'expected true or false' }),
  z.transform((s) => s.toLowerCase() === 'true'),
);
const wholeNumber = (limit: keyof typeof LIMITS) => {
  const { min, max, unit } = LIMITS[limit];
  const expected = `expected a whole number of ${unit} from ${min} to ${max}`;
  return z
    .pipe(z.string().check(z.regex(/^\d+$/, expected)), z.transform(Number))
    .check(z.refine((n) => n >= min && n <= max, expected));
};

/** An endpoint that credentials are sent to: https, except on this machine. */
const endpointUrl = (name: string, origin = false) =>
  z.string().check(
    z.superRefine((value, ctx) => {
      try {
        const url = checkEndpointUrl(value, name);
        // GDAL takes a host and the SDKs add the bucket to the path: a path would be lost.
        if (origin && (url.pathname !== '/' || url.search || url.hash)) {
          ctx.addIssue({
            code: 'custom',
            message: `expected a bare origin without a path, got ${url.origin}${url.pathname}`,
          });
        }
      } catch (error) {
        ctx.addIssue({
          code: 'custom',
          message: (error as Error).message.replace(`${name} `, ''),
        });
      }
    }),
  );

/** One entry per action input, keyed by its name in action.yml. */
const InputsSchema = z.object({
  grant: z.pipe(
    z.enum(GRANT_NAMES, { error: `expected ${GRANT_NAMES.join(', ')}` }),
    z.transform(grantChoice),
  ),
  username: optional(),
  password: optional(),
  // Its format is checked once, by PasswordAuth, which the error names this input for.
  totp: optional(),
  'totp-secret': optional(),
  'refresh-token': optional(),
  'client-id': z.string().check(z.minLength(1, 'expected a client id')),
  'client-secret': optional(),
  'token-url': endpointUrl('token-url'),
  'expiry-skew': wholeNumber('expirySkew'),
  cache: flag,
  'cache-key': optional().check(
    z.refine(
      (v) => v === undefined || (v.length <= 200 && !v.includes(',')),
      'expected at most 200 characters and no commas',
    ),
  ),
  'cache-secret': optional(),
  'export-env': flag,
  'output-refresh-token': flag,
  logout: flag,
  timeout: wholeNumber('timeout'),
  'max-attempts': wholeNumber('maxAttempts'),
  scope: optional().check(
    z.refine(
      (v) => v === undefined || /^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/.test(v),
      'expected space-separated scope names (RFC 6749 section 3.3)',
    ),
  ),
  s3: flag,
  's3-keys-url': endpointUrl('s3-keys-url'),
  's3-endpoint': endpointUrl('s3-endpoint', true),
});
export type Inputs = z.output<typeof InputsSchema>;
type InputName = keyof z.input<typeof InputsSchema>;

// The credential names are the input names (and the CLI's flags): one table, in front/.
const FIELD_INPUT: Record<CredentialField | 'grant', InputName> = CREDENTIAL_NAMES;

/** Inputs whose values are secrets: masked before anything else happens, never echoed. */
export const SECRET_INPUTS: readonly InputName[] = [
  ...SECRET_FIELDS.map((field) => FIELD_INPUT[field]),
  'cache-secret',
];

// Inputs whose error message already says what was wrong with the value (checkEndpointUrl's).
const DESCRIBED_INPUTS = new Set(['token-url', 's3-keys-url', 's3-endpoint']);

/** Registers every secret input with the runner's masker, line by line. */
export function maskSecretInputs(runner: Runner): void {
  for (const name of SECRET_INPUTS) maskValue(runner, runner.getInput(name));
}

export function maskValue(runner: Runner, value: string | undefined): void {
  for (const mask of maskValues(value)) runner.setSecret(mask);
}

/** Reads and validates every input. Throws a `ConfigurationError` that names the input. */
export function readInputs(runner: Runner): Inputs {
  const raw = Object.fromEntries(
    Object.keys(InputsSchema.shape).map((name) => [name, runner.getInput(name)]),
  );
  const parsed = InputsSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const name = String(issue?.path[0] ?? 'inputs');
  const isSecret = (SECRET_INPUTS as readonly string[]).includes(name);
  const value = raw[name] ?? '';
  // A non-secret value is echoed so the user sees what was wrong; a secret never is.
  const message = (issue?.message ?? 'invalid value').replace(/\.$/, '');
  const got =
    isSecret || value.length > 200 || DESCRIBED_INPUTS.has(name)
      ? ''
      : value
        ? ` (got '${value}')`
        : ' (it is empty)';
  throw new ConfigurationError(`Input ${name}: ${message}${got}.`);
}

/** The provider the inputs describe; errors name inputs, not library fields. */
export function providerFromInputs(inputs: Inputs): AuthProvider {
  return providerFromCredentials(
    {
      username: inputs.username,
      password: inputs.password,
      totp: inputs.totp,
      totpSecret: inputs['totp-secret'],
      refreshToken: inputs['refresh-token'],
      clientId: inputs['client-id'],
      clientSecret: inputs['client-secret'],
    },
    inputs.grant,
    (field) => FIELD_INPUT[field],
  );
}
