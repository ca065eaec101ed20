// The repository's workflows, checked with GitHub's own parser (@actions/workflow-parser), and the
// promises the parser cannot check: `with:` keys that action.yml knows, the reusable pipeline's
// interface as the contract names it, and the shape of its jobs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import {
  actionErrors,
  callsPipeline,
  loadAction,
  loadPipeline,
  PIPELINE_FILE,
  ROOT,
  usageErrors,
  usesThisAction,
  WORKFLOWS_DIR,
  workflowErrors,
  workflowFiles,
} from '../scripts/workflow-lint.ts';

// From shared/design/contract.md: the names callers depend on.
const CONTRACT_INPUTS = [
  'run',
  'matrix',
  'max-parallel',
  'runs-on',
  'token-url',
  'client-id',
  'working-directory',
  's3',
  // Not in the contract: the opt-in of the concurrency issue for steps that outlive the session.
  'pass-credentials',
];
const CONTRACT_SECRETS = [
  'username',
  'password',
  'totp-secret',
  'client-secret',
  'refresh-token',
  'cache-secret',
];

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface Job {
  name?: string;
  needs?: string | string[];
  if?: string;
  uses?: string;
  with?: Record<string, unknown>;
  secrets?: Record<string, unknown>;
  permissions?: unknown;
  'timeout-minutes'?: unknown;
  strategy?: { 'max-parallel'?: unknown; 'fail-fast'?: unknown; matrix?: Record<string, unknown> };
  steps?: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: unknown;
  concurrency?: { group?: string; 'cancel-in-progress'?: unknown } | string;
  jobs: Record<string, Job>;
}

const files = workflowFiles();
const docs = new Map(files.map(([name, text]) => [name, parseYaml(text) as Workflow]));
const pipeline = docs.get(PIPELINE_FILE) as Workflow;
const action = loadAction();

/** A workflow expression as it is written in YAML. */
const expr = (inner: string) => `\${{ ${inner} }}`;
const needs = (job: Job) => (Array.isArray(job.needs) ? job.needs : job.needs ? [job.needs] : []);
const actionSteps = (job: Job) => (job.steps ?? []).filter((s) => s.uses && usesThisAction(s.uses));

describe('workflow files', () => {
  it('are the reusable pipeline, CI and a real-CDSE example', () => {
    const names = files.map(([name]) => name);
    for (const name of [PIPELINE_FILE, 'ci.yml', 'example.yml']) {
      assert.ok(names.includes(name), `.github/workflows/${name} is missing`);
    }
  });

  for (const [name, text] of files) {
    it(`${name} passes GitHub's workflow parser`, async () => {
      assert.deepEqual(await workflowErrors(name, text), []);
    });
  }

  it("GitHub's parser reports what is wrong (the check can fail)", async () => {
    const broken = `on: push
jobs:
  a:
    runs-on: ubuntu-latest
    timeout-minuts: 5
    steps:
      - run: echo \${{ secret.X }}
  b:
    uses: ./.github/workflows/${PIPELINE_FILE}
    with:
      matrix: '["a"]'
      colour: blue
    secrets:
      pasword: x
`;
    const errors = (await workflowErrors('broken.yml', broken)).join('\n');
    assert.match(errors, /Unexpected value 'timeout-minuts'/);
    assert.match(errors, /Unrecognized named-value: 'secret'/);
    assert.match(errors, /Input run is required/);
    assert.match(errors, /Invalid input, colour is not defined/);
    assert.match(errors, /Invalid secret, pasword is not defined/);
  });

  it("action.yml passes GitHub's action parser and runs main + post on node24", () => {
    const text = readFileSync(join(ROOT, 'action.yml'), 'utf8');
    assert.deepEqual(actionErrors('action.yml', text), []);
    const runs = (parseYaml(text) as { runs: Record<string, string> }).runs;
    assert.equal(runs.using, 'node24');
    assert.ok(runs.main && runs.post, 'action.yml needs main and post');
    assert.equal(runs['post-if'], 'always()');
  });
});

