// The security properties of the workflows, asserted on the parsed YAML: the release cannot be
// poisoned through a cache or an install script and keeps its write token out of reach, CI's
// shared-login key survives the re-run of one job, and the reusable pipeline refuses to fan out
// in a public repository without a cache-secret. The pipeline's guard is tested by evaluating
// its expressions with GitHub's own expression evaluator (@actions/expressions).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { data, Evaluator, Lexer, Parser } from '@actions/expressions';
import { truthy } from '@actions/expressions/result';
import { parse as parseYaml } from 'yaml';
import {
  PIPELINE_FILE,
  securityErrors,
  usesThisAction,
  workflowFiles,
} from '../scripts/workflow-lint.ts';

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface Job {
  needs?: string | string[];
  permissions?: unknown;
  env?: Record<string, unknown>;
  steps?: Step[];
}
interface Workflow {
  permissions?: unknown;
  jobs: Record<string, Job>;
}

const files = workflowFiles();
const docs = new Map(files.map(([name, text]) => [name, parseYaml(text) as Workflow]));
const doc = (name: string) => docs.get(name) as Workflow;
const steps = (wf: Workflow) => Object.values(wf.jobs).flatMap((job) => job.steps ?? []);

/** Evaluates a workflow expression (with or without `${{ }}`) as the runner would. */
function evaluate(expression: string, contexts: Record<string, unknown>): data.ExpressionData {
  const inner = expression.trim().replace(/^\$\{\{([\s\S]*)\}\}$/, '$1');
  const parsed = new Parser(new Lexer(inner).lex().tokens, Object.keys(contexts), []).parse();
  const context = JSON.parse(JSON.stringify(contexts), data.reviver) as data.Dictionary;
  return new Evaluator(parsed, context).evaluate();
}

describe('the security rules of scripts/workflow-lint.ts', () => {
  for (const [name, text] of files) {
    it(`${name} follows them`, () => assert.deepEqual(securityErrors(name, text), []));
  }

  it('report what they forbid (the check can fail)', () => {
    const bad = `on: push
permissions: write-all
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v6
      - uses: actions/setup-node@48b55a011bda9f5d6aeb4c2d9c7362e8dae4041e
        with:
          cache: npm
      - run: echo "\${{ github.event.pull_request.title }}"
`;
    const errors = securityErrors('bad.yml', bad).join('\n');
    assert.match(errors, /workflow-level permissions grant write/);
    assert.match(errors, /actions\/checkout@v6 is not pinned to a full commit SHA/);
    assert.match(errors, /setup-node@[0-9a-f]{40} has no version comment/);
    assert.match(errors, /checkout keeps the token/);
    assert.match(errors, /restores a cache in a job whose token can write/);
    assert.match(errors, /inside run:/);
    assert.match(securityErrors('none.yml', 'on: push\njobs: {}\n').join(), /no workflow-level/);
  });

  it('no workflow hands the token to a step that does not name it in its own env', () => {
    for (const [name, text] of files) {
      // github.token only as a whole env value of a step, never in with:, run: or job env.
      const uses = text
        .split('\n')
        .filter((line) => /github\.token|secrets\.GITHUB_TOKEN/.test(line));
      for (const line of uses) {
        assert.match(line, /^\s+[A-Z_]+: \$\{\{ github\.token \}\}$/, `${name}: ${line.trim()}`);
      }
    }
  });
});

