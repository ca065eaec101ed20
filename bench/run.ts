// npm run bench: one table per concern, every row of a table measured in the same run.
//   Start-up       the CLI hot path, the CLI with a refresh due, the main step (cache off, cache
//                  hit) against `node -e 0`, bare POST scripts and curl + jq (startup.ts)
//   dist/ bytes    every file, the total against the previous layout, duplicates (dist.ts)
//   Sessions       what workflows of 1, 10 and 100 run jobs open and leave open (sessions.ts)
//   Library        the TokenManager's single flight and overhead (library.ts)
// Prints the machine first and, last, the tables as Markdown for the README; writes
// .bench/results.json. Measures, never asserts: always exits 0.
// BENCH_RUNS (default 60) sets the start-up runs per row; BENCH_QUICK=1 skips the 100-job
// workflows.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../test/runner.ts';
import { benchDist } from './dist.ts';
import { benchLibrary } from './library.ts';
import { benchSessions } from './sessions.ts';
import { benchStartup } from './startup.ts';
import { fmt, markdown, type Report, say } from './util.ts';

const started = performance.now();
const elapsed = () => (performance.now() - started) / 1000;
const cpuModel = cpus()[0]?.model?.trim() ?? 'unknown CPU';
const machine = {
  node: process.version,
  cpu: cpuModel,
  cores: availableParallelism(),
  platform: `${process.platform} ${process.arch}`,
};
const describeMachine = `Node ${machine.node}, ${machine.cores} cores × ${machine.cpu}, ${machine.platform}`;
const results: Record<string, unknown> = { date: new Date().toISOString(), machine };
const reports: Report[] = [];

let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT })
    .toString()
    .trim();
} catch {}
results.commit = commit;

say('cdse-auth bench');
say(`machine: ${describeMachine}`);
say(`commit ${commit} (plus whatever the working tree changes), ${results.date}`);

// The bench measures the built dist/; build it only when it is missing (others may be building).
const distEntry = join(REPO_ROOT, 'dist', 'shared', 'index.js');
if (!existsSync(distEntry)) {
  say('dist/ is missing: npm run build');
  try {
    execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'build.ts')], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  } catch (error) {
    say(`!! build failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
try {
  const built = statSync(distEntry).mtimeMs;
  const newer: string[] = [];
  const scan = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) scan(path);
      else if (statSync(path).mtimeMs > built) newer.push(path.slice(REPO_ROOT.length + 1));
    }
  };
  scan(join(REPO_ROOT, 'src'));
  results.distOlderThan = newer;
  say(
    newer.length === 0
      ? 'dist/ is newer than every file in src/'
      : `!! dist/ is older than ${newer.length} file(s) in src/ (${newer.slice(0, 3).join(', ')}${newer.length > 3 ? ', …' : ''}): measuring dist/ as it is; npm run build first for current numbers`,
  );
} catch {}

/**
 * A private copy of action.yml and dist/ that every job of the bench runs from: others may
 * rebuild dist/ while the bench runs (the build replaces the folder), and a job must not load
 * half of one build and half of the next. Copied twice until both copies agree.
 */
async function snapshotAction(): Promise<string> {
  const entries = ['main/index.js', 'post/index.js', 'cli/index.js', 'shared/index.js'];
  const fingerprint = async (root: string) => {
    const parts: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
        a.name.localeCompare(b.name),
      )) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else parts.push(`${path.slice(root.length)}:${statSync(path).size}`);
      }
    };
    walk(join(root, 'dist'));
    const shared = await readFile(join(root, 'dist', 'shared', 'index.js'));
    return `${parts.join('|')}#${shared.subarray(-4096).toString('base64')}`;
  };
  let lastError: unknown;
  for (let attempt = 0; attempt < 10; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), 'cdse-bench-action-'));
    try {
      await copyFile(join(REPO_ROOT, 'action.yml'), join(dir, 'action.yml'));
      await cp(join(REPO_ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
      const missing = entries.filter((e) => !existsSync(join(dir, 'dist', e)));
      if (missing.length) throw new Error(`dist/ lacks ${missing.join(', ')}`);
      if ((await fingerprint(dir)) === (await fingerprint(REPO_ROOT))) return dir;
      throw new Error('dist/ changed while it was copied');
    } catch (error) {
      lastError = error;
      await rm(dir, { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }
  throw lastError;
}

let actionDir = REPO_ROOT;
try {
  actionDir = await snapshotAction();
  const snapshot = actionDir;
  process.on('exit', () => rmSync(snapshot, { recursive: true, force: true }));
  say(`running the action from a snapshot of action.yml and dist/ (${actionDir})`);
} catch (error) {
  say(
    `!! could not snapshot dist/ (${error instanceof Error ? error.message : String(error)}): running from the repository`,
  );
}

const attempt = async <T>(name: string, work: () => Promise<T>): Promise<T | undefined> => {
  const t0 = performance.now();
  try {
    const value = await work();
    results[name] = value;
    say(`(${name}: ${fmt((performance.now() - t0) / 1000, 0)} s)`);
    return value;
  } catch (error) {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    say(`!! ${name} bench failed: ${message}`);
    results[name] = { error: message };
    return undefined;
  }
};

const runs = Math.max(3, Number(process.env.BENCH_RUNS) || 60);
const startup = await attempt('startup', () => benchStartup(actionDir, runs));
if (startup) reports.push(startup.report);
const dist = await attempt('dist', () => benchDist(actionDir));
if (dist) reports.push(dist.report);
const quick = process.env.BENCH_QUICK === '1';
// Whatever is left of ~5.5 minutes goes to the sessions table (it skips 100-job workflows it
// would not finish in time, and says so).
const sessions = await attempt('sessions', () =>
  benchSessions({
    actionDir,
    sizes: quick ? [1, 10] : [1, 10, 100],
    parallel: 4,
    deadlineSeconds: 330 - elapsed() - 5,
  }),
);
if (sessions) reports.push(sessions.report);
const library = await attempt('library', benchLibrary);
if (library) reports.push(...library.reports);

const seconds = elapsed();
results.seconds = seconds;
const dir = join(REPO_ROOT, '.bench');
await mkdir(dir, { recursive: true });
await writeFile(join(dir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);

const day = String(results.date).slice(0, 10);
say();
say('---------- Markdown for README.md (the latest tables) ----------');
say();
say('### Benchmarks');
say();
say(
  `\`npm run bench\` (${day}, commit ${commit}, ${fmt(seconds, 0)} s) on ${describeMachine}. Ratios come from the same run; absolute times depend on the machine.`,
);
for (const report of reports) {
  say();
  say(markdown(report));
}
say();
say('---------- end of Markdown ----------');
say();
say(`done in ${fmt(seconds, 0)} s; results in .bench/results.json`);
process.exit(0);
