// npm run demo: the bundled action run the way GitHub's runner runs it, against a local
// CDSE-compatible identity server and an Actions cache emulator (no internet, no real account).
// Shows what a workflow log would show: two jobs of one workflow, the second reusing the first
// one's login through the encrypted cache, a later step that gets a token with `cdse-auth token`,
// and the post steps. Exits non-zero if anything did not work as the action promises.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogMasker } from '../test/leaks.ts';
import { Job, type StepResult } from '../test/runner.ts';
import { CacheServer } from '../test/servers/cache-server.ts';
import { IdentityServer } from '../test/servers/identity-server.ts';

const USER = 'demo@example.com';
const PASSWORD = 'demo-password';

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: string) => (text: string) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
const bold = paint('1');
const dim = paint('2');
const green = paint('32');
const red = paint('31');
const cyan = paint('36');

const print = (line = '') => process.stdout.write(`${line}\n`);
const problems: string[] = [];
const check = (ok: boolean, what: string) => {
  if (!ok) problems.push(what);
  return ok;
};

function heading(text: string): void {
  print();
  print(bold(cyan(`━━ ${text} ${'━'.repeat(Math.max(0, 70 - text.length))}`)));
}

function stepTitle(title: string, result: StepResult): void {
  const status =
    result.code === 0 ? green(`✓ exit 0`) : red(`✗ exit ${result.signal ?? result.code}`);
  print(`${bold(`▶ ${title}`)}  ${dim(`(${Math.round(result.durationMs)} ms)`)}  ${status}`);
}

const LABELS: Record<string, string> = {
  error: 'Error: ',
  warning: 'Warning: ',
  notice: 'Notice: ',
  group: '▸ ',
};

/**
 * What the log shows for a step's output (stdout and stderr lines in the order they came; the
 * runner reads workflow commands on both): mask commands registered in order and hidden,
 * annotations rendered, debug lines dropped (no step debug logging).
 */
function render(masker: LogMasker, result: StepResult): string[] {
  const shown: string[] = [];
  for (const line of masker.display(result.lines)) {
    const command = /^::([\w-]+)(?: [^:]*)?::(.*)$/.exec(line);
    if (!command) {
      if (line !== '') shown.push(line);
      continue;
    }
    const [, name, data] = command as unknown as [string, string, string];
    if (name === 'debug' || name === 'endgroup') continue;
    const message = data.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
    shown.push(masker.mask(`${LABELS[name] ?? `::${name}::`}${message}`));
  }
  return shown;
}

function showLog(masker: LogMasker, result: StepResult, secrets: string[]): void {
  const lines = render(masker, result);
  if (lines.length === 0) print(dim('  (no log lines)'));
  for (const line of lines) print(`  ${line.startsWith('Error:') ? red(line) : line}`);
  const leaked = secrets.filter((s) => s && lines.some((line) => line.includes(s)));
  check(leaked.length === 0, `a secret appeared in clear in the log of a step`);
  check(!lines.some((l) => l.startsWith('Error:')), 'a step reported an error');
}

function showOutputs(masker: LogMasker, result: StepResult): void {
  const names = Object.keys(result.outputs);
  if (names.length === 0) return;
  print(dim('  outputs:'));
  const width = Math.max(...names.map((n) => n.length));
  for (const name of names) {
    print(`    ${name.padEnd(width)}  ${masker.mask(result.outputs[name] ?? '')}`);
  }
}

