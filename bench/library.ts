// Issue 2: the library's TokenManager. (a) token requests for 1,000 concurrent accessToken()
// calls across expiries (target: 1 request per renewal); (b) the manager's added latency per
// grant, as a ratio to one bare undici POST of the same form (target <= 1.2x).
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { MemoryTokenStore, PasswordAuth, TokenManager } from '../src/auth/index.ts';
import { IdentityServer } from '../test/servers/identity-server.ts';
import {
  fmt,
  ms,
  printReport,
  type Report,
  ratio,
  type Stats,
  say,
  section,
  stats,
} from './util.ts';

const USER = 'bench@example.com';
const PASSWORD = 'bench-password';
const ACCESS_LIFETIME = 600; // CDSE's
const REFRESH_LIFETIME = 3600; // CDSE's

export interface ConcurrencyPhase {
  phase: string;
  calls: number;
  requests: { password: number; refresh_token: number; total: number };
  distinctTokens: number;
  /** Tokens no earlier phase handed out: the renewals this phase caused. */
  newTokens: number;
  /** Tokens handed out that the server no longer accepted at the moment they were returned. */
  staleTokens: number;
  errors: number;
}

export interface LatencyResult {
  grant: string;
  iterations: number;
  warmup: number;
  manager: Stats;
  bare: Stats;
  ratioMedian: number;
  ratioP95: number;
}

export interface LibraryResults {
  concurrency: ConcurrencyPhase[];
  latency: LatencyResult[];
  reports: Report[];
}

/** (a) Single flight: concurrent callers across expiries, on a clock the bench moves. */
async function concurrency(): Promise<ConcurrencyPhase[]> {
  let clock = Date.now();
  const now = () => clock;
  const server = await IdentityServer.start({
    users: [{ username: USER, password: PASSWORD }],
    accessLifetime: ACCESS_LIFETIME,
    refreshLifetime: REFRESH_LIFETIME,
    maxSessionsPerUser: 1_000_000,
    now,
  });
  const manager = new TokenManager(new PasswordAuth(USER, PASSWORD), {
    tokenUrl: server.tokenUrl,
    now,
  });
  const phases: ConcurrencyPhase[] = [];

  type Call = Promise<{ token: string; valid: boolean }>;
  // Validity is judged the moment a call returns, on the clock as it is then.
  const call = (): Call =>
    manager.accessToken().then((token) => ({ token, valid: server.accessTokenValid(token) }));
  const seen = new Set<string>();
  const measure = async (phase: string, launch: () => Promise<Call[]>) => {
    server.resetCounts();
    const calls = await launch();
    const settled = await Promise.allSettled(calls);
    const ok = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const tokens = new Set(ok.map((r) => r.token));
    phases.push({
      phase,
      calls: calls.length,
      requests: {
        password: server.counts.password,
        refresh_token: server.counts.refresh_token,
        total: server.counts.total,
      },
      distinctTokens: tokens.size,
      newTokens: [...tokens].filter((t) => !seen.has(t)).length,
      staleTokens: ok.filter((r) => !r.valid).length,
      errors: settled.length - ok.length,
    });
    for (const t of tokens) seen.add(t);
  };
  const burst = (n: number) => async () => Array.from({ length: n }, call);

  try {
    await measure('burst, empty store (first login)', burst(1000));
    clock += (ACCESS_LIFETIME + 1) * 1000;
    await measure('burst, access token expired', burst(1000));
    clock += (REFRESH_LIFETIME + 1) * 1000;
    await measure('burst, refresh token expired too', burst(1000));
    // A stream: 100 batches of 10 calls, the clock moving 15 s per batch (1,500 s: 2-3 expiries
    // of the 600 s token, with its 30 s skew), some calls joining a request still in flight.
    await measure('stream over 1,500 s (2-3 expiries)', async () => {
      const calls: Call[] = [];
      for (let batch = 0; batch < 100; batch++) {
        for (let i = 0; i < 10; i++) calls.push(call());
        await yieldToLoop();
        clock += 15_000;
      }
      return calls;
    });
  } finally {
    await manager.close();
    await server.close();
  }
  return phases;
}

