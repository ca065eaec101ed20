// Issue "fast where the cost compounds": process wall times, spawn to exit, of the CLI hot path
// (a valid stored token: no HTTP code loaded), the CLI with a refresh due, the action's main step
// with the cache off and on a cache hit, side by side with `node -e 0`, bare node:http POST
// scripts (ESM and CommonJS) and curl + jq. All variants run interleaved, round by round, in an
// order that rotates every round, so machine noise hits them alike. Measures; never asserts.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job, type JobOptions, run, SYSTEM_PATH } from '../test/runner.ts';
import { CacheServer } from '../test/servers/cache-server.ts';
import { IdentityServer } from '../test/servers/identity-server.ts';
import { fmt, ms, printReport, type Report, ratio, type Stats, section, stats } from './util.ts';

/**
 * The last landed commit before the hostile-inputs, concurrency and speed work: its action.yml
 * and dist/ run as extra rows, so "no growth" and "a hit is now faster" are measured in the
 * same run, not against numbers from another machine.
 */
export const BASELINE_COMMIT = '08c8a20';

const USER = 'bench@example.com';
const PASSWORD = 'bench-password';
const CACHE_SECRET = 'YmVuY2gtY2FjaGUtc2VjcmV0LW9mLTMyLWJ5dGVzLW9rIQ==';

const BARE_POST_BODY = `const body = process.env.FORM;
const req = request(process.env.TOKEN_URL, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
}, (res) => {
  let data = '';
  res.setEncoding('utf8');
  res.on('data', (chunk) => { data += chunk; });
  res.on('end', () => { if (!JSON.parse(data).access_token) process.exitCode = 1; });
});
req.end(body);
`;
const BARE_POST_ESM = `import { request } from 'node:http';\n${BARE_POST_BODY}`;
const BARE_POST_CJS = `const { request } = require('node:http');\n${BARE_POST_BODY}`;

interface Once {
  ok: boolean;
  ms: number;
  detail?: string;
}

interface Variant {
  key: string;
  name: string;
  /** Token requests a run is meant to make (shown next to what it did make). */
  expectedRequests: number;
  once: () => Promise<Once>;
}

interface Comparison {
  variant: string;
  reference: string;
  /** Met when the median ratio is at most (`<=`) or below (`<`) `value`; none = informative. */
  target?: { op: '<=' | '<'; value: number };
}

export interface StartupVariant {
  key: string;
  name: string;
  stats: Stats;
  failures: number;
  firstFailure?: string;
  /** Token requests the identity server counted, per successful run (mean). */
  requestsPerRun: number;
  expectedRequests: number;
}

export interface StartupComparison {
  variant: string;
  reference: string;
  ratioMedian: number;
  ratioP95: number;
  target?: string;
  met?: boolean;
}

export interface StartupResults {
  runs: number;
  warmupRounds: number;
  variants: StartupVariant[];
  comparisons: StartupComparison[];
  skipped: string[];
  report: Report;
}

/** The baseline's action.yml and dist/ in a folder of their own; undefined without git history. */
async function baselineAction(scratch: string): Promise<string | undefined> {
  const dir = join(scratch, `baseline-${BASELINE_COMMIT}`);
  const r = await run(
    '/bin/sh',
    ['-c', `mkdir -p "$DIR" && git archive ${BASELINE_COMMIT} action.yml dist | tar -x -C "$DIR"`],
    { env: { PATH: SYSTEM_PATH, DIR: dir }, cwd: join(import.meta.dirname, '..') },
  );
  return r.code === 0 ? dir : undefined;
}

async function has(command: string): Promise<boolean> {
  const r = await run('/bin/sh', ['-c', `command -v ${command}`], { env: { PATH: SYSTEM_PATH } });
  return r.code === 0;
}

/** A process's wall time, spawn to exit (the same span Job steps report as durationMs). */
async function timed(command: string, args: string[], env: Record<string, string>, cwd: string) {
  const started = performance.now();
  const result = await run(command, args, { env, cwd, timeoutMs: 60_000 });
  return { ...result, ms: performance.now() - started };
}

