// node scripts/readme-inputs.ts [--check]: the README's reference tables are generated, never
// written by hand: the action's inputs and outputs from action.yml, the pipeline's inputs and
// secrets from .github/workflows/cdse-pipeline.yml. Each table lives between
// `<!-- <name>:start -->` and `<!-- <name>:end -->` in README.md; this script rewrites them.
// With --check it changes nothing and exits 1 when a table differs from its source (the test
// suite runs the same check).
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SECRET_INPUTS } from '../src/action/inputs.ts';

const ROOT = resolve(import.meta.dirname, '..');
export const README = join(ROOT, 'README.md');
const ACTION = join(ROOT, 'action.yml');
const PIPELINE = join(ROOT, '.github', 'workflows', 'cdse-pipeline.yml');

export interface ActionMetadata {
  inputs: Map<string, { description: string; default?: string; required: boolean }>;
  outputs: Map<string, { description: string }>;
}

/** Inputs and outputs of an action.yml, in file order. */
export function readActionMetadata(text: string): ActionMetadata {
  const doc = parseYaml(text) as {
    inputs?: Record<string, { description?: string; default?: unknown; required?: boolean }>;
    outputs?: Record<string, { description?: string }>;
  };
  const inputs: ActionMetadata['inputs'] = new Map();
  for (const [name, spec] of Object.entries(doc.inputs ?? {})) {
    inputs.set(name, {
      description: String(spec?.description ?? '').trim(),
      ...(spec?.default !== undefined && { default: String(spec.default) }),
      required: spec?.required === true,
    });
  }
  const outputs: ActionMetadata['outputs'] = new Map();
  for (const [name, spec] of Object.entries(doc.outputs ?? {})) {
    outputs.set(name, { description: String(spec?.description ?? '').trim() });
  }
  return { inputs, outputs };
}

export interface CallableWorkflow {
  inputs: Map<
    string,
    { description: string; type: string; required: boolean; default?: string | number | boolean }
  >;
  secrets: Map<string, { description: string; required: boolean }>;
}

/** The `on.workflow_call` interface of a reusable workflow. */
export function readWorkflowCall(text: string): CallableWorkflow {
  const doc = parseYaml(text) as {
    on?: {
      workflow_call?: {
        inputs?: Record<string, Record<string, unknown>>;
        secrets?: Record<string, Record<string, unknown> | null>;
      };
    };
  };
  const call = doc.on?.workflow_call;
  if (!call) throw new Error('not a reusable workflow: no on.workflow_call');
  const inputs: CallableWorkflow['inputs'] = new Map();
  for (const [name, spec] of Object.entries(call.inputs ?? {})) {
    const value = spec.default;
    inputs.set(name, {
      description: String(spec.description ?? '').trim(),
      type: String(spec.type),
      required: spec.required === true,
      ...((typeof value === 'string' ||
        typeof value === 'number' ||
        typeof value === 'boolean') && {
        default: value,
      }),
    });
  }
  const secrets: CallableWorkflow['secrets'] = new Map();
  for (const [name, spec] of Object.entries(call.secrets ?? {})) {
    secrets.set(name, {
      description: String(spec?.description ?? '').trim(),
      required: spec?.required === true,
    });
  }
  return { inputs, secrets };
}

// A table cell: one line, pipes escaped.
const cell = (text: string) => text.replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim();
const code = (text: string) => (text === '' ? '`""`' : `\`${text.replace(/\|/g, '\\|')}\``);

// Laid out as Prettier lays out Markdown tables (cells padded to the column width), so that
// formatting the README does not make it differ from what this script generates.
const width = (text: string) => [...text].length;

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) =>
    Math.max(3, width(h), ...rows.map((row) => width(row[i] ?? ''))),
  );
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c + ' '.repeat((widths[i] ?? 0) - width(c))).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** A table with its padding removed: how two layouts of the same table compare equal. */
export function normalizeTables(markdown: string): string {
  return markdown
    .split('\n')
    .map((row) => {
      if (!row.startsWith('|')) return row.trim();
      const cells = row
        .slice(1, row.endsWith('|') ? -1 : undefined)
        .split(/(?<!\\)\|/)
        .map((c) => c.trim());
      return `|${cells.map((c) => (/^:?-{3,}:?$/.test(c) ? '---' : c)).join('|')}|`;
    })
    .join('\n');
}

