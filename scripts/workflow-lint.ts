// node scripts/workflow-lint.ts: checks every workflow in .github/workflows and every workflow in
// README.md's yaml blocks with GitHub's own parser (@actions/workflow-parser, the one behind the
// Actions language service), then what the parser cannot know: that each `with:` given to this
// action names an input of action.yml, and that each call of the reusable pipeline workflow
// passes only its inputs and secrets. The repository's own workflows also get the security rules
// of securityErrors() (pins, tokens, caches, expressions in scripts); README examples do not.
// Exits 1 and lists the problems when there are any.
// test/workflows.test.ts and test/readme.test.ts use the same functions.
import { readdirSync, readFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  type ActionMetadata,
  type CallableWorkflow,
  readActionMetadata,
  readWorkflowCall,
} from './readme-inputs.ts';

export const ROOT = resolve(import.meta.dirname, '..');
export const WORKFLOWS_DIR = join(ROOT, '.github', 'workflows');
export const PIPELINE_FILE = 'cdse-pipeline.yml';

// The parser's dist imports its JSON schemas without `with { type: 'json' }`, which bundlers
// accept and Node does not: add the attribute for those two files only.
registerHooks({
  load(url, context, nextLoad) {
    if (url.endsWith('.json') && url.includes('/@actions/workflow-parser/')) {
      return nextLoad(url, {
        ...context,
        importAttributes: { ...context.importAttributes, type: 'json' },
      });
    }
    return nextLoad(url, context);
  },
});
const parser = await import('@actions/workflow-parser');
const actionParser = await import('@actions/workflow-parser/actions/index');
const { ErrorPolicy } = await import('@actions/workflow-parser/model/convert');

/** Errors from GitHub's parser for action.yml. */
export function actionErrors(name: string, content: string): string[] {
  const result = actionParser.parseAction({ name, content }, new parser.NoOperationTraceWriter());
  const errors = result.context.errors.getErrors().map((e) => e.message);
  if (errors.length === 0 && result.value) {
    actionParser.convertActionTemplate(result.context, result.value);
    errors.push(...result.context.errors.getErrors().map((e) => e.message));
  }
  return errors;
}

/**
 * Errors from GitHub's parser: the schema, expressions and their contexts, and for calls of the
 * pipeline workflow, the inputs and secrets it declares (the parser loads the called file).
 */
export async function workflowErrors(name: string, content: string): Promise<string[]> {
  const result = parser.parseWorkflow({ name, content }, new parser.NoOperationTraceWriter());
  if (!result.value) return result.context.errors.getErrors().map((e) => e.message);
  const template = await parser.convertWorkflowTemplate(
    result.context,
    result.value,
    { getFileContent: async (ref) => ({ name: ref.path, content: reusableWorkflow(ref) }) },
    // Go on after the first errors, so one run lists them all.
    { fetchReusableWorkflowDepth: 1, errorPolicy: ErrorPolicy.TryConversion },
  );
  return (template.errors ?? []).map((e) => e.Message);
}

// Reusable workflows the parser may load: this repository's, by local path or by its public name.
function reusableWorkflow(ref: { path: string; owner?: string; repository?: string }): string {
  const ours =
    ref.owner === undefined || `${ref.owner}/${ref.repository}` === 'cdse-auth/cdse-auth';
  if (!ours || !ref.path.startsWith('.github/workflows/')) {
    throw new Error(`unknown reusable workflow ${ref.path}`);
  }
  return readFileSync(join(ROOT, ref.path), 'utf8');
}

/** Whether a step's `uses:` runs this action. */
export function usesThisAction(uses: string): boolean {
  return (
    uses === './' ||
    uses === '.' ||
    /^cdse-auth\/cdse-auth@[^/]+$/.test(uses) ||
    // the reusable workflow runs the action from this checkout folder
    /^\.\/\.cdse-auth\/action\/?$/.test(uses)
  );
}

/** Whether a job's `uses:` calls the reusable pipeline workflow. */
export function callsPipeline(uses: string): boolean {
  return /^(\.\/|cdse-auth\/cdse-auth\/)\.github\/workflows\/cdse-pipeline\.yml(@[^/]+)?$/.test(
    uses,
  );
}

