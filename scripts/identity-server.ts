// npm run identity-server: a CDSE-compatible token endpoint on 127.0.0.1 (the tests' own peer),
// for trying `cdse-auth` and the library without a CDSE account or the internet. Prints the
// variables to set in another shell; stops with Ctrl-C.
import { parseArgs } from 'node:util';
import { IdentityServer, randomBase32Secret, totpCode } from '../test/servers/identity-server.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8180' },
    totp: { type: 'boolean', default: false },
    rotate: { type: 'boolean', default: false },
  },
});
const USER = 'demo@example.com';
const PASSWORD = 'demo-password';
const totpSecret = values.totp ? randomBase32Secret() : undefined;

const server = await IdentityServer.start({
  port: Number(values.port),
  users: [{ username: USER, password: PASSWORD, ...(totpSecret && { totpSecret }) }],
  rotateRefreshTokens: values.rotate,
});

const lines = [
  `A CDSE-like identity server is listening at ${server.origin} (Ctrl-C stops it).`,
  'Try the CLI against it from another shell in this folder:',
  '',
  `  export CDSE_TOKEN_URL='${server.tokenUrl}'`,
  `  export CDSE_USERNAME='${USER}' CDSE_PASSWORD='${PASSWORD}'`,
  ...(totpSecret ? [`  export CDSE_TOTP_SECRET='${totpSecret}'`] : []),
  `  export CDSE_CREDENTIALS_FILE="$PWD/.cdse-demo/credentials.json"`,
  '  node dist/cli/index.js login && node dist/cli/index.js status',
  '  node dist/cli/index.js token',
  '',
  'Options: --port N, --totp (the user needs a TOTP code; the secret is printed above),',
  '--rotate (refresh tokens are single-use, as Keycloak can be configured).',
];
process.stdout.write(`${lines.join('\n')}\n`);
if (totpSecret) process.stdout.write(`(The current code would be ${totpCode(totpSecret)}.)\n`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    server.close().finally(() => process.exit(0));
  });
}
