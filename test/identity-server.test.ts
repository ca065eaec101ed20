import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import {
  IdentityServer,
  type IdentityServerOptions,
  randomBase32Secret,
  totpCode,
} from './servers/identity-server.ts';

const START = Date.UTC(2025, 0, 1, 12, 0, 10);
const SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const SCOPE = 'AUDIENCE_PUBLIC email profile user-context';

interface Harness {
  server: IdentityServer;
  clock: { ms: number };
}

async function harness(options: IdentityServerOptions = {}): Promise<Harness> {
  const clock = { ms: START };
  const server = await IdentityServer.start({
    users: [
      { username: 'alice', password: 'pw-alice' },
      { username: 'bob', password: 'pw-bob', totpSecret: SECRET },
    ],
    clients: [
      { clientId: 'cdse-public' },
      { clientId: 'conf', clientSecret: 'conf-secret' },
      { clientId: 'sh-svc', clientSecret: 'svc-secret', serviceAccount: true },
    ],
    now: () => clock.ms,
    ...options,
  });
  return { server, clock };
}

function post(
  url: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, { method: 'POST', headers, body: new URLSearchParams(fields) });
}

async function body(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

function login(server: IdentityServer, extra: Record<string, string> = {}): Promise<Response> {
  return post(server.tokenUrl, {
    grant_type: 'password',
    username: 'alice',
    password: 'pw-alice',
    client_id: 'cdse-public',
    ...extra,
  });
}

async function loginTokens(server: IdentityServer): Promise<Record<string, unknown>> {
  const res = await login(server);
  assert.equal(res.status, 200);
  return body(res);
}

function refresh(server: IdentityServer, token: unknown, extra: Record<string, string> = {}) {
  return post(server.tokenUrl, {
    grant_type: 'refresh_token',
    refresh_token: String(token),
    client_id: 'cdse-public',
    ...extra,
  });
}

async function expectError(
  res: Response,
  status: number,
  error: string,
  description?: string,
): Promise<void> {
  assert.equal(res.status, status);
  const json = await body(res);
  assert.equal(json.error, error);
  if (description !== undefined) assert.equal(json.error_description, description);
}

function jwtPayload(token: unknown): Record<string, unknown> {
  assert.equal(typeof token, 'string');
  const parts = String(token).split('.');
  assert.equal(parts.length, 3);
  for (const part of parts) assert.match(part, /^[A-Za-z0-9_-]+$/);
  return JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8'));
}

function basic(id: string, secret: string): Record<string, string> {
  const raw = `${encodeURIComponent(id)}:${encodeURIComponent(secret)}`;
  return { authorization: `Basic ${Buffer.from(raw).toString('base64')}` };
}

describe('totpCode', () => {
  it('matches the RFC 6238 appendix B SHA1 vectors (last 6 digits)', () => {
    const vectors: Array<[number, string]> = [
      [59, '94287082'],
      [1111111109, '07081804'],
      [1111111111, '14050471'],
      [1234567890, '89005924'],
      [2000000000, '69279037'],
      [20000000000, '65353130'],
    ];
    for (const [seconds, eight] of vectors) {
      assert.equal(totpCode(SECRET, seconds * 1000), eight.slice(2));
    }
    assert.equal(totpCode(SECRET, 59_000), '287082');
    assert.equal(totpCode(SECRET.toLowerCase(), 59_000), '287082');
  });

  it('changes every 30 s step and rejects invalid secrets', () => {
    assert.equal(totpCode(SECRET, 30_000), totpCode(SECRET, 59_999));
    assert.notEqual(totpCode(SECRET, 59_999), totpCode(SECRET, 60_000));
    assert.throws(() => totpCode('not base32!'));
  });

  it('randomBase32Secret gives distinct 160-bit base32 secrets', () => {
    const a = randomBase32Secret();
    const b = randomBase32Secret();
    assert.match(a, /^[A-Z2-7]{32}$/);
    assert.notEqual(a, b);
    assert.match(totpCode(a), /^\d{6}$/);
  });
});

describe('IdentityServer', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(() => h.server.close());

  it('exposes CDSE-shaped URLs on 127.0.0.1', () => {
    assert.match(h.server.origin, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(h.server.issuer, `${h.server.origin}/auth/realms/CDSE`);
    assert.equal(h.server.tokenUrl, `${h.server.issuer}/protocol/openid-connect/token`);
    assert.equal(h.server.logoutUrl, `${h.server.issuer}/protocol/openid-connect/logout`);
  });

  it('password grant returns the Keycloak success shape with unique JWT-like tokens', async () => {
    const res = await login(h.server);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const json = await body(res);
    assert.deepEqual(Object.keys(json).sort(), [
      'access_token',
      'expires_in',
      'not-before-policy',
      'refresh_expires_in',
      'refresh_token',
      'scope',
      'session_state',
      'token_type',
    ]);
    assert.equal(json.expires_in, 600);
    assert.equal(json.refresh_expires_in, 3600);
    assert.equal(json.token_type, 'Bearer');
    assert.equal(json['not-before-policy'], 0);
    assert.equal(json.scope, SCOPE);
    const access = jwtPayload(json.access_token);
    assert.equal(access.exp, Math.floor(START / 1000) + 600);
    assert.equal(access.iat, Math.floor(START / 1000));
    assert.equal(access.sid, json.session_state);
    assert.equal(access.azp, 'cdse-public');
    assert.equal(access.typ, 'Bearer');
    assert.equal(typeof access.sub, 'string');
    const refreshClaims = jwtPayload(json.refresh_token);
    assert.equal(refreshClaims.exp, Math.floor(START / 1000) + 3600);
    assert.equal(refreshClaims.typ, 'Refresh');
    assert.equal(h.server.accessTokenValid(String(json.access_token)), true);

    const again = await loginTokens(h.server);
    assert.notEqual(again.access_token, json.access_token);
    assert.notEqual(again.refresh_token, json.refresh_token);
    assert.notEqual(again.session_state, json.session_state);
    assert.equal(jwtPayload(again.access_token).sub, access.sub);
  });

  it('rejects bad user credentials with 401 invalid_grant', async () => {
    await expectError(
      await login(h.server, { password: 'wrong' }),
      401,
      'invalid_grant',
      'Invalid user credentials',
    );
    await expectError(
      await login(h.server, { username: 'nobody' }),
      401,
      'invalid_grant',
      'Invalid user credentials',
    );
  });

  it('rejects bad clients with 401 invalid_client', async () => {
    const msg = 'Invalid client or Invalid client credentials';
    await expectError(await login(h.server, { client_id: 'nope' }), 401, 'invalid_client', msg);
    await expectError(await login(h.server, { client_id: 'conf' }), 401, 'invalid_client', msg);
    await expectError(
      await login(h.server, { client_id: 'conf', client_secret: 'bad' }),
      401,
      'invalid_client',
      msg,
    );
    assert.equal(
      (await login(h.server, { client_id: 'conf', client_secret: 'conf-secret' })).status,
      200,
    );
  });

  it('accepts client_secret_basic instead of form fields', async () => {
    const fields = { grant_type: 'password', username: 'alice', password: 'pw-alice' };
    const ok = await post(h.server.tokenUrl, fields, basic('conf', 'conf-secret'));
    assert.equal(ok.status, 200);
    assert.equal(jwtPayload((await body(ok)).access_token).azp, 'conf');
    await expectError(
      await post(h.server.tokenUrl, fields, basic('conf', 'wrong')),
      401,
      'invalid_client',
    );
    await expectError(
      await post(h.server.tokenUrl, fields, { authorization: 'Basic !!!' }),
      401,
      'invalid_client',
    );
  });

  it('answers malformed requests like Keycloak', async () => {
    await expectError(
      await post(h.server.tokenUrl, { grant_type: 'password', client_id: 'cdse-public' }),
      400,
      'invalid_request',
    );
    await expectError(
      await post(h.server.tokenUrl, { client_id: 'cdse-public' }),
      400,
      'invalid_request',
    );
    await expectError(
      await post(h.server.tokenUrl, { grant_type: 'implicit', client_id: 'cdse-public' }),
      400,
      'unsupported_grant_type',
    );
    // A JSON body is not a form: Keycloak sees no grant_type at all.
    const jsonBody = await fetch(h.server.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'password' }),
    });
    await expectError(jsonBody, 400, 'invalid_request');
    const get = await fetch(h.server.tokenUrl);
    assert.equal(get.status, 405);
    await get.arrayBuffer();
    const missing = await fetch(`${h.server.origin}/auth/realms/CDSE/nope`, { method: 'POST' });
    assert.equal(missing.status, 404);
    assert.equal(typeof (await body(missing)).error, 'string');
  });
});