describe('release.yml', () => {
  const release = doc('release.yml');

  it('reads by default; only the job that publishes may write, and it runs no npm', () => {
    assert.deepEqual(release.permissions, { contents: 'read' });
    const writers = Object.entries(release.jobs).filter(([, job]) => job.permissions);
    assert.deepEqual(
      writers.map(([, job]) => job.permissions),
      [{ contents: 'write' }],
    );
    const [[writerId, writer]] = writers as [[string, Job]];
    const runs = (writer.steps ?? []).map((s) => String(s.run ?? '')).join('\n');
    assert.doesNotMatch(runs, /\bnpm\b|\bnode\b|\bnpx\b/, `${writerId} runs registry code`);
    assert.ok(!(writer.steps ?? []).some((s) => s.uses?.startsWith('actions/setup-')));
    for (const [id, job] of Object.entries(release.jobs)) {
      if (id !== writerId) assert.deepEqual(job.needs, undefined, `${id} runs first`);
    }
    assert.equal(
      writer.needs,
      Object.keys(release.jobs).find((id) => id !== writerId),
    );
  });

  it('uses no dependency cache and runs no install scripts', () => {
    for (const step of steps(release)) {
      if (step.uses?.startsWith('actions/setup-node@')) {
        assert.equal(step.with?.cache, undefined, 'setup-node must not restore the npm cache');
      }
      assert.ok(!step.uses?.startsWith('actions/cache'), 'no actions/cache in the release');
    }
    const runs = steps(release).map((s) => String(s.run ?? ''));
    const install = runs.find((r) => /\bnpm (ci|install)\b/.test(r));
    assert.match(String(install), /^npm ci --ignore-scripts\b/);
    // npm test/run without --ignore-scripts would run the pretest hook, which reinstalls.
    for (const run of runs) {
      for (const npm of run.match(/^\s*npm (test|run)\b.*$/gm) ?? []) {
        assert.match(npm, /--ignore-scripts/, npm);
      }
    }
  });

  it('keeps no token in .git/config; the push gets it only in its own step', () => {
    for (const step of steps(release)) {
      if (step.uses?.startsWith('actions/checkout@')) {
        assert.equal(step.with?.['persist-credentials'], false);
      }
    }
    const push = steps(release).find((s) => /\bgit push\b/.test(String(s.run)));
    assert.ok(push, 'a step pushes the major tag');
    assert.equal(push.env?.GITHUB_TOKEN, `\${{ github.token }}`);
    assert.match(String(push.run), /GITHUB_TOKEN/);
    const tokenSteps = steps(release).filter((s) =>
      Object.values(s.env ?? {}).some((v) => String(v).includes('github.token')),
    );
    assert.deepEqual(tokenSteps.map((s) => s.name).sort(), [
      'Create the GitHub release',
      'Move the major tag',
    ]);
  });
});

describe('ci.yml', () => {
  const ci = doc('ci.yml');
  const secrets = Object.values(ci.jobs)
    .flatMap((job) => job.steps ?? [])
    .filter((s) => s.uses === './')
    .map((s) => String(s.with?.['cache-secret']));

  it('keys the shared login so that re-running one job opens what attempt 1 saved', () => {
    assert.equal(secrets.length, 2);
    assert.equal(new Set(secrets).size, 1, 'both jobs use the same cache-secret');
    const [secret] = secrets as [string];
    assert.doesNotMatch(secret, /run_attempt/);
    assert.match(secret, /github\.run_id/, 'unique per run');
    assert.match(secret, /secrets\.[A-Z_]+/, 'unguessable where the repository secret exists');
    assert.doesNotMatch(
      JSON.stringify(Object.values(ci.jobs).map((job) => job.steps)),
      /run_attempt/,
      'no key material of ci.yml depends on the attempt',
    );
  });
});

