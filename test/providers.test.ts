import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inspect } from 'node:util';
import {
  ClientCredentialsAuth,
  ConfigurationError,
  DEFAULT_CLIENT_ID,
  PasswordAuth,
  RefreshTokenAuth,
} from '../src/auth/index.ts';
import { providerFromCredentials } from '../src/front/credentials.ts';
import { randomBase32Secret, totpCode } from './servers/identity-server.ts';

describe('providers build only form fields', () => {
  test('password grant', () => {
    const auth = new PasswordAuth('alice@example.com', 'pw');
    assert.deepEqual(auth.grantData(), {
      grant_type: 'password',
      client_id: DEFAULT_CLIENT_ID,
      username: 'alice@example.com',
      password: 'pw',
    });
    assert.equal(auth.canReauthenticate, true);
    assert.equal(auth.clientSecret, undefined);
  });

  test('password grant with a one-time code cannot log in again', () => {
    const auth = new PasswordAuth('a', 'pw', { totp: '123456' });
    assert.equal(auth.grantData().totp, '123456');
    assert.equal(auth.canReauthenticate, false);
  });

  test('a TOTP secret makes the current RFC 6238 code, and the next step for a second login', () => {
    const secret = randomBase32Secret();
    let now = Date.UTC(2026, 0, 1, 0, 0, 10);
    const auth = new PasswordAuth('a', 'pw', { totpSecret: secret, now: () => now });
    assert.equal(auth.grantData().totp, totpCode(secret, now));
    // Same 30 s step again: Keycloak refuses a reused code, so the next step's code is sent.
    assert.equal(auth.grantData().totp, totpCode(secret, now + 30_000));
    now += 120_000;
    assert.equal(auth.grantData().totp, totpCode(secret, now));
    assert.equal(auth.canReauthenticate, true);
  });

  test('TOTP secrets as authenticator apps show them, and as otpauth:// URIs', () => {
    const secret = randomBase32Secret();
    const now = Date.UTC(2026, 5, 1);
    const spaced = secret.toLowerCase().replace(/(.{4})/g, '$1 ');
    const uri = `otpauth://totp/CDSE:alice?secret=${secret}&issuer=CDSE&period=30&digits=6`;
    for (const form of [spaced, uri]) {
      const auth = new PasswordAuth('a', 'pw', { totpSecret: form, now: () => now });
      assert.equal(auth.grantData().totp, totpCode(secret, now));
    }
  });

  test('malformed TOTP input is a ConfigurationError that does not echo the secret', () => {
    for (const totpSecret of [
      'not base32!',
      'otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=1',
      'ABC',
    ]) {
      assert.throws(
        () => new PasswordAuth('a', 'pw', { totpSecret }),
        (e: Error) => e instanceof ConfigurationError && !e.message.includes(totpSecret),
      );
    }
    assert.throws(() => new PasswordAuth('a', 'pw', { totp: '12ab56' }), ConfigurationError);
    assert.throws(
      () => new PasswordAuth('a', 'pw', { totp: '123456', totpSecret: randomBase32Secret() }),
      ConfigurationError,
    );
  });

  test('refresh-token grant cannot log in again', () => {
    const auth = new RefreshTokenAuth('rt-1', { clientId: 'c' });
    assert.deepEqual(auth.grantData(), {
      grant_type: 'refresh_token',
      client_id: 'c',
      refresh_token: 'rt-1',
    });
    assert.equal(auth.canReauthenticate, false);
  });

  test('client credentials carry the secret and can always log in again', () => {
    const auth = new ClientCredentialsAuth('sh-1', 's3cret');
    assert.deepEqual(auth.grantData(), {
      grant_type: 'client_credentials',
      client_id: 'sh-1',
      client_secret: 's3cret',
    });
    assert.equal(auth.clientSecret, 's3cret');
    assert.equal(auth.canReauthenticate, true);
  });

  test('secrets stay out of JSON and inspect output', () => {
    const auth = new PasswordAuth('alice', 'hunter2-secret', { totpSecret: randomBase32Secret() });
    const client = new ClientCredentialsAuth('sh-1', 'client-secret-value');
    assert.doesNotMatch(JSON.stringify(auth) + inspect(auth), /hunter2-secret/);
    assert.doesNotMatch(JSON.stringify(client) + inspect(client), /client-secret-value/);
  });
});

describe('providerFromCredentials picks the grant', () => {
  test('auto picks the one kind of credential that is set', () => {
    assert.ok(providerFromCredentials({ username: 'u', password: 'p' }) instanceof PasswordAuth);
    assert.ok(
      providerFromCredentials({ clientId: 'sh-1', clientSecret: 's' }) instanceof
        ClientCredentialsAuth,
    );
    assert.ok(providerFromCredentials({ refreshToken: 'r' }) instanceof RefreshTokenAuth);
  });

  test('ambiguous or missing credentials name the fields through the label', () => {
    const label = (f: string) => `--${f}`;
    assert.throws(
      () =>
        providerFromCredentials(
          { password: 'p', clientSecret: 's', clientId: 'sh' },
          'auto',
          label,
        ),
      /--password, --clientSecret/,
    );
    assert.throws(
      () => providerFromCredentials({}, 'auto', label),
      /No credentials: set --username/,
    );
    assert.throws(
      () => providerFromCredentials({ username: 'u' }, 'auto', label),
      /needs --password/,
    );
    assert.throws(
      () => providerFromCredentials({ clientSecret: 's' }, 'client_credentials', label),
      /needs --clientId/,
    );
  });
});
