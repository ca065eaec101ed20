// Issue 4: one login per workflow through the Actions cache. Simulates workflows of 1, 10 and
// 100 jobs (each: a fresh RUNNER_TEMP, main then post) against the cache emulator and the
// identity server, with cache on (cache-secret) and off, and counts token requests and sessions.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job, type StepResult } from '../test/runner.ts';
import { CacheServer } from '../test/servers/cache-server.ts';
import { IdentityServer } from '../test/servers/identity-server.ts';
import { fmt, ms, pool, ratio, type Stats, say, section, stats, table } from './util.ts';

const USER = 'bench@example.com';
const PASSWORD = 'bench-password';

export interface WorkflowResult {
  /** Jobs of the simulated workflow. */
  jobs: number;
  /** Jobs actually run (fewer than `jobs` for a sampled cache-off run: counts are per run job). */
  ran: number;
  cache: boolean;
  /** Jobs run at the same time (only cache-off runs use more than 1: their jobs share nothing). */
  parallel: number;
  requests: { password: number; refresh_token: number; logout: number; total: number };
  activeSessions: number;
  grants: Record<string, number>;
  cacheEntries: number;
  cacheRequests: number;
  failedSteps: number;
  mainMs: Stats;
  postMs: Stats;
  /** Main-step times of jobs whose token came from the cache (grant: cache). */
  hitMainMs: number[];
  /** Main-step time of jobs that logged in (cache miss). */
  missMainMs: number[];
  wallSeconds: number;
  /** stdout lines of failed or unexpected steps, as seen (first few). */
  oddities: string[];
}

export interface HitComparison {
  label: string;
  hit: Stats;
  off: Stats;
  /** Median main-step time on a cache hit / median with cache off. */
  ratio: number;
}

export interface CacheResults {
  workflows: WorkflowResult[];
  hitVsCacheOff: HitComparison[];
  /** Main-step times of the jobs that missed the cache, logged in and saved (the first jobs). */
  missMainMs: number[];
}

async function workflow(
  jobs: number,
  cacheOn: boolean,
  parallel: number,
  ran = jobs,
): Promise<WorkflowResult> {
  const identity = await IdentityServer.start({
    users: [{ username: USER, password: PASSWORD }],
    // CDSE caps a user at 100 sessions; lifted here so cache-off runs show the demand, not 429s.
    maxSessionsPerUser: 1_000_000,
  });
  const cache = await CacheServer.start();
  const scratch = await mkdtemp(join(tmpdir(), 'cdse-bench-wf-'));
  const runId = String(Math.floor(Math.random() * 1e9));
  const inputs = {
    username: USER,
    password: PASSWORD,
    'token-url': identity.tokenUrl,
    cache: String(cacheOn),
    'cache-secret': randomBytes(32).toString('base64'),
  };
  const eventPayload = { repository: { private: true, visibility: 'private' } };
  const mains: StepResult[] = [];
  const posts: StepResult[] = [];
  const oddities: string[] = [];
  const note = (job: number, step: string, r: StepResult) => {
    if (oddities.length >= 12) return;
    const lines = r.lines.filter(
      (l) => l && !l.startsWith('::debug::') && !l.startsWith('::add-mask::'),
    );
    oddities.push(
      `job ${job} ${step} exit ${r.code}: ${lines.slice(0, 6).join(' | ')} ${r.stderr.trim()}`,
    );
  };
  const runJob = async (i: number, slot: number) => {
    // Hosted runners give every job the same paths, emptied at job start; jobs running at the
    // same time here get one runner folder each.
    const job = await Job.create({
      inputs,
      env: cache.env('v2'),
      eventPayload,
      runId,
      job: i === 0 ? 'login' : `work-${i}`,
      runnerTemp: join(scratch, `runner-${slot}`, 'temp'),
      stepTimeoutMs: 60_000,
    });
    try {
      const main = await job.runMain();
      mains[i] = main;
      const expected = cacheOn && i > 0 ? 'cache' : 'password';
      if (main.code !== 0 || main.outputs.grant !== expected) note(i, 'main', main);
      const post = await job.runPost();
      posts[i] = post;
      if (post.code !== 0 || /::(error|warning)::/.test(post.stdout)) note(i, 'post', post);
    } finally {
      await job.cleanup();
    }
  };
  const started = performance.now();
  try {
    // The first job logs in alone and seeds the cache (the reusable workflow's login job); the
    // others follow, `parallel` at a time, like a matrix.
    await runJob(0, 0);
    await pool(
      Array.from({ length: ran - 1 }, (_, i) => i + 1),
      parallel,
      (i, _index, slot) => runJob(i, slot),
    );
  } finally {
    await cache.close().catch(() => {});
    await rm(scratch, { recursive: true, force: true });
  }
  const wallSeconds = (performance.now() - started) / 1000;
  const grants: Record<string, number> = {};
  for (const m of mains) {
    const g = m?.outputs.grant ?? `failed (exit ${m?.code})`;
    grants[g] = (grants[g] ?? 0) + 1;
  }
  const result: WorkflowResult = {
    jobs,
    ran,
    cache: cacheOn,
    parallel,
    requests: {
      password: identity.counts.password,
      refresh_token: identity.counts.refresh_token,
      logout: identity.counts.logout,
      total: identity.counts.total,
    },
    activeSessions: identity.activeSessions(),
    grants,
    cacheEntries: cache.entries.length,
    cacheRequests: cache.requests.length,
    failedSteps: [...mains, ...posts].filter((r) => r?.code !== 0).length,
    mainMs: stats(mains.map((m) => m.durationMs)),
    postMs: stats(posts.map((p) => p.durationMs)),
    hitMainMs: mains.filter((m) => m.outputs.grant === 'cache').map((m) => m.durationMs),
    missMainMs: mains.filter((m) => m.outputs.grant === 'password').map((m) => m.durationMs),
    wallSeconds,
    oddities,
  };
  await identity.close();
  return result;
}