describe('uses of the action and the pipeline', () => {
  it('every with: key given to the action is an input of action.yml', () => {
    let uses = 0;
    for (const [name, doc] of docs) {
      assert.deepEqual(usageErrors(name, doc, action, loadPipeline()), []);
      for (const job of Object.values(doc.jobs)) uses += actionSteps(job).length;
    }
    assert.ok(uses >= 6, `expected the workflows to use the action, found ${uses} uses`);
  });

  it('an unknown with: key or pipeline input is reported (the check can fail)', () => {
    const doc = {
      jobs: {
        a: { steps: [{ uses: './', with: { username: 'u', pasword: 'p' } }] },
        b: { steps: [{ uses: 'cdse-auth/cdse-auth@v1', with: { 'cache-secet': 'x' } }] },
        c: {
          uses: 'cdse-auth/cdse-auth/.github/workflows/cdse-pipeline.yml@v1',
          with: { matrix: '[]', parallel: 2 },
          secrets: { user: 'x' },
        },
        d: {
          uses: './.github/workflows/cdse-pipeline.yml',
          with: { run: 'x' },
          secrets: 'inherit',
        },
      },
    };
    const errors = usageErrors('t.yml', doc, action, loadPipeline()).join('\n');
    assert.match(errors, /'pasword' is not an input of action.yml/);
    assert.match(errors, /'cache-secet' is not an input of action.yml/);
    assert.match(errors, /passes 'parallel', which cdse-pipeline.yml does not take/);
    assert.match(errors, /does not pass the required input 'run'/);
    assert.match(errors, /passes secret 'user', unknown/);
    assert.match(errors, /passes every secret \(inherit\)/);
  });

  it('recognises the ways a workflow names the action and the pipeline', () => {
    for (const uses of [
      './',
      'cdse-auth/cdse-auth@v1',
      'cdse-auth/cdse-auth@0123abc',
      './.cdse-auth/action',
    ]) {
      assert.ok(usesThisAction(uses), uses);
    }
    for (const uses of ['actions/checkout@v6', './other', 'cdse-auth/other@v1']) {
      assert.ok(!usesThisAction(uses), uses);
    }
    assert.ok(callsPipeline('./.github/workflows/cdse-pipeline.yml'));
    assert.ok(callsPipeline('cdse-auth/cdse-auth/.github/workflows/cdse-pipeline.yml@v1.2.3'));
    assert.ok(!callsPipeline('other/repo/.github/workflows/cdse-pipeline.yml@v1'));
  });

  it('third-party actions are pinned to a full commit SHA', () => {
    for (const [name, doc] of docs) {
      for (const [jobId, job] of Object.entries(doc.jobs)) {
        for (const step of job.steps ?? []) {
          if (!step.uses || step.uses.startsWith('./')) continue;
          assert.match(step.uses, /@[0-9a-f]{40}$/, `${name} ${jobId}: ${step.uses}`);
        }
      }
    }
  });

  it('workflows set permissions explicitly and every job has a timeout', () => {
    for (const [name, doc] of docs) {
      assert.ok(doc.permissions !== undefined, `${name} has no top-level permissions`);
      for (const [jobId, job] of Object.entries(doc.jobs)) {
        // A job that calls a reusable workflow takes the timeouts of the called jobs.
        if (job.uses) continue;
        assert.ok(job['timeout-minutes'] !== undefined, `${name} ${jobId} has no timeout-minutes`);
      }
    }
  });

  it('checkouts never keep the token (the release passes it to the one step that pushes)', () => {
    for (const [name, doc] of docs) {
      for (const [jobId, job] of Object.entries(doc.jobs)) {
        for (const step of job.steps ?? []) {
          if (!step.uses?.startsWith('actions/checkout@')) continue;
          assert.equal(step.with?.['persist-credentials'], false, `${name} ${jobId}`);
        }
      }
    }
  });
});