describe('TOTP logins', () => {
  it('accepts the current code once and rejects missing, wrong, stale and reused codes', async () => {
    const { server, clock } = await harness();
    try {
      const bob = (code?: string, field = 'totp') =>
        post(server.tokenUrl, {
          grant_type: 'password',
          username: 'bob',
          password: 'pw-bob',
          client_id: 'cdse-public',
          ...(code === undefined ? {} : { [field]: code }),
        });
      const invalid = 'Invalid user credentials';
      await expectError(await bob(), 401, 'invalid_grant', invalid);
      const current = totpCode(SECRET, clock.ms);
      const wrong = current === '000000' ? '111111' : '000000';
      await expectError(await bob(wrong), 401, 'invalid_grant', invalid);
      await expectError(await bob(totpCode(SECRET, clock.ms - 60_000)), 401, 'invalid_grant');
      // A right code with a wrong password must not log in.
      const wrongPw = await post(server.tokenUrl, {
        grant_type: 'password',
        username: 'bob',
        password: 'nope',
        client_id: 'cdse-public',
        totp: current,
      });
      await expectError(wrongPw, 401, 'invalid_grant', invalid);

      assert.equal((await bob(current)).status, 200);
      await expectError(await bob(current), 401, 'invalid_grant', invalid);
      await expectError(await bob(current, 'otp'), 401, 'invalid_grant', invalid);

      // The previous step is inside Keycloak's ±1 window, and `otp` is read too.
      assert.equal((await bob(totpCode(SECRET, clock.ms - 30_000), 'otp')).status, 200);

      clock.ms += 30_000;
      assert.equal((await bob(totpCode(SECRET, clock.ms))).status, 200);
      assert.equal(server.activeSessions(), 3);
    } finally {
      await server.close();
    }
  });
});

