// What in-process tests share: a runner that records what a step asks of it (the Runner seam of
// src/action/runner.ts), and the action's steps run through it with action.yml's defaults. The
// same step contract is checked against the built dist/ by the tests that use test/runner.ts.
import type { ActionDeps, Runner } from '../src/action/runner.ts';
import { readActionYaml } from './runner.ts';

/** One line the step would print, as the runner shows it. */
export interface RecordedLine {
  kind: 'info' | 'debug' | 'notice' | 'warning' | 'error' | 'group' | 'endgroup';
  text: string;
}

export class RecordingRunner implements Runner {
  readonly inputs: Record<string, string>;
  readonly state: Record<string, string>;
  readonly outputs: Record<string, string> = {};
  readonly exported: Record<string, string> = {};
  readonly paths: string[] = [];
  /** Every value registered with the masker, in order. */
  readonly secrets: string[] = [];
  readonly lines: RecordedLine[] = [];
  summary = '';
  failed = false;

  constructor(inputs: Record<string, string> = {}, state: Record<string, string> = {}) {
    this.inputs = inputs;
    this.state = state;
  }

  getInput(name: string): string {
    return (this.inputs[name] ?? '').trim();
  }
  getState(name: string): string {
    return this.state[name] ?? '';
  }
  setSecret(value: string): void {
    this.secrets.push(value);
  }
  setOutput(name: string, value: string): void {
    this.outputs[name] = value;
  }
  exportVariable(name: string, value: string): void {
    this.exported[name] = value;
  }
  addPath(dir: string): void {
    this.paths.push(dir);
  }
  saveState(name: string, value: string): void {
    this.state[name] = value;
  }
  info(text: string): void {
    this.lines.push({ kind: 'info', text });
  }
  debug(text: string): void {
    this.lines.push({ kind: 'debug', text });
  }
  notice(text: string): void {
    this.lines.push({ kind: 'notice', text });
  }
  warning(text: string): void {
    this.lines.push({ kind: 'warning', text });
  }
  setFailed(text: string): void {
    this.failed = true;
    this.lines.push({ kind: 'error', text });
  }
  startGroup(text: string): void {
    this.lines.push({ kind: 'group', text });
  }
  endGroup(): void {
    this.lines.push({ kind: 'endgroup', text: '' });
  }
  async appendSummary(markdown: string): Promise<void> {
    this.summary += markdown;
  }

  /** The texts of one kind of line. */
  said(kind: RecordedLine['kind']): string[] {
    return this.lines.filter((l) => l.kind === kind).map((l) => l.text);
  }
}

/** The step's inputs as the runner hands them over: action.yml's defaults, then `with:`. */
export async function actionInputs(given: Record<string, string>): Promise<Record<string, string>> {
  const action = await readActionYaml();
  const defaults = Object.entries(action.inputs ?? {}).flatMap(([name, spec]) =>
    spec?.default === undefined || spec.default === null ? [] : [[name, String(spec.default)]],
  );
  return { ...Object.fromEntries(defaults), ...given };
}

/** Dependencies for an in-process step: a recorder, the given environment, the real clock. */
export function stepDeps(runner: RecordingRunner, env: NodeJS.ProcessEnv = {}): ActionDeps {
  return { runner, env, now: Date.now };
}