interface Job {
  uses?: string;
  with?: Record<string, unknown>;
  secrets?: Record<string, unknown> | 'inherit';
  steps?: { uses?: string; with?: Record<string, unknown>; name?: string }[];
}

/**
 * What GitHub's parser cannot check: `with:` keys given to this action must be inputs of
 * action.yml (the runner only warns about unknown ones), and calls of the pipeline workflow must
 * pass its inputs and secrets (checked again here for workflows the parser was not given).
 */
export function usageErrors(
  name: string,
  workflow: unknown,
  action: ActionMetadata,
  pipeline: CallableWorkflow,
): string[] {
  const errors: string[] = [];
  const jobs = (workflow as { jobs?: Record<string, Job> } | null)?.jobs ?? {};
  for (const [jobId, job] of Object.entries(jobs)) {
    if (job?.uses && callsPipeline(job.uses)) {
      for (const key of Object.keys(job.with ?? {})) {
        if (!pipeline.inputs.has(key)) {
          errors.push(
            `${name}: job ${jobId} passes '${key}', which ${PIPELINE_FILE} does not take`,
          );
        }
      }
      for (const [input, spec] of pipeline.inputs) {
        if (spec.required && !(input in (job.with ?? {}))) {
          errors.push(`${name}: job ${jobId} does not pass the required input '${input}'`);
        }
      }
      if (job.secrets === 'inherit') {
        errors.push(`${name}: job ${jobId} passes every secret (inherit); pass only those needed`);
      } else {
        for (const key of Object.keys(job.secrets ?? {})) {
          if (!pipeline.secrets.has(key)) {
            errors.push(
              `${name}: job ${jobId} passes secret '${key}', unknown to ${PIPELINE_FILE}`,
            );
          }
        }
      }
    }
    for (const [index, step] of (job?.steps ?? []).entries()) {
      if (!step?.uses || !usesThisAction(step.uses)) continue;
      for (const key of Object.keys(step.with ?? {})) {
        if (!action.inputs.has(key)) {
          const where = step.name ? `'${step.name}'` : `#${index + 1}`;
          errors.push(
            `${name}: job ${jobId}, step ${where}: '${key}' is not an input of action.yml`,
          );
        }
      }
    }
  }
  return errors;
}