async function main(): Promise<number> {
  const identity = await IdentityServer.start({ users: [{ username: USER, password: PASSWORD }] });
  const cache = await CacheServer.start();
  // Hosted runners give every job the same RUNNER_TEMP path (emptied at job start).
  const runnerParent = await mkdtemp(join(tmpdir(), 'cdse-demo-'));
  const runnerTemp = join(runnerParent, 'temp');
  const cacheSecret = randomBytes(32).toString('base64');
  const runId = String(Date.now());
  const inputs = {
    username: USER,
    password: PASSWORD,
    'token-url': identity.tokenUrl,
    'cache-secret': cacheSecret,
  };
  // What must never show in a log line.
  const secrets = (extra: Array<string | undefined>) => [
    PASSWORD,
    cacheSecret,
    ...extra.filter((s): s is string => !!s),
  ];

  try {
    print(bold('cdse-auth demo: the action as GitHub’s runner runs it, all on this machine'));
    print(dim(`  identity server  ${identity.tokenUrl}`));
    print(dim(`  demo user        ${USER} (password from a secret: masked)`));
    print(dim(`  Actions cache    emulator at ${cache.origin}`));
    print(dim('  workflow         uses: cdse-auth with username, password, cache-secret'));

    // ── Job 1: logs in and seeds the cache ──────────────────────────────────────────────────
    heading('Job 1 (fetch): logs in and shares the login through the cache');
    const job1 = await Job.create({
      inputs,
      env: cache.env('v2'),
      runId,
      job: 'fetch',
      runnerTemp,
    });
    const masker1 = new LogMasker();
    const main1 = await job1.runMain();
    stepTitle('Run cdse-auth (main step)', main1);
    const token1 = main1.outputs['access-token'];
    showLog(masker1, main1, secrets([token1]));
    showOutputs(masker1, main1);
    check(main1.code === 0, 'job 1: the main step failed');
    check(main1.outputs.grant === 'password', 'job 1: expected a password login');
    check(!!token1 && identity.accessTokenValid(token1), 'job 1: no valid access token');

    print();
    const later = await job1.runStep('/bin/sh', [
      '-e',
      '-c',
      'cdse-auth token\ncdse-auth header >/dev/null',
    ]);
    stepTitle('Later step: run: cdse-auth token', later);
    print(dim('  $ cdse-auth token'));
    showLog(masker1, later, secrets([token1]));
    const laterToken = later.stdout.split('\n')[0]?.trim() ?? '';
    if (
      check(later.code === 0, 'later step: cdse-auth failed') &&
      check(identity.accessTokenValid(laterToken), 'later step: cdse-auth gave no valid token')
    ) {
      print(green(`  ✓ got an access token (${laterToken.length} characters) the server accepts`));
    }

    print();
    const post1 = await job1.runPost();
    stepTitle('Post Run cdse-auth (post step)', post1);
    showLog(masker1, post1, secrets([token1]));
    check(post1.code === 0, 'job 1: the post step failed');
    await job1.cleanup();

    // ── Job 2: another job of the same workflow, the last one: reuses the login, logs out ───
    heading('Job 2 (process): reuses the cached login, ends the session');
    const inputs2 = { ...inputs, logout: 'true' };
    const job2 = await Job.create({
      inputs: inputs2,
      env: cache.env('v2'),
      runId,
      job: 'process',
      runnerTemp,
    });
    const masker2 = new LogMasker();
    const main2 = await job2.runMain();
    stepTitle('Run cdse-auth (main step, logout: true)', main2);
    showLog(masker2, main2, secrets([main2.outputs['access-token']]));
    showOutputs(masker2, main2);
    check(main2.code === 0, 'job 2: the main step failed');
    check(main2.outputs.grant === 'cache', 'job 2: expected the cached login (grant: cache)');
    print();
    const post2 = await job2.runPost();
    stepTitle('Post Run cdse-auth (post step)', post2);
    showLog(masker2, post2, secrets([main2.outputs['access-token']]));
    check(post2.code === 0, 'job 2: the post step failed');
    await job2.cleanup();

    // ── What the identity server saw ─────────────────────────────────────────────────────────
    heading('What the identity server saw');
    const c = identity.counts;
    print(`  token requests   ${c.password} password, ${c.refresh_token} refresh, for 2 jobs`);
    print(`  logouts          ${c.logout}`);
    print(`  active sessions  ${identity.activeSessions()}`);
    print(`  cache entries    ${cache.entries.length} (sealed with AES-256-GCM)`);
    check(c.password === 1 && c.refresh_token === 0, 'expected one login for the whole workflow');
    check(identity.activeSessions() === 0, 'the session should have ended');
  } finally {
    await identity.close();
    await cache.close();
    await rm(runnerParent, { recursive: true, force: true });
  }

  print();
  if (problems.length > 0) {
    for (const problem of problems) print(red(`✗ ${problem}`));
    return 1;
  }
  print(green(bold('✓ Demo complete: one login served both jobs; no secret reached the log.')));
  return 0;
}

process.exitCode = await main().catch((error: unknown) => {
  print(red(`✗ demo failed: ${error instanceof Error ? error.stack : String(error)}`));
  return 1;
});