describe(`${PIPELINE_FILE} in a public repository`, () => {
  const login = doc(PIPELINE_FILE).jobs.login as Job;
  const guard = (login.steps ?? [])[0] as Step;

  it('stops the login job first, with one ::error:: line naming cache-secret', () => {
    const firstAction = (login.steps ?? []).findIndex((s) => s.uses);
    assert.ok(firstAction > 0, 'the guard runs before any checkout or login');
    assert.equal(guard.uses, undefined);
    const run = String(guard.run);
    assert.ok(!run.includes('${{'), 'no expression inside the script');
    const errors = run.split('\n').filter((line) => line.includes('::error'));
    assert.equal(errors.length, 1);
    assert.match(errors[0] as string, /::error[^:]*::.*cache-secret/);
    assert.match(errors[0] as string, /openssl rand -base64 32/);
    assert.match(errors[0] as string, /repository secret/);
    assert.match(run, /^exit 1$/m);
    assert.ok((login.steps ?? []).some((s) => s.uses && usesThisAction(s.uses)));
  });

  // The runner evaluates the job's env (where secrets may appear) and then the step's `if:`
  // (where they may not), as `success() && (...)`; for the first step success() is true.
  const guardRuns = (repository: unknown, cacheSecret: string | undefined) => {
    const secrets = cacheSecret === undefined ? {} : { 'cache-secret': cacheSecret };
    const event = repository === undefined ? {} : { repository };
    const env = Object.fromEntries(
      Object.entries(login.env ?? {}).map(([k, v]) => [
        k,
        evaluate(String(v), { secrets, inputs: {} }).coerceString(),
      ]),
    );
    return truthy(evaluate(String(guard.if), { github: { event }, env }));
  };

  it('fires exactly for a public repository without cache-secret (truth table)', () => {
    const repositories: [string, unknown, boolean][] = [
      ['public (private: false)', { private: false }, true],
      ['public (both fields)', { private: false, visibility: 'public' }, true],
      ['public (visibility only)', { visibility: 'public' }, true],
      ['private', { private: true, visibility: 'private' }, false],
      ['internal', { private: true, visibility: 'internal' }, false],
      // In expressions null == false; an event without a repository is not a public one.
      ['no repository in the event', undefined, false],
      ['private: null', { private: null }, false],
    ];
    const secrets: [string, string | undefined, boolean][] = [
      ['not passed', undefined, false],
      ['empty', '', false],
      ['set', 'c2VjcmV0LXNlY3JldC1zZWNyZXQ=', true],
    ];
    for (const [what, repository, isPublic] of repositories) {
      for (const [how, secret, hasSecret] of secrets) {
        assert.equal(
          guardRuns(repository, secret),
          isPublic && !hasSecret,
          `${what}, cache-secret ${how}`,
        );
      }
    }
  });

  it('the header comment tells the author what to do', () => {
    const text = files.find(([name]) => name === PIPELINE_FILE)?.[1] ?? '';
    const header = text.slice(0, text.indexOf('\nname:'));
    assert.match(header, /public repositor/i);
    assert.match(header, /openssl rand -base64 32/);
    assert.match(header, /cache-secret/);
  });
});

describe('the pipeline hands credentials to the run step only with pass-credentials', () => {
  const pipeline = doc(PIPELINE_FILE);
  const runStep = (pipeline.jobs.run?.steps ?? []).find((s) => s.name === 'Run the pipeline');
  const secrets = {
    username: 'u@example.com',
    password: 'pw',
    'totp-secret': 'JBSWY3DPEHPK3PXP',
    'client-secret': 'cs',
  };
  const env = (pass: boolean) =>
    Object.fromEntries(
      Object.entries(runStep?.env ?? {}).map(([k, v]) => [
        k,
        evaluate(String(v), { inputs: { 'pass-credentials': pass }, secrets, matrix: {} }),
      ]),
    );

  it('passes none by default, each one when asked', () => {
    assert.ok(runStep, 'the run step');
    const variables = ['CDSE_USERNAME', 'CDSE_PASSWORD', 'CDSE_TOTP_SECRET', 'CDSE_CLIENT_SECRET'];
    const off = env(false);
    const on = env(true);
    for (const name of variables) {
      assert.equal(off[name]?.coerceString(), '', `${name} is empty without pass-credentials`);
      assert.notEqual(on[name]?.coerceString(), '', `${name} is passed with pass-credentials`);
    }
    assert.equal(on.CDSE_PASSWORD?.coerceString(), 'pw');
  });
});