export function inputsTable(action: ActionMetadata): string {
  const secret = new Set<string>(SECRET_INPUTS);
  return table(
    ['Input', 'Default', 'Description'],
    [...action.inputs].map(([name, spec]) => [
      `\`${name}\``,
      spec.required ? '**required**' : spec.default === undefined ? '' : code(spec.default),
      cell(spec.description) + (secret.has(name) ? ' _Secret: masked in logs._' : ''),
    ]),
  );
}

export function outputsTable(action: ActionMetadata): string {
  return table(
    ['Output', 'Description'],
    [...action.outputs].map(([name, spec]) => [`\`${name}\``, cell(spec.description)]),
  );
}

export function pipelineInputsTable(pipeline: CallableWorkflow): string {
  return table(
    ['Input', 'Type', 'Default', 'Description'],
    [...pipeline.inputs].map(([name, spec]) => [
      `\`${name}\``,
      spec.type,
      spec.required ? '**required**' : spec.default === undefined ? '' : code(String(spec.default)),
      cell(spec.description),
    ]),
  );
}

export function pipelineSecretsTable(pipeline: CallableWorkflow): string {
  return table(
    ['Secret', 'Description'],
    [...pipeline.secrets].map(([name, spec]) => [
      `\`${name}\`${spec.required ? ' (required)' : ''}`,
      cell(spec.description),
    ]),
  );
}

/** Section name -> generated Markdown, from the files as they are now. */
export function generatedSections(
  actionText = readFileSync(ACTION, 'utf8'),
  pipelineText = readFileSync(PIPELINE, 'utf8'),
): Record<string, string> {
  const action = readActionMetadata(actionText);
  const pipeline = readWorkflowCall(pipelineText);
  const source = (file: string) =>
    `<!-- generated from ${file} by \`node scripts/readme-inputs.ts\`: edit that file, not this table -->`;
  return {
    inputs: `${source('action.yml')}\n${inputsTable(action)}`,
    outputs: `${source('action.yml')}\n${outputsTable(action)}`,
    'pipeline-inputs': `${source('.github/workflows/cdse-pipeline.yml')}\n${pipelineInputsTable(pipeline)}`,
    'pipeline-secrets': `${source('.github/workflows/cdse-pipeline.yml')}\n${pipelineSecretsTable(pipeline)}`,
  };
}

const markers = (name: string) => [`<!-- ${name}:start -->`, `<!-- ${name}:end -->`] as const;

/** The text between a section's markers, or `undefined` when the markers are missing. */
export function sectionOf(markdown: string, name: string): string | undefined {
  const [start, end] = markers(name);
  const from = markdown.indexOf(start);
  const to = markdown.indexOf(end, from);
  if (from < 0 || to < 0) return undefined;
  return markdown.slice(from + start.length, to).trim();
}

/** The README with every generated section replaced; throws when a section's markers are missing. */
export function updateReadme(markdown: string, sections = generatedSections()): string {
  let out = markdown;
  const stale = new Set(staleSections(markdown, sections));
  for (const [name, body] of Object.entries(sections)) {
    if (!stale.has(name)) continue; // the same table, perhaps laid out by a formatter: keep it
    const [start, end] = markers(name);
    const from = out.indexOf(start);
    const to = out.indexOf(end, from);
    if (from < 0 || to < 0) throw new Error(`README.md has no ${start} … ${end} section`);
    out = `${out.slice(0, from + start.length)}\n${body}\n${out.slice(to)}`;
  }
  return out;
}

/** Names of the generated sections whose README text differs from their source. */
export function staleSections(markdown: string, sections = generatedSections()): string[] {
  return Object.entries(sections)
    .filter(([name, body]) => {
      const current = sectionOf(markdown, name);
      return current === undefined || normalizeTables(current) !== normalizeTables(body);
    })
    .map(([name]) => name);
}

if (import.meta.main) {
  const readme = readFileSync(README, 'utf8');
  if (process.argv.includes('--check')) {
    const stale = staleSections(readme);
    if (stale.length) {
      console.error(
        `README.md is out of date (${stale.join(', ')}): run node scripts/readme-inputs.ts`,
      );
      process.exit(1);
    }
    console.log('README.md tables match action.yml and cdse-pipeline.yml.');
  } else {
    const updated = updateReadme(readme);
    if (updated !== readme) writeFileSync(README, updated);
    console.log(updated === readme ? 'README.md is up to date.' : 'Updated README.md.');
  }
}
