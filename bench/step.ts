// Issue 3: the main step's wall time with a full password grant on loopback (cache off), side by
// side with `node -e 0`, a bare node:http POST script and curl + jq; and the bundle sizes.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Job, REPO_ROOT, run } from '../test/runner.ts';
import { IdentityServer } from '../test/servers/identity-server.ts';
import { fmt, kB, ms, ratio, type Stats, say, section, stats, table } from './util.ts';

const USER = 'bench@example.com';
const PASSWORD = 'bench-password';
const MAIN_TARGET_BYTES = 650_000;

export interface StepVariant {
  name: string;
  stats: Stats;
  failures: number;
}

export interface BundleSize {
  file: string;
  bytes: number;
  note: string;
}

export interface StepResults {
  runs: number;
  variants: StepVariant[];
  ratioMainToBarePost: { median: number; p95: number };
  /** Main-step wall times (ms), reused by the cache bench as the cache-off baseline. */
  mainSamples: number[];
  bundles: BundleSize[];
  mainBundleTargetBytes: number;
}

const BARE_POST = `import { request } from 'node:http';
const body = process.env.FORM;
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

async function has(command: string): Promise<boolean> {
  try {
    await promisify(execFile)('/bin/sh', ['-c', `command -v ${command}`]);
    return true;
  } catch {
    return false;
  }
}

/** Runs a process (environment: this one's by default); `ms` is its wall time, spawn to exit. */
async function timed(
  command: string,
  args: string[],
  env: Record<string, string> = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined),
  ),
) {
  const started = performance.now();
  const result = await run(command, args, { env, cwd: REPO_ROOT, timeoutMs: 60_000 });
  return { ...result, ms: performance.now() - started };
}

async function bundleSizes(): Promise<BundleSize[]> {
  const sizes: BundleSize[] = [];
  for (const step of ['main', 'post', 'cli']) {
    const dir = join(REPO_ROOT, 'dist', step);
    const file = join(dir, 'index.js');
    const note = step === 'main' ? `target < ${kB(MAIN_TARGET_BYTES)}` : '';
    sizes.push({ file: `dist/${step}/index.js`, bytes: (await stat(file)).size, note });
  }
  const chunks = (await readdir(join(REPO_ROOT, 'dist', 'main'))).filter((f) =>
    /^\d+\.index\.js$/.test(f),
  );
  for (const chunk of chunks.sort()) {
    const bytes = (await stat(join(REPO_ROOT, 'dist', 'main', chunk))).size;
    sizes.push({ file: `dist/main/${chunk}`, bytes, note: 'lazy chunk (cache path only)' });
  }
  return sizes;
}

export async function benchStep(runs: number): Promise<StepResults> {
  section('Issue 3: main step wall time (cache off, full password grant on loopback)');
  const server = await IdentityServer.start({
    users: [{ username: USER, password: PASSWORD }],
    maxSessionsPerUser: 1_000_000,
  });
  const scratch = await mkdtemp(join(tmpdir(), 'cdse-bench-'));
  const script = join(scratch, 'bare-post.mjs');
  await writeFile(script, BARE_POST);
  const form = new URLSearchParams({
    grant_type: 'password',
    client_id: 'cdse-public',
    username: USER,
    password: PASSWORD,
  }).toString();
  const node = process.execPath;
  const inputs = {
    username: USER,
    password: PASSWORD,
    'token-url': server.tokenUrl,
    cache: 'false',
  };

  type Variant = { name: string; once: () => Promise<{ ok: boolean; ms: number }> };
  const variants: Variant[] = [
    {
      name: 'node -e 0',
      once: async () => {
        const r = await timed(node, ['-e', '0']);
        return { ok: r.code === 0, ms: r.ms };
      },
    },
    {
      name: 'bare node:http POST script',
      once: async () => {
        const r = await timed(node, [script], {
          PATH: process.env.PATH ?? '',
          TOKEN_URL: server.tokenUrl,
          FORM: form,
        });
        return { ok: r.code === 0, ms: r.ms };
      },
    },
  ];
  const curlJq = (await has('curl')) && (await has('jq'));
  if (curlJq) {
    variants.push({
      name: 'curl -s -d … | jq -r .access_token',
      once: async () => {
        const r = await timed(
          '/bin/sh',
          ['-c', 'curl -s -d "$FORM" "$TOKEN_URL" | jq -r .access_token'],
          { PATH: process.env.PATH ?? '', TOKEN_URL: server.tokenUrl, FORM: form },
        );
        return { ok: r.code === 0 && r.stdout.trim().length > 20, ms: r.ms };
      },
    });
  }
  variants.push({
    name: 'action main step (dist/main)',
    once: async () => {
      const job = await Job.create({ inputs, stepTimeoutMs: 60_000 });
      try {
        const r = await job.runMain();
        return { ok: r.code === 0 && r.outputs.grant === 'password', ms: r.durationMs };
      } finally {
        await job.cleanup();
      }
    },
  });
  const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const failures = new Map<string, number>(variants.map((v) => [v.name, 0]));
  try {
    // Two warm-up rounds, then round-robin so that machine noise spreads over every variant.
    for (let round = -2; round < runs; round++) {
      for (const v of variants) {
        const r = await v.once();
        if (round < 0) continue;
        if (r.ok) samples.get(v.name)?.push(r.ms);
        else failures.set(v.name, (failures.get(v.name) ?? 0) + 1);
      }
    }
  } finally {
    await server.close();
    await rm(scratch, { recursive: true, force: true });
  }

  const results: StepVariant[] = variants.map((v) => ({
    name: v.name,
    stats: stats(samples.get(v.name) ?? []),
    failures: failures.get(v.name) ?? 0,
  }));
  const main = results.find((r) => r.name.startsWith('action main'));
  const bare = results.find((r) => r.name.startsWith('bare'));
  const ratioMainToBarePost = {
    median: ratio(main?.stats.median ?? Number.NaN, bare?.stats.median ?? Number.NaN),
    p95: ratio(main?.stats.p95 ?? Number.NaN, bare?.stats.p95 ?? Number.NaN),
  };
  say(
    table([
      ['process', 'runs', 'median', 'p95', 'min', 'failed', 'vs bare POST (median)'],
      ...results.map((r) => [
        r.name,
        String(r.stats.n),
        ms(r.stats.median),
        ms(r.stats.p95),
        ms(r.stats.min),
        String(r.failures),
        `${fmt(ratio(r.stats.median, bare?.stats.median ?? Number.NaN), 2)}x`,
      ]),
    ]),
  );
  if (!curlJq) say('  (curl or jq not found: that row is left out)');
  say(
    `main / bare POST: ${fmt(ratioMainToBarePost.median, 2)}x median, ${fmt(ratioMainToBarePost.p95, 2)}x p95 (target <= 1.5x)`,
  );

  const bundles = await bundleSizes();
  say();
  say(
    table([
      ['bundle', 'size', 'note'],
      ...bundles.map((b) => [
        b.file,
        kB(b.bytes),
        b.note +
          (b.file === 'dist/main/index.js'
            ? b.bytes < MAIN_TARGET_BYTES
              ? ' (met)'
              : ' (NOT met)'
            : ''),
      ]),
    ]),
  );
  return {
    runs,
    variants: results,
    ratioMainToBarePost,
    mainSamples: samples.get(main?.name ?? '') ?? [],
    bundles,
    mainBundleTargetBytes: MAIN_TARGET_BYTES,
  };
}