describe('refresh_token grant', () => {
  it('refreshes within the session and fails once the refresh token expires', async () => {
    const { server, clock } = await harness();
    try {
      const first = await loginTokens(server);
      clock.ms += 3599_000;
      const res = await refresh(server, first.refresh_token);
      assert.equal(res.status, 200);
      const second = await body(res);
      assert.equal(second.session_state, first.session_state);
      assert.notEqual(second.access_token, first.access_token);
      assert.equal(second.refresh_expires_in, 3600);
      assert.equal(server.activeSessions(), 1);

      clock.ms += 1000;
      await expectError(
        await refresh(server, first.refresh_token),
        400,
        'invalid_grant',
        'Token is not active',
      );
      // Without rotation the newer token stays usable on its own expiry.
      assert.equal((await refresh(server, second.refresh_token)).status, 200);
      clock.ms += 3601_000;
      assert.equal(server.activeSessions(), 0);
    } finally {
      await server.close();
    }
  });

  it('rejects unknown tokens, other clients, and confidential clients without their secret', async () => {
    const { server } = await harness();
    try {
      await expectError(
        await refresh(server, 'garbage'),
        400,
        'invalid_grant',
        'Invalid refresh token',
      );
      await expectError(
        await post(server.tokenUrl, { grant_type: 'refresh_token', client_id: 'cdse-public' }),
        400,
        'invalid_request',
      );
      const publicTokens = await loginTokens(server);
      await expectError(
        await refresh(server, publicTokens.refresh_token, {
          client_id: 'conf',
          client_secret: 'conf-secret',
        }),
        400,
        'invalid_grant',
      );
      const confRes = await login(server, { client_id: 'conf', client_secret: 'conf-secret' });
      const conf = await body(confRes);
      await expectError(
        await refresh(server, conf.refresh_token, { client_id: 'conf' }),
        401,
        'invalid_client',
      );
      const ok = await refresh(server, conf.refresh_token, {
        client_id: 'conf',
        client_secret: 'conf-secret',
      });
      assert.equal(ok.status, 200);
      const basicOk = await post(
        server.tokenUrl,
        { grant_type: 'refresh_token', refresh_token: String(conf.refresh_token) },
        basic('conf', 'conf-secret'),
      );
      assert.equal(basicOk.status, 200);
    } finally {
      await server.close();
    }
  });

  it('with rotation, rejects reuse of a superseded refresh token', async () => {
    const { server } = await harness({ rotateRefreshTokens: true });
    try {
      const first = await loginTokens(server);
      const second = await body(await refresh(server, first.refresh_token));
      assert.notEqual(second.refresh_token, first.refresh_token);
      await expectError(
        await refresh(server, first.refresh_token),
        400,
        'invalid_grant',
        'Maximum allowed refresh token reuse exceeded',
      );
      assert.equal((await refresh(server, second.refresh_token)).status, 200);
    } finally {
      await server.close();
    }
  });

  it('refreshLifetime 0 means refresh tokens never expire', async () => {
    const { server, clock } = await harness({ refreshLifetime: 0 });
    try {
      const first = await loginTokens(server);
      assert.equal(first.refresh_expires_in, 0);
      clock.ms += 365 * 24 * 3600_000;
      assert.equal(server.activeSessions(), 1);
      assert.equal((await refresh(server, first.refresh_token)).status, 200);
    } finally {
      await server.close();
    }
  });

  it('omitOptionalFields leaves out refresh_expires_in, scope and token_type', async () => {
    const { server } = await harness({ omitOptionalFields: true, accessLifetime: 300 });
    try {
      const json = await loginTokens(server);
      assert.equal(json.expires_in, 300);
      assert.equal(typeof json.refresh_token, 'string');
      assert.equal('refresh_expires_in' in json, false);
      assert.equal('scope' in json, false);
      assert.equal('token_type' in json, false);
    } finally {
      await server.close();
    }
  });
});