export async function benchCache(cacheOffBaseline: number[]): Promise<CacheResults> {
  section('Issue 4: one login per workflow through the Actions cache (emulator, v2)');
  const workflows: WorkflowResult[] = [];
  // The 100-job workflows run two jobs at a time (like a matrix) to keep the bench short; their
  // step times are therefore not comparable with the one-at-a-time runs, only with each other.
  // BENCH_SAMPLE=1 runs only 25 of the 100 cache-off jobs (each of them logs in once).
  const sample = process.env.BENCH_SAMPLE === '1';
  for (const jobs of [1, 10, 100]) {
    const parallel = jobs >= 100 ? 2 : 1;
    workflows.push(await workflow(jobs, true, parallel));
    workflows.push(await workflow(jobs, false, parallel, sample && jobs >= 100 ? 25 : jobs));
  }
  say(
    table([
      [
        'jobs',
        'cache',
        'password',
        'refresh',
        'requests',
        'sessions',
        'grant outputs',
        'entries',
        'failed',
        'main median',
        'main p95',
        'post median',
        'wall',
      ],
      ...workflows.map((w) => [
        w.ran === w.jobs ? String(w.jobs) : `${w.jobs} (${w.ran} run)`,
        `${w.cache ? 'on' : 'off'}${w.parallel > 1 ? `, ${w.parallel} at a time` : ''}`,
        String(w.requests.password),
        String(w.requests.refresh_token),
        String(w.requests.total),
        String(w.activeSessions),
        Object.entries(w.grants)
          .map(([g, n]) => `${g} ${n}`)
          .join(', '),
        String(w.cacheEntries),
        String(w.failedSteps),
        ms(w.mainMs.median),
        ms(w.mainMs.p95),
        ms(w.postMs.median),
        `${fmt(w.wallSeconds, 1)} s`,
      ]),
    ]),
  );
  const mainTimes = (cache: boolean, parallel: number, pick: 'hitMainMs' | 'missMainMs') =>
    workflows.filter((w) => w.cache === cache && w.parallel === parallel).flatMap((w) => w[pick]);
  const compare = (label: string, hits: number[], off: number[]): HitComparison => {
    const hit = stats(hits);
    const o = stats(off);
    return { label, hit, off: o, ratio: ratio(hit.median, o.median) };
  };
  const hitVsCacheOff = [
    compare(
      'one job at a time (cache off: Issue 3 runs + cache-off jobs above)',
      mainTimes(true, 1, 'hitMainMs'),
      [...cacheOffBaseline, ...mainTimes(false, 1, 'missMainMs')],
    ),
    compare(
      '100-job workflows, two jobs at a time',
      mainTimes(true, 2, 'hitMainMs'),
      mainTimes(false, 2, 'missMainMs'),
    ),
  ];
  say();
  say('main step wall time on a cache hit vs with cache off (full password grant on loopback)');
  say(
    table([
      [
        'conditions',
        'hit n',
        'hit median',
        'hit p95',
        'off n',
        'off median',
        'off p95',
        'hit / off',
      ],
      ...hitVsCacheOff.map((c) => [
        c.label,
        String(c.hit.n),
        ms(c.hit.median),
        ms(c.hit.p95),
        String(c.off.n),
        ms(c.off.median),
        ms(c.off.p95),
        `${fmt(c.ratio, 2)}x`,
      ]),
    ]),
  );
  const misses = workflows.filter((w) => w.cache).flatMap((w) => w.missMainMs);
  say(
    `main step on a cache miss (first job: looks up, logs in, saves): ${misses.map((m) => ms(m)).join(', ')}`,
  );
  for (const w of workflows) {
    for (const odd of w.oddities)
      say(`  ! ${w.jobs} jobs, cache ${w.cache ? 'on' : 'off'}: ${odd}`);
  }
  return { workflows, hitVsCacheOff, missMainMs: misses };
}