type Permissions = string | Record<string, string> | undefined;
interface SecurityStep {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface SecurityJob {
  permissions?: Permissions;
  steps?: SecurityStep[];
}

const grantsWrite = (permissions: Permissions): boolean =>
  typeof permissions === 'string'
    ? permissions === 'write-all'
    : Object.values(permissions ?? {}).some((level) => level === 'write');

/**
 * Rules for this repository's own workflow files, which the parser does not know:
 * - the workflow-level `permissions:` exist and grant nothing to write (a job raises its own);
 * - every action from elsewhere is pinned to a full commit SHA with a `# vX.Y.Z` comment;
 * - `run:` scripts hold no `${{ }}` (values reach the shell through `env:`, so no value can
 *   change the script's syntax);
 * - `actions/checkout` never keeps the token in .git/config (`persist-credentials: false`);
 * - a job that can write restores no cache (`cache:` of a setup action, actions/cache), which a
 *   less trusted workflow could have written.
 */
export function securityErrors(name: string, content: string): string[] {
  const errors: string[] = [];
  const doc = parseYaml(content) as {
    permissions?: Permissions;
    jobs?: Record<string, SecurityJob>;
  } | null;
  if (doc?.permissions === undefined) errors.push(`${name}: no workflow-level permissions`);
  else if (grantsWrite(doc.permissions)) {
    errors.push(`${name}: the workflow-level permissions grant write; raise them per job`);
  }
  // Pins are checked on the text: the version comment is not part of the parsed YAML.
  for (const [index, line] of content.split('\n').entries()) {
    const match = /^\s*(?:- )?uses:\s*["']?([^\s"'#]+)["']?\s*(#.*)?$/.exec(line);
    const uses = match?.[1];
    if (!uses || uses.startsWith('./')) continue;
    if (!/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/.test(uses)) {
      errors.push(`${name}:${index + 1}: ${uses} is not pinned to a full commit SHA`);
    } else if (!/^#\s*v\d+(\.\d+)*\s*$/.test(match[2] ?? '')) {
      errors.push(`${name}:${index + 1}: ${uses} has no version comment (# vX.Y.Z)`);
    }
  }
  for (const [jobId, job] of Object.entries(doc?.jobs ?? {})) {
    const writes = grantsWrite(job?.permissions ?? doc?.permissions);
    for (const [index, step] of (job?.steps ?? []).entries()) {
      const where = `${name}: job ${jobId}, step ${step.name ? `'${step.name}'` : `#${index + 1}`}`;
      if (step.run?.includes('${{')) {
        errors.push(`${where}: \${{ }} inside run: (pass the value through env:)`);
      }
      const uses = step.uses ?? '';
      if (uses.startsWith('actions/checkout@') && step.with?.['persist-credentials'] !== false) {
        errors.push(`${where}: checkout keeps the token (set persist-credentials: false)`);
      }
      const caches =
        /^actions\/cache[@/]/.test(uses) ||
        (/^actions\/setup-[\w-]+@/.test(uses) && Boolean(step.with?.cache));
      if (writes && caches) {
        errors.push(`${where}: restores a cache in a job whose token can write`);
      }
    }
  }
  return errors;
}

/** The workflow files of this repository: [file name, content]. */
export function workflowFiles(): [string, string][] {
  return readdirSync(WORKFLOWS_DIR)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => [f, readFileSync(join(WORKFLOWS_DIR, f), 'utf8')]);
}

export function loadAction(): ActionMetadata {
  return readActionMetadata(readFileSync(join(ROOT, 'action.yml'), 'utf8'));
}

export function loadPipeline(): CallableWorkflow {
  return readWorkflowCall(readFileSync(join(WORKFLOWS_DIR, PIPELINE_FILE), 'utf8'));
}

/** The ```yaml blocks of a Markdown text, with the line each starts on. */
export function yamlBlocks(markdown: string): { line: number; text: string }[] {
  const blocks: { line: number; text: string }[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^```ya?ml\s*$/.test(lines[i] ?? '')) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end] ?? '')) end++;
    blocks.push({ line: start + 1, text: lines.slice(start, end).join('\n') });
    i = end;
  }
  return blocks;
}

/** Everything wrong with this repository's workflows and README examples. */
export async function lintAll(): Promise<string[]> {
  const action = loadAction();
  const pipeline = loadPipeline();
  const problems = actionErrors('action.yml', readFileSync(join(ROOT, 'action.yml'), 'utf8'));
  for (const [file, content] of workflowFiles()) {
    problems.push(...(await workflowErrors(file, content)));
    problems.push(...usageErrors(file, parseYaml(content), action, pipeline));
    problems.push(...securityErrors(file, content));
  }
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const block of yamlBlocks(readme)) {
    const where = `README.md:${block.line}`;
    let doc: unknown;
    try {
      doc = parseYaml(block.text);
    } catch (error) {
      problems.push(`${where}: not YAML: ${(error as Error).message}`);
      continue;
    }
    // Complete workflows go through GitHub's parser; fragments (a step, a job) only through ours.
    if (doc && typeof doc === 'object' && 'on' in doc && 'jobs' in doc) {
      problems.push(...(await workflowErrors(where, block.text)));
    }
    problems.push(...usageErrors(where, asWorkflow(doc), action, pipeline));
  }
  return problems;
}

/** A README fragment as a workflow: a list of steps or a `jobs:` mapping. */
export function asWorkflow(doc: unknown): unknown {
  if (Array.isArray(doc)) return { jobs: { example: { steps: doc } } };
  if (doc && typeof doc === 'object' && 'steps' in doc) return { jobs: { example: doc } };
  return doc;
}

if (import.meta.main) {
  const problems = await lintAll();
  for (const problem of problems) console.error(problem);
  if (problems.length) process.exit(1);
  console.log('Workflows, action.yml and README examples: no problems.');
}