describe('client_credentials grant', () => {
  it('issues a token without refresh token to service-account clients only', async () => {
    const { server } = await harness();
    try {
      const cc = (extra: Record<string, string>, headers: Record<string, string> = {}) =>
        post(server.tokenUrl, { grant_type: 'client_credentials', ...extra }, headers);
      const res = await cc({ client_id: 'sh-svc', client_secret: 'svc-secret' });
      assert.equal(res.status, 200);
      const json = await body(res);
      assert.equal(json.token_type, 'Bearer');
      assert.equal(json.expires_in, 600);
      assert.equal('refresh_token' in json, false);
      assert.equal(jwtPayload(json.access_token).azp, 'sh-svc');
      assert.equal(server.activeSessions(), 1);
      assert.equal((await cc({}, basic('sh-svc', 'svc-secret'))).status, 200);

      await expectError(
        await cc({ client_id: 'sh-svc', client_secret: 'bad' }),
        401,
        'invalid_client',
      );
      await expectError(await cc({ client_id: 'sh-svc' }), 401, 'invalid_client');
      await expectError(await cc({ client_id: 'cdse-public' }), 400, 'unauthorized_client');
      await expectError(
        await cc({ client_id: 'conf', client_secret: 'conf-secret' }),
        400,
        'unauthorized_client',
      );
    } finally {
      await server.close();
    }
  });

  it('can return a refresh token when configured to', async () => {
    const { server } = await harness({ clientCredentialsRefreshToken: true });
    try {
      const res = await post(server.tokenUrl, {
        grant_type: 'client_credentials',
        client_id: 'sh-svc',
        client_secret: 'svc-secret',
      });
      const json = await body(res);
      const again = await refresh(server, json.refresh_token, {
        client_id: 'sh-svc',
        client_secret: 'svc-secret',
      });
      assert.equal(again.status, 200);
    } finally {
      await server.close();
    }
  });
});