const failure = (code: number, stdout: string, stderr: string) =>
  `exit ${code}: ${`${stdout} ${stderr}`.replace(/\s+/g, ' ').trim().slice(0, 300)}`;

export async function benchStartup(
  actionDir: string,
  runs: number,
  warmupRounds = 2,
): Promise<StartupResults> {
  section('Start-up (issue: fast where the cost compounds)');
  const identity = await IdentityServer.start({
    users: [{ username: USER, password: PASSWORD }],
    maxSessionsPerUser: 1_000_000,
  });
  const caches = { v2: await CacheServer.start(), v1: await CacheServer.start() };
  const scratch = await mkdtemp(join(tmpdir(), 'cdse-bench-startup-'));
  const jobs: Job[] = [];
  const newJob = async (options: JobOptions) => {
    const job = await Job.create({ actionDir, stepTimeoutMs: 60_000, ...options });
    jobs.push(job);
    return job;
  };
  const disposeJob = async (job: Job) => {
    jobs.splice(jobs.indexOf(job), 1);
    await job.cleanup();
  };
  try {
    const esm = join(scratch, 'bare-post.mjs');
    const cjs = join(scratch, 'bare-post.cjs');
    await writeFile(esm, BARE_POST_ESM);
    await writeFile(cjs, BARE_POST_CJS);
    const form = new URLSearchParams({
      grant_type: 'password',
      client_id: 'cdse-public',
      username: USER,
      password: PASSWORD,
    }).toString();
    const node = process.execPath;
    const plainEnv = { PATH: SYSTEM_PATH, HOME: scratch };
    const postEnv = { ...plainEnv, TOKEN_URL: identity.tokenUrl, FORM: form };
    const base = { username: USER, password: PASSWORD, 'token-url': identity.tokenUrl };
    const cacheOff = { ...base, cache: 'false' };
    const cacheOn = { ...base, 'cache-secret': CACHE_SECRET };

    // The CLI's jobs: one main step each (cache off) writes the credentials file and puts the
    // `cdse-auth` launcher on PATH; later steps then run `bash -c 'cdse-auth …'` as a run: step.
    const cliJob = await newJob({ inputs: cacheOff });
    const cliMain = await cliJob.runMain();
    const refreshJob = await newJob({ inputs: cacheOff });
    const refreshMain = await refreshJob.runMain();
    for (const [what, r] of [
      ['CLI job', cliMain],
      ['refresh job', refreshMain],
    ] as const) {
      if (r.code !== 0 || !r.outputs['credentials-file'])
        throw new Error(`${what}: main step failed: ${failure(r.code, r.stdout, r.stderr)}`);
    }
    const check = await cliJob.runStep('bash', ['-c', 'cdse-auth token']);
    if (check.stdout.trim() !== cliMain.outputs['access-token'])
      throw new Error(`cdse-auth token did not print the stored token: ${check.stderr}`);
    // The refresh rows: each run finds the access token expired (the refresh token still valid).
    const credentialsFile = refreshMain.outputs['credentials-file'] as string;
    const stored = JSON.parse(await readFile(credentialsFile, 'utf8'));
    const expired = JSON.stringify({
      ...stored,
      tokenSet: { ...stored.tokenSet, expiresAt: new Date(Date.now() - 60_000).toISOString() },
    });
    const expire = async () => {
      await writeFile(credentialsFile, expired, { mode: 0o600 });
      await chmod(credentialsFile, 0o600);
    };

    // Cache-hit rows: a first job (main + post, as the pipeline's login job) seeds each cache.
    const runIds = { v2: '7000002', v1: '7000001' };
    for (const protocol of ['v2', 'v1'] as const) {
      const seed = await newJob({
        inputs: { ...cacheOn, 'export-env': 'false' },
        env: caches[protocol].env(protocol),
        runId: runIds[protocol],
        job: 'login',
      });
      const r = await seed.runMain();
      await seed.runPost();
      await disposeJob(seed);
      if (r.code !== 0 || r.outputs.grant !== 'password' || caches[protocol].entries.length === 0)
        throw new Error(`seeding the ${protocol} cache failed: ${failure(r.code, r.stdout, '')}`);
    }

    const processVariant = (
      key: string,
      name: string,
      command: string,
      args: string[],
      env: Record<string, string>,
      expectedRequests: number,
      valid: (stdout: string) => boolean = () => true,
    ): Variant => ({
      key,
      name,
      expectedRequests,
      once: async () => {
        const r = await timed(command, args, env, scratch);
        const ok = r.code === 0 && valid(r.stdout);
        return { ok, ms: r.ms, ...(!ok && { detail: failure(r.code, r.stdout, r.stderr) }) };
      },
    });
    const cliVariant = (
      key: string,
      name: string,
      job: Job,
      verb: 'token' | 'header',
      before: () => Promise<void>,
      expectedRequests: number,
    ): Variant => ({
      key,
      name,
      expectedRequests,
      once: async () => {
        await before();
        const r = await job.runStep('bash', ['-c', `cdse-auth ${verb} >/dev/null`]);
        const ok = r.code === 0;
        return {
          ok,
          ms: r.durationMs,
          ...(!ok && { detail: failure(r.code, r.stdout, r.stderr) }),
        };
      },
    });
    const mainVariant = (
      key: string,
      name: string,
      options: () => JobOptions,
      grant: string,
      expectedRequests: number,
    ): Variant => ({
      key,
      name,
      expectedRequests,
      once: async () => {
        const job = await newJob(options());
        try {
          const r = await job.runMain();
          const ok = r.code === 0 && r.outputs.grant === grant;
          return {
            ok,
            ms: r.durationMs,
            ...(!ok && {
              detail: `grant ${r.outputs.grant ?? 'none'}, ${failure(r.code, r.stdout, r.stderr)}`,
            }),
          };
        } finally {
          await disposeJob(job);
        }
      },
    });
    const nothing = async () => {};

    const variants: Variant[] = [
      processVariant('node', 'node -e 0', node, ['-e', '0'], plainEnv, 0),
      processVariant(
        'bash-node',
        "bash -c 'node -e 0' (the shell's share)",
        'bash',
        ['-c', `'${node}' -e 0`],
        plainEnv,
        0,
      ),
      processVariant('esm', 'bare POST script, ESM (.mjs)', node, [esm], postEnv, 1),
      processVariant('cjs', 'bare POST script, CommonJS (.cjs)', node, [cjs], postEnv, 1),
    ];
    const skipped: string[] = [];
    if ((await has('curl')) && (await has('jq'))) {
      variants.push(
        processVariant(
          'curl',
          'curl -s -d … | jq -r .access_token',
          '/bin/sh',
          ['-c', 'curl -s -d "$FORM" "$TOKEN_URL" | jq -r .access_token'],
          postEnv,
          1,
          (out) => out.trim().length > 20,
        ),
      );
    } else skipped.push('curl + jq (curl or jq not found)');
    variants.push(
      cliVariant('token', "bash -c 'cdse-auth token', valid token", cliJob, 'token', nothing, 0),
      cliVariant('header', "bash -c 'cdse-auth header', valid token", cliJob, 'header', nothing, 0),
      cliVariant(
        'token-refresh',
        "bash -c 'cdse-auth token', refresh due",
        refreshJob,
        'token',
        expire,
        1,
      ),
      cliVariant(
        'header-refresh',
        "bash -c 'cdse-auth header', refresh due",
        refreshJob,
        'header',
        expire,
        1,
      ),
      mainVariant(
        'main-off',
        'action main step, cache off (password grant)',
        () => ({ inputs: cacheOff }),
        'password',
        1,
      ),
      mainVariant(
        'main-hit',
        'action main step, cache hit (v2)',
        () => ({ inputs: cacheOn, env: caches.v2.env('v2'), runId: runIds.v2, job: 'run' }),
        'cache',
        0,
      ),
      mainVariant(
        'main-hit-v1',
        'action main step, cache hit (v1 protocol)',
        () => ({ inputs: cacheOn, env: caches.v1.env('v1'), runId: runIds.v1, job: 'run' }),
        'cache',
        0,
      ),
    );
    const baseline = await baselineAction(scratch);
    if (baseline) {
      variants.push(
        mainVariant(
          'base-off',
          `main step, cache off, at ${BASELINE_COMMIT} (before)`,
          () => ({ actionDir: baseline, inputs: cacheOff }),
          'password',
          1,
        ),
        mainVariant(
          'base-hit',
          `main step, cache hit (v2), at ${BASELINE_COMMIT} (before)`,
          () => ({
            actionDir: baseline,
            inputs: cacheOn,
            env: caches.v2.env('v2'),
            runId: runIds.v2,
            job: 'run',
          }),
          'cache',
          0,
        ),
      );
    } else skipped.push(`the ${BASELINE_COMMIT} rows (no git history to take its dist/ from)`);
    const comparisons: Comparison[] = [
      { variant: 'bash-node', reference: 'node' },
      { variant: 'esm', reference: 'node' },
      { variant: 'cjs', reference: 'esm' },
      { variant: 'curl', reference: 'esm' },
      { variant: 'token', reference: 'node', target: { op: '<=', value: 1.3 } },
      { variant: 'header', reference: 'node', target: { op: '<=', value: 1.3 } },
      { variant: 'token-refresh', reference: 'cjs', target: { op: '<=', value: 1.5 } },
      { variant: 'token-refresh', reference: 'esm', target: { op: '<=', value: 1.5 } },
      { variant: 'header-refresh', reference: 'cjs', target: { op: '<=', value: 1.5 } },
      { variant: 'header-refresh', reference: 'esm', target: { op: '<=', value: 1.5 } },
      { variant: 'main-off', reference: 'esm', target: { op: '<=', value: 1.7 } },
      { variant: 'main-hit', reference: 'main-off', target: { op: '<', value: 1 } },
      { variant: 'main-hit-v1', reference: 'main-off', target: { op: '<', value: 1 } },
      { variant: 'main-off', reference: 'base-off', target: { op: '<=', value: 1 } },
      { variant: 'main-hit', reference: 'base-hit' },
      { variant: 'base-hit', reference: 'base-off' },
    ].filter((c) =>
      [c.variant, c.reference].every((key) => variants.some((v) => v.key === key)),
    ) as Comparison[];

    const samples = new Map<string, number[]>(variants.map((v) => [v.key, []]));
    const requests = new Map<string, number>(variants.map((v) => [v.key, 0]));
    const failures = new Map<string, { count: number; first?: string }>(
      variants.map((v) => [v.key, { count: 0 }]),
    );
    // Warm-up rounds (discarded), then `runs` rounds; each round starts one variant later.
    for (let round = -warmupRounds; round < runs; round++) {
      const shift = ((round % variants.length) + variants.length) % variants.length;
      const order = [...variants.slice(shift), ...variants.slice(0, shift)];
      for (const v of order) {
        const before = identity.counts.total;
        const r = await v
          .once()
          .catch((error): Once => ({ ok: false, ms: Number.NaN, detail: String(error) }));
        const made = identity.counts.total - before;
        if (round < 0) continue;
        if (r.ok) {
          samples.get(v.key)?.push(r.ms);
          requests.set(v.key, (requests.get(v.key) ?? 0) + made);
        } else {
          const f = failures.get(v.key) ?? { count: 0 };
          f.count++;
          f.first ??= r.detail;
          failures.set(v.key, f);
        }
      }
    }

    const results: StartupVariant[] = variants.map((v) => {
      const s = stats(samples.get(v.key) ?? []);
      const f = failures.get(v.key) ?? { count: 0 };
      return {
        key: v.key,
        name: v.name,
        stats: s,
        failures: f.count,
        ...(f.first !== undefined && { firstFailure: f.first }),
        requestsPerRun: s.n ? (requests.get(v.key) ?? 0) / s.n : Number.NaN,
        expectedRequests: v.expectedRequests,
      };
    });
    const byKey = new Map(results.map((r) => [r.key, r]));
    const compared: StartupComparison[] = comparisons.map((c) => {
      const a = byKey.get(c.variant)?.stats;
      const b = byKey.get(c.reference)?.stats;
      const ratioMedian = ratio(a?.median ?? Number.NaN, b?.median ?? Number.NaN);
      const out: StartupComparison = {
        variant: c.variant,
        reference: c.reference,
        ratioMedian,
        ratioP95: ratio(a?.p95 ?? Number.NaN, b?.p95 ?? Number.NaN),
      };
      if (c.target) {
        out.target = `${c.target.op} ${c.target.value}x`;
        out.met =
          Number.isFinite(ratioMedian) &&
          (c.target.op === '<=' ? ratioMedian <= c.target.value : ratioMedian < c.target.value);
      }
      return out;
    });

    const shortName = (key: string) =>
      ({
        node: 'node -e 0',
        esm: 'bare POST (ESM)',
        cjs: 'bare POST (CJS)',
        'main-off': 'main, cache off',
        'base-off': `main, cache off, ${BASELINE_COMMIT}`,
        'base-hit': `main, cache hit, ${BASELINE_COMMIT}`,
      })[key] ?? key;
    const rows: string[][] = [
      [
        'process',
        'median',
        'p95',
        'min',
        'token req/run',
        'failed',
        'vs',
        'ratio median',
        'ratio p95',
        'target',
        'met',
      ],
    ];
    for (const r of results) {
      const mine = compared.filter((c) => c.variant === r.key);
      const timing = [
        ms(r.stats.median),
        ms(r.stats.p95),
        ms(r.stats.min),
        fmt(r.requestsPerRun, r.requestsPerRun % 1 === 0 ? 0 : 2),
        String(r.failures),
      ];
      const cells = (c: StartupComparison | undefined) =>
        c
          ? [
              shortName(c.reference),
              `${fmt(c.ratioMedian, 2)}x`,
              `${fmt(c.ratioP95, 2)}x`,
              c.target ?? '',
              c.met === undefined ? '' : c.met ? 'yes' : 'NO',
            ]
          : ['reference', '', '', '', ''];
      rows.push([r.name, ...timing, ...cells(mine[0])]);
      for (const c of mine.slice(1)) rows.push(['', '', '', '', '', '', ...cells(c)]);
    }
    const notes = [
      `${runs} runs per row (after ${warmupRounds} warm-up rounds), interleaved: every round runs each row once, starting one row later than the round before.`,
      'CLI rows run as a later step would: bash -c, the launcher the main step put on PATH (a /bin/sh script that execs node on dist/cli/index.js); stdout to /dev/null.',
      'Refresh rows: the credentials file gets an expired access token before each run (its refresh token still valid), so each run makes one refresh grant.',
      'Cache-hit rows: one login job (main + post) seeded the cache; every measured job is a new job of that run and restores the login (grant=cache, no token request).',
      'Ratios: median / median of the reference (and p95 / p95); "met" judges the median ratio. token req/run: what the identity server counted.',
      `Rows "at ${BASELINE_COMMIT} (before)" run the action.yml and dist/ of that commit (the last one before this work) in the same rounds: "no growth" is main, cache off vs its row.`,
      'Bare POST rows send a password grant; the refresh rows are compared with them because the identity server answers either grant in well under 1 ms (see the library table): the difference is the client.',
      ...skipped.map((s) => `Skipped: ${s}.`),
      ...results
        .filter((r) => r.failures > 0)
        .map((r) => `${r.name}: ${r.failures} failed run(s), first: ${r.firstFailure}`),
      ...results
        .filter((r) => r.stats.n > 0 && r.requestsPerRun !== r.expectedRequests)
        .map(
          (r) =>
            `${r.name}: ${fmt(r.requestsPerRun, 2)} token requests per run (expected ${r.expectedRequests}).`,
        ),
    ];
    const report: Report = {
      title: 'Start-up: wall time per process, spawn to exit',
      rows,
      notes,
      align: ['l', 'r', 'r', 'r', 'r', 'r', 'l', 'r', 'r', 'l', 'l'],
    };
    printReport(report);
    return { runs, warmupRounds, variants: results, comparisons: compared, skipped, report };
  } finally {
    await Promise.all(jobs.map((j) => j.cleanup()));
    await Promise.all([identity.close(), caches.v2.close(), caches.v1.close()]);
    await rm(scratch, { recursive: true, force: true });
  }
}
