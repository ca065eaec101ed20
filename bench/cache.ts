// Issue 4: one login per workflow through the Actions cache. Simulates workflows of 1, 10 and
// 100 jobs (each: a fresh RUNNER_TEMP, main then post) against the cache emulator and the
// identity server, with cache on (cache-secret) and off, and counts token requests and sessions.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { actionInputDefaults, Job, type StepResult } from '../scripts/run-action.ts';
import { CacheServer } from '../test/servers/cache-server.ts';
import { IdentityServer } from '../test/servers/identity-server.ts';
import { fmt, ms, pool, ratio, type Stats, say, section, stats, table } from './util.ts';

const USER = 'bench@example.com';
const PASSWORD = 'bench-password';

export interface WorkflowResult {
  jobs: number;
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

export interface CacheResults {
  workflows: WorkflowResult[];
  hitVsCacheOff: {
    hitMedian: number;
    offMedian: number;
    ratio: number;
    hitP95: number;
    offP95: number;
  };
}

async function workflow(jobs: number, cacheOn: boolean, parallel: number): Promise<WorkflowResult> {
  const identity = await IdentityServer.start({
    users: [{ username: USER, password: PASSWORD }],
    // CDSE caps a user at 100 sessions; lifted here so cache-off runs show the demand, not 429s.
    maxSessionsPerUser: 1_000_000,
  });
  const cache = await CacheServer.start();
  const defaults = await actionInputDefaults();
  const scratch = await mkdtemp(join(tmpdir(), 'cdse-bench-wf-'));
  const runId = String(Math.floor(Math.random() * 1e9));
  const inputs = {
    username: USER,
    password: PASSWORD,
    'token-url': identity.tokenUrl,
    cache: String(cacheOn),
    'cache-secret': randomBytes(32).toString('base64'),
  };
  const event = { repository: { private: true, visibility: 'private' } };
  const mains: StepResult[] = [];
  const posts: StepResult[] = [];
  const oddities: string[] = [];
  const note = (job: number, step: string, r: StepResult) => {
    if (oddities.length >= 12) return;
    const lines = r.stdout
      .split('\n')
      .filter((l) => l && !l.startsWith('::debug::') && !l.startsWith('::add-mask::'));
    oddities.push(
      `job ${job} ${step} exit ${r.code}: ${lines.slice(0, 6).join(' | ')} ${r.stderr.trim()}`,
    );
  };
  const started = performance.now();
  try {
    await pool(
      Array.from({ length: jobs }, (_, i) => i),
      parallel,
      async (i, _index, slot) => {
        // Hosted runners: the same RUNNER_TEMP path in every job, emptied at job start (the
        // cache version hashes the cached path). Parallel cache-off jobs get one folder each.
        const job = await Job.create({
          env: cache.env('v2'),
          event,
          runId,
          job: i === 0 ? 'login' : `work-${i}`,
          runnerRoot: join(scratch, `runner-${slot}`),
        });
        try {
          const main = await job.runAction('main', inputs, defaults);
          mains[i] = main;
          const expected = cacheOn && i > 0 ? 'cache' : 'password';
          if (main.code !== 0 || main.outputs.grant !== expected) note(i, 'main', main);
          const post = await job.runAction('post', inputs, defaults);
          posts[i] = post;
          if (post.code !== 0 || /::(error|warning)::/.test(post.stdout)) note(i, 'post', post);
        } finally {
          await job.cleanup();
        }
      },
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
    mainMs: stats(mains.map((m) => m.ms)),
    postMs: stats(posts.map((p) => p.ms)),
    hitMainMs: mains.filter((m) => m.outputs.grant === 'cache').map((m) => m.ms),
    missMainMs: mains.filter((m) => m.outputs.grant === 'password').map((m) => m.ms),
    wallSeconds,
    oddities,
  };
  await identity.close();
  return result;
}

export async function benchCache(cacheOffBaseline: number[]): Promise<CacheResults> {
  section('Issue 4: one login per workflow through the Actions cache (emulator, v2)');
  const workflows: WorkflowResult[] = [];
  for (const jobs of [1, 10, 100]) {
    workflows.push(await workflow(jobs, true, 1));
    // Cache-off jobs share nothing, so the 100-job run uses two at a time to save time; its
    // step times are then not comparable (see `parallel`).
    workflows.push(await workflow(jobs, false, jobs >= 100 ? 2 : 1));
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
        String(w.jobs),
        w.cache ? 'on' : w.parallel > 1 ? `off (${w.parallel} at a time)` : 'off',
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
  const hits = workflows.filter((w) => w.cache).flatMap((w) => w.hitMainMs);
  const misses = workflows.filter((w) => w.cache).flatMap((w) => w.missMainMs);
  const offSequential = workflows.filter((w) => !w.cache && w.parallel === 1);
  const off = [...cacheOffBaseline];
  const h = stats(hits);
  const o = stats(off);
  const hitVsCacheOff = {
    hitMedian: h.median,
    offMedian: o.median,
    ratio: ratio(h.median, o.median),
    hitP95: h.p95,
    offP95: o.p95,
  };
  say(
    `main step on a cache hit: ${ms(h.median)} median, ${ms(h.p95)} p95 (n=${h.n}); cache off (Issue 3 runs): ${ms(o.median)} median, ${ms(o.p95)} p95 (n=${o.n}); ratio ${fmt(hitVsCacheOff.ratio, 2)}x`,
  );
  say(
    `main step on a cache miss (first job, logs in and saves): ${misses.map((m) => ms(m)).join(', ')}; cache-off sequential jobs here: ${ms(stats(offSequential.flatMap((w) => [w.mainMs.median])).median)} median of medians`,
  );
  for (const w of workflows) {
    for (const odd of w.oddities)
      say(`  ! ${w.jobs} jobs, cache ${w.cache ? 'on' : 'off'}: ${odd}`);
  }
  return { workflows, hitVsCacheOff };
}