describe(`the reusable workflow (${PIPELINE_FILE})`, () => {
  const call = loadPipeline();

  it('takes exactly the inputs and secrets of the contract', () => {
    assert.deepEqual([...call.inputs.keys()].sort(), [...CONTRACT_INPUTS].sort());
    assert.deepEqual([...call.secrets.keys()].sort(), [...CONTRACT_SECRETS].sort());
    assert.ok(call.inputs.get('run')?.required, 'run is required');
    for (const [name, spec] of call.inputs) {
      if (name !== 'run') assert.ok(!spec.required, `${name} should be optional`);
    }
    for (const [name, spec] of call.secrets)
      assert.ok(!spec.required, `${name} should be optional`);
  });

  it('has the contract types and defaults, and the action defaults for the endpoint', () => {
    assert.equal(call.inputs.get('matrix')?.type, 'string');
    assert.deepEqual(JSON.parse(String(call.inputs.get('matrix')?.default)), ['']);
    assert.equal(call.inputs.get('max-parallel')?.type, 'number');
    assert.equal(call.inputs.get('max-parallel')?.default, 4);
    assert.equal(call.inputs.get('runs-on')?.type, 'string');
    assert.equal(call.inputs.get('token-url')?.default, action.inputs.get('token-url')?.default);
    assert.equal(call.inputs.get('client-id')?.default, action.inputs.get('client-id')?.default);
    assert.equal(call.inputs.get('s3')?.type, 'boolean');
    assert.equal(call.inputs.get('s3')?.default, false);
    for (const [name, spec] of [...call.inputs, ...call.secrets]) {
      assert.ok(spec.description, `${name} has no description`);
    }
  });

  it('least privilege, a concurrency group of its own, no cancelling of running pipelines', () => {
    assert.deepEqual(pipeline.permissions, { contents: 'read' });
    for (const [jobId, job] of Object.entries(pipeline.jobs)) {
      assert.equal(job.permissions, undefined, `${jobId} must not widen the permissions`);
    }
    const concurrency = pipeline.concurrency as { group: string; 'cancel-in-progress': unknown };
    assert.match(concurrency.group, /^cdse-pipeline-/);
    assert.equal(concurrency['cancel-in-progress'], false);
  });

  it('logs in once, fans the command out over the matrix, and logs out whatever happened', () => {
    const { login, run, logout } = pipeline.jobs;
    assert.ok(login && run && logout, 'jobs login, run and logout');
    assert.deepEqual(Object.keys(pipeline.jobs), ['login', 'run', 'logout']);

    assert.deepEqual(needs(run), ['login']);
    assert.equal(run.strategy?.matrix?.item, expr('fromJSON(inputs.matrix)'));
    assert.equal(run.strategy?.['max-parallel'], expr('inputs.max-parallel'));
    assert.equal(run.strategy?.['fail-fast'], false);
    const command = (run.steps ?? []).at(-1) as Step;
    assert.match(String(command.env?.CDSE_ITEM), /matrix\.item/);
    assert.equal(command.env?.CDSE_PIPELINE_RUN, expr('inputs.run'));
    assert.ok(!String(command.run).includes('${{'), 'the command must reach bash via env only');

    assert.deepEqual(needs(logout).sort(), ['login', 'run']);
    assert.match(String(logout.if), /always\(\)/);
    assert.match(String(logout.if), /needs\.login\.result == 'success'/);

    const [loginStep] = actionSteps(login);
    const [runStep] = actionSteps(run);
    const [logoutStep] = actionSteps(logout);
    assert.ok(loginStep && runStep && logoutStep, 'each job runs the action');
    assert.equal(logoutStep.with?.logout, true);
    assert.equal(loginStep.with?.logout, undefined);
    assert.equal(runStep.with?.logout, undefined);
    for (const step of [loginStep, runStep, logoutStep]) {
      assert.notEqual(step.with?.cache, false, 'the jobs share the login through the cache');
    }
  });

  it('every job passes the same identity to the action (or the cache would not match)', () => {
    const identity = (job: Job) => {
      const given = { ...actionSteps(job)[0]?.with };
      delete given.logout;
      delete given['export-env'];
      return given;
    };
    const login = identity(pipeline.jobs.login as Job);
    for (const key of [...CONTRACT_SECRETS]) {
      assert.equal(login[key], expr(`secrets.${key}`), `login passes secret ${key}`);
    }
    assert.equal(login['token-url'], expr('inputs.token-url'));
    assert.equal(login['client-id'], expr('inputs.client-id'));
    // Every job: the login job creates the pair, run jobs reuse it, the logout job deletes it.
    assert.equal(login.s3, expr('inputs.s3'));
    assert.deepEqual(identity(pipeline.jobs.run as Job), login);
    assert.deepEqual(identity(pipeline.jobs.logout as Job), login);
  });

  it('runs the action from the commit of the workflow itself', () => {
    for (const [jobId, job] of Object.entries(pipeline.jobs)) {
      const steps = job.steps ?? [];
      const use = steps.findIndex((s) => s.uses && usesThisAction(s.uses));
      const folder = String(steps[use]?.uses).replace(/^\.\//, '').replace(/\/$/, '');
      const checkout = steps
        .slice(0, use)
        .find((s) => s.uses?.startsWith('actions/checkout@') && s.with?.path === folder);
      assert.ok(checkout, `${jobId}: no checkout of the action into ${folder}`);
      assert.match(String(checkout.with?.ref), /job\.workflow_sha/);
      assert.match(String(checkout.with?.repository), /job\.workflow_repository/);
      // A later checkout into the workspace root would delete the action's folder.
      const after = steps.slice(steps.indexOf(checkout) + 1, use);
      assert.ok(!after.some((s) => s.uses?.startsWith('actions/checkout@') && !s.with?.path));
    }
  });
});

describe('the repository workflows', () => {
  const stepsOf = (doc: Workflow) =>
    Object.values(doc.jobs).flatMap((job) => (job.steps ?? []).map((s) => String(s.run ?? '')));

  it('ci.yml runs lint, type-check and tests, and fails when dist/ is stale', () => {
    const ci = docs.get('ci.yml') as Workflow;
    const runs = stepsOf(ci);
    assert.ok(runs.includes('npm test'), 'npm test (npm run check = tsc + biome, then all tests)');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    assert.match(pkg.scripts.test, /npm run check/);
    assert.match(pkg.scripts.check, /tsc --noEmit/);
    assert.match(pkg.scripts.check, /biome check/);
    const dist = Object.values(ci.jobs).find((job) =>
      (job.steps ?? []).some((s) => s.run === 'npm run build'),
    );
    assert.ok(dist, 'a job rebuilds dist/');
    const check = (dist.steps ?? []).map((s) => String(s.run ?? '')).join('\n');
    assert.match(check, /git (status --porcelain|diff --exit-code)[^\n]*dist/);
    assert.match(check, /exit 1/);
    assert.ok(ci.on.pull_request !== undefined && ci.on.push !== undefined);
  });

  it('ci.yml runs the committed action twice, the second time from the cache', () => {
    const ci = docs.get('ci.yml') as Workflow;
    const jobs = Object.entries(ci.jobs).filter(([, job]) =>
      actionSteps(job).some((s) => s.uses === './'),
    );
    assert.equal(jobs.length, 2);
    const [[first], [, second]] = jobs as [[string, Job], [string, Job]];
    assert.deepEqual(needs(second), [first]);
    const checks = (second.steps ?? []).map((s) => String(s.run ?? '')).join('\n');
    assert.match(checks, /test "\$GRANT" = cache/);
  });

  it('the example uses ./ against the real CDSE only when the secrets exist', () => {
    const example = docs.get('example.yml') as Workflow;
    const gate = Object.entries(example.jobs).find(([, job]) =>
      (job.steps ?? []).some((s) =>
        Object.values(s.env ?? {}).some((v) => /secrets\./.test(String(v))),
      ),
    );
    assert.ok(gate, 'a job turns the presence of the secrets into an output');
    const [gateId] = gate;
    const real = Object.entries(example.jobs).filter(([id]) => id !== gateId);
    assert.ok(real.length >= 1);
    for (const [id, job] of real) {
      assert.ok(needs(job).includes(gateId), `${id} needs ${gateId}`);
      assert.match(
        String(job.if),
        new RegExp(`needs\\.${gateId}\\.outputs\\.`),
        `${id} is guarded`,
      );
    }
    const local = real.flatMap(([, job]) => actionSteps(job)).find((s) => s.uses === './');
    assert.ok(local, 'the example runs the action from this repository (uses: ./)');
    assert.match(String(local.with?.password), /secrets\./);
    assert.ok(!local.with?.['token-url'], 'the example talks to the real CDSE');
    assert.ok(
      real.some(([, job]) => job.uses && callsPipeline(job.uses)),
      'the example calls the reusable workflow',
    );
  });
});

it('workflow files end with a newline and hold no tabs', () => {
  for (const [name, text] of files) {
    assert.ok(text.endsWith('\n'), `${name}: no final newline`);
    assert.ok(!text.includes('\t'), `${name}: tab`);
  }
  assert.ok(WORKFLOWS_DIR.endsWith(join('.github', 'workflows')));
});