describe('sessions', () => {
  it('logout ends the session and kills its refresh tokens', async () => {
    const { server } = await harness();
    try {
      const a = await loginTokens(server);
      const b = await loginTokens(server);
      assert.equal(server.activeSessions(), 2);
      await expectError(
        await post(server.logoutUrl, { client_id: 'nope', refresh_token: String(a.refresh_token) }),
        401,
        'invalid_client',
      );
      await expectError(
        await post(server.logoutUrl, { client_id: 'cdse-public', refresh_token: 'garbage' }),
        400,
        'invalid_grant',
      );
      const out = await post(server.logoutUrl, {
        client_id: 'cdse-public',
        refresh_token: String(a.refresh_token),
      });
      assert.equal(out.status, 204);
      assert.equal(await out.text(), '');
      assert.equal(server.activeSessions(), 1);
      await expectError(
        await refresh(server, a.refresh_token),
        400,
        'invalid_grant',
        'Session not active',
      );
      await expectError(
        await post(server.logoutUrl, {
          client_id: 'cdse-public',
          refresh_token: String(a.refresh_token),
        }),
        400,
        'invalid_grant',
      );
      assert.equal((await refresh(server, b.refresh_token)).status, 200);

      server.endAllSessions();
      assert.equal(server.activeSessions(), 0);
      await expectError(
        await refresh(server, b.refresh_token),
        400,
        'invalid_grant',
        'Session not active',
      );
      assert.equal(server.counts.logout, 4);
    } finally {
      await server.close();
    }
  });

  it('caps active sessions per user at 100 with a WAF 429', async () => {
    const { server, clock } = await harness();
    try {
      const tokens: Array<Record<string, unknown>> = [];
      for (let i = 0; i < 100; i++) tokens.push(await loginTokens(server));
      assert.equal(server.activeSessions(), 100);
      const capped = await login(server);
      assert.equal(capped.status, 429);
      assert.deepEqual(await body(capped), {
        error: 'WAF',
        message: 'Rate limit exceeded',
        status: 429,
      });
      // Another user is not affected, and refreshing an existing session still works.
      clock.ms += 30_000;
      const bob = await post(server.tokenUrl, {
        grant_type: 'password',
        username: 'bob',
        password: 'pw-bob',
        client_id: 'cdse-public',
        totp: totpCode(SECRET, clock.ms),
      });
      assert.equal(bob.status, 200);
      assert.equal((await refresh(server, tokens[0]?.refresh_token)).status, 200);

      const out = await post(server.logoutUrl, {
        client_id: 'cdse-public',
        refresh_token: String(tokens[1]?.refresh_token),
      });
      assert.equal(out.status, 204);
      assert.equal((await login(server)).status, 200);
      assert.equal((await login(server)).status, 429);

      clock.ms += 3600_000;
      assert.equal(server.activeSessions(), 0);
      assert.equal((await login(server)).status, 200);
    } finally {
      await server.close();
    }
  });
});