/** (b) Per-grant latency of the manager vs one bare undici POST of the same form. */
async function latency(iterations: number, warmup: number): Promise<LatencyResult[]> {
  const server = await IdentityServer.start({
    users: [{ username: USER, password: PASSWORD }],
    maxSessionsPerUser: 1_000_000,
  });
  const agent = new Agent();
  const url = server.tokenUrl;
  const provider = new PasswordAuth(USER, PASSWORD);

  const bare = async (form: Record<string, string>) => {
    const response = await request(url, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(form).toString(),
    });
    const body = (await response.body.json()) as { access_token?: string };
    if (response.statusCode !== 200 || !body.access_token) throw new Error('bare POST failed');
  };

  // One manager per password grant (a manager logs in once), sharing the pool like `bare`.
  const passwordForm = provider.grantData();
  const viaManagerPassword = async () => {
    const manager = new TokenManager(provider, { tokenUrl: url, dispatcher: agent });
    await manager.accessToken();
  };
  // One long-lived manager; forceRefresh() makes a refresh grant each time.
  const refresher = new TokenManager(provider, {
    tokenUrl: url,
    dispatcher: agent,
    store: new MemoryTokenStore(),
  });
  const refreshToken = (await refresher.getTokenSet()).refreshToken as string;
  const refreshForm = {
    grant_type: 'refresh_token',
    client_id: 'cdse-public',
    refresh_token: refreshToken,
  };
  const viaManagerRefresh = async () => {
    await refresher.forceRefresh();
  };

  const time = async (fn: () => Promise<void>) => {
    const started = performance.now();
    await fn();
    return performance.now() - started;
  };

  const results: LatencyResult[] = [];
  try {
    for (const [grant, viaManager, form] of [
      ['password', viaManagerPassword, passwordForm],
      ['refresh_token', viaManagerRefresh, refreshForm],
    ] as const) {
      const managerTimes: number[] = [];
      const bareTimes: number[] = [];
      for (let i = 0; i < warmup + iterations; i++) {
        // Alternate the order so neither side always runs on a warmer connection or heap.
        const first = i % 2 === 0;
        const a = first ? await time(viaManager) : 0;
        const b = await time(() => bare(form));
        const c = first ? 0 : await time(viaManager);
        if (i >= warmup) {
          managerTimes.push(first ? a : c);
          bareTimes.push(b);
        }
      }
      const m = stats(managerTimes);
      const b = stats(bareTimes);
      results.push({
        grant,
        iterations,
        warmup,
        manager: m,
        bare: b,
        ratioMedian: ratio(m.median, b.median),
        ratioP95: ratio(m.p95, b.p95),
      });
    }
  } finally {
    await agent.close();
    await server.close();
  }
  return results;
}

export async function benchLibrary(): Promise<LibraryResults> {
  section('Library (TokenManager in-process, local identity server)');
  const phases = await concurrency();
  const single: Report = {
    title:
      'Library single flight: 1,000 concurrent accessToken() calls per phase (target: 1 token request per renewal)',
    rows: [
      [
        'phase',
        'calls',
        'password',
        'refresh',
        'requests',
        'distinct tokens',
        'new tokens',
        'req/renewal',
        'stale',
        'errors',
      ],
      ...phases.map((p) => [
        p.phase,
        String(p.calls),
        String(p.requests.password),
        String(p.requests.refresh_token),
        String(p.requests.total),
        String(p.distinctTokens),
        String(p.newTokens),
        fmt(ratio(p.requests.total, p.newTokens), 2),
        String(p.staleTokens),
        String(p.errors),
      ]),
    ],
    notes: ['stale = tokens the server no longer accepted when the call returned them.'],
  };
  printReport(single);

  const lat = await latency(1000, 200);
  const overhead: Report = {
    title:
      'Library overhead: latency per grant, TokenManager vs one bare undici request() of the same form (target <= 1.2x)',
    rows: [
      [
        'grant',
        'iterations',
        'manager median',
        'bare median',
        'ratio',
        'manager p95',
        'bare p95',
        'ratio p95',
        'met',
      ],
      ...lat.map((r) => [
        r.grant,
        `${r.iterations} (+${r.warmup} warm-up)`,
        ms(r.manager.median),
        ms(r.bare.median),
        `${fmt(r.ratioMedian, 2)}x`,
        ms(r.manager.p95),
        ms(r.bare.p95),
        `${fmt(r.ratioP95, 2)}x`,
        r.ratioMedian <= 1.2 ? 'yes' : 'NO',
      ]),
    ],
    notes: ['In-process, on one keep-alive connection pool; "met" judges the median ratio.'],
  };
  say();
  printReport(overhead);
  return { concurrency: phases, latency: lat, reports: [single, overhead] };
}
