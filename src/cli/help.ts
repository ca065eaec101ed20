// `cdse-auth help <command>` and `cdse-auth <command> --help`: what one command does and which
// options matter to it. The full list of options and variables is in the general usage text.

const CREDENTIALS =
  '--username/--password (+ --totp-secret or --totp), --client-id/--client-secret, or --refresh-token';

export const COMMAND_HELP = {
  login: `Usage: cdse-auth login [credentials] [--grant G] [--token-url URL] [--scope S]

Logs in and saves the session in the credentials file (0600). On a terminal it asks for what
is missing: the user name, the password (not echoed), then a 2FA code. It ends the session it
replaces, because CDSE allows 100 sessions per user.
Credentials: ${CREDENTIALS}, or their CDSE_* variables.`,
  token: `Usage: cdse-auth token [--credentials-file PATH]

Prints an access token that is valid now, and nothing else on stdout. A valid saved token is
printed as it is; one due for renewal is refreshed first (one process at a time per file).
Without credentials it only carries on the saved session; with them it can log in again.`,
  header: `Usage: cdse-auth header [--openeo] [--credentials-file PATH]

Prints "Bearer <access token>", for curl -H "Authorization: $(cdse-auth header)".
--openeo prints "Bearer oidc/CDSE/<access token>", the form openEO back ends expect.`,
  status: `Usage: cdse-auth status [--credentials-file PATH]

Prints the saved session as JSON: expiry times, token URL, client id, session id, whether it
came from the workflow cache, how many token requests it took. No secrets. Exit 1 when there
is no live session.`,
  logout: `Usage: cdse-auth logout [--credentials-file PATH]

Ends the CDSE session (Keycloak logout: only this session), deletes the S3 key pair this login
created, and deletes the saved credentials.`,
  s3: `Usage: cdse-auth s3 [--json] | cdse-auth s3 list | cdse-auth s3 delete ID | --all-created

s3         prints export lines for eodata S3 (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
           AWS_ENDPOINT_URL_S3, and GDAL's variables): eval "$(cdse-auth s3)". It creates a key
           pair once, with the saved session, and keeps it with the login. --json: one object.
s3 list    the user's key pairs: id and expiry, never a secret.
s3 delete  deletes one key pair by id, or (--all-created) the one this login created.
Options: --s3-keys-url URL (CDSE_S3_KEYS_URL), --s3-endpoint URL (CDSE_S3_ENDPOINT).`,
} as const;

export type HelpTopic = keyof typeof COMMAND_HELP;
export const isHelpTopic = (name: string | undefined): name is HelpTopic =>
  name !== undefined && Object.hasOwn(COMMAND_HELP, name);