describe('faults', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(() => h.server.close());

  it('status faults carry Retry-After and the CDSE gateway bodies', async () => {
    h.server.inject(
      { kind: 'status', status: 429, retryAfter: '7' },
      { kind: 'status', status: 503 },
      { kind: 'status', status: 502, body: 'bad gateway', contentType: 'text/plain' },
    );
    const limited = await login(h.server);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '7');
    assert.deepEqual(await body(limited), {
      error: 'WAF',
      message: 'Rate limit exceeded',
      status: 429,
    });
    const unavailable = await login(h.server);
    assert.equal(unavailable.status, 503);
    assert.match(unavailable.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await unavailable.text(), /<html/);
    const gateway = await login(h.server);
    assert.equal(gateway.status, 502);
    assert.equal(gateway.headers.get('content-type'), 'text/plain');
    assert.equal(await gateway.text(), 'bad gateway');
    assert.equal((await login(h.server)).status, 200);
  });

  it('html, invalid-json and no-access-token answer 200 with unusable bodies', async () => {
    h.server.inject({ kind: 'html' }, { kind: 'invalid-json' }, { kind: 'no-access-token' });
    const html = await login(h.server);
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-type') ?? '', /text\/html/);
    await assert.rejects(html.json(), SyntaxError);
    const broken = await login(h.server);
    assert.equal(broken.status, 200);
    assert.match(broken.headers.get('content-type') ?? '', /application\/json/);
    await assert.rejects(broken.json(), SyntaxError);
    const empty = await login(h.server);
    assert.equal(empty.status, 200);
    const json = await body(empty);
    assert.equal('access_token' in json, false);
    assert.equal(json.token_type, 'Bearer');
  });

  it('truncated bodies and resets make the client fail', async () => {
    h.server.inject({ kind: 'truncated' }, { kind: 'reset' });
    const truncated = await login(h.server);
    assert.equal(truncated.status, 200);
    await assert.rejects(truncated.text());
    await assert.rejects(login(h.server), TypeError);
    assert.equal((await login(h.server)).status, 200);
  });

  it('delay answers normally after the delay', async () => {
    h.server.inject({ kind: 'delay', ms: 120 });
    const started = performance.now();
    const res = await login(h.server);
    assert.ok(performance.now() - started >= 100);
    assert.equal(res.status, 200);
    assert.equal(typeof (await body(res)).access_token, 'string');
  });

  it('faults apply to logout too and are counted and logged', async () => {
    const tokens = await loginTokens(h.server);
    h.server.resetCounts();
    h.server.inject({ kind: 'status', status: 500 }, { kind: 'reset' });
    const failed = await post(h.server.logoutUrl, {
      client_id: 'cdse-public',
      refresh_token: String(tokens.refresh_token),
    });
    assert.equal(failed.status, 500);
    await failed.arrayBuffer();
    await assert.rejects(refresh(h.server, tokens.refresh_token));
    assert.equal((await refresh(h.server, tokens.refresh_token)).status, 200);
    assert.deepEqual(h.server.counts, {
      password: 0,
      refresh_token: 2,
      client_credentials: 0,
      logout: 1,
      other: 0,
      total: 3,
    });
    assert.deepEqual(
      h.server.requests.map((r) => [r.path.split('/').pop(), r.grant, r.status, r.fault]),
      [
        ['logout', undefined, 500, 'status'],
        ['token', 'refresh_token', 0, 'reset'],
        ['token', 'refresh_token', 200, undefined],
      ],
    );
  });
});

describe('request log', () => {
  it('records the exact form fields and headers a client sent', async () => {
    const { server } = await harness();
    try {
      await login(server, { scope: 'openid' });
      await post(server.tokenUrl, { grant_type: 'weird', client_id: 'cdse-public' });
      await post(
        server.tokenUrl,
        { grant_type: 'client_credentials' },
        { ...basic('sh-svc', 'svc-secret'), 'user-agent': 'cdse-auth-test' },
      );
      const [first, second, third] = server.requests;
      assert.deepEqual(first?.form, {
        grant_type: 'password',
        username: 'alice',
        password: 'pw-alice',
        client_id: 'cdse-public',
        scope: 'openid',
      });
      assert.equal(first?.grant, 'password');
      assert.equal(first?.status, 200);
      assert.equal(second?.grant, 'weird');
      assert.equal(second?.status, 400);
      assert.equal(third?.headers['user-agent'], 'cdse-auth-test');
      assert.match(String(third?.headers.authorization), /^Basic /);
      assert.deepEqual(server.counts, {
        password: 1,
        refresh_token: 0,
        client_credentials: 1,
        logout: 0,
        other: 1,
        total: 3,
      });
      server.resetCounts();
      assert.equal(server.counts.total, 0);
      assert.equal(server.requests.length, 0);
    } finally {
      await server.close();
    }
  });

  it('prints the token URL when run directly', async () => {
    const script = new URL('./servers/identity-server.ts', import.meta.url).pathname;
    const child = spawn(process.execPath, [script, '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(out);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      const url = /token URL:\s+(\S+)/.exec(line)?.[1];
      assert.match(
        String(url),
        /^http:\/\/127\.0\.0\.1:\d+\/auth\/realms\/CDSE\/protocol\/openid-connect\/token$/,
      );
      const res = await post(String(url), {
        grant_type: 'password',
        username: 'demo@example.com',
        password: 'demo-password',
        client_id: 'cdse-public',
      });
      assert.equal(res.status, 200);
    } finally {
      child.kill('SIGTERM');
    }
  });
});
