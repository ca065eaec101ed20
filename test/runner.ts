// A stand-in for GitHub's runner, for tests that run the action the way a workflow does: each
// step is a child process (`node dist/main/index.js`, a later `run:` step, `node dist/post/...`)
// with the runner's environment and file commands (shared/reference/runner-contract.md).
// Nothing of @actions/core is stubbed; tests see only what a workflow would see.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { parse as parseYaml } from 'yaml';

export const REPO_ROOT = resolve(import.meta.dirname, '..');

/** A PATH with the usual system folders and nothing of this repository (no node_modules/.bin). */
export const SYSTEM_PATH = [
  '/usr/local/sbin',
  '/usr/local/bin',
  '/usr/sbin',
  '/usr/bin',
  '/sbin',
  '/bin',
].join(delimiter);

export interface StepResult {
  /** The exit code; -1 when a signal ended the step (see `signal`). */
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr lines interleaved in the order they arrived (what a live log shows). */
  lines: string[];
  /** What the step wrote to GITHUB_OUTPUT. */
  outputs: Record<string, string>;
  /** What the step wrote to GITHUB_ENV (for later steps). */
  env: Record<string, string>;
  /** What the step wrote to GITHUB_STATE (STATE_<name> for the post step). */
  state: Record<string, string>;
  /** The raw GITHUB_STATE text, for leak checks. */
  stateText: string;
  /** Directories the step added with GITHUB_PATH, in the order written. */
  path: string[];
  /** What the step wrote to GITHUB_STEP_SUMMARY. */
  summary: string;
  durationMs: number;
}

export interface JobOptions {
  /** Action inputs as a workflow's `with:` sets them; action.yml defaults fill in the rest. */
  inputs?: Record<string, string>;
  /** Extra environment for every step (wins over the defaults below, e.g. RUNNER_DEBUG). */
  env?: Record<string, string>;
  /** Folder holding action.yml and dist/ (default: this repository). */
  actionDir?: string;
  /** GITHUB_EVENT_NAME, default `push`. */
  eventName?: string;
  /** The event payload; default `{ repository: { private: true, ... } }`. */
  eventPayload?: unknown;
  /**
   * RUNNER_TEMP. Default: a fresh folder of this job. Hosted runners use the same path in every
   * job and empty it at job start; give a path to have the same here (it is emptied).
   */
  runnerTemp?: string;
  runId?: string;
  runAttempt?: string;
  /** GITHUB_JOB, default `build`. */
  job?: string;
  repository?: string;
  /** Kill a step that runs longer than this (ms). */
  stepTimeoutMs?: number;
}

interface ActionYaml {
  inputs?: Record<string, { default?: unknown }>;
  runs: { using: string; main: string; post?: string };
}

const actionYamlCache = new Map<string, Promise<ActionYaml>>();
export function readActionYaml(actionDir = REPO_ROOT): Promise<ActionYaml> {
  let loaded = actionYamlCache.get(actionDir);
  if (!loaded) {
    loaded = readFile(join(actionDir, 'action.yml'), 'utf8').then(
      (t) => parseYaml(t) as ActionYaml,
    );
    actionYamlCache.set(actionDir, loaded);
  }
  return loaded;
}

/**
 * Parses a file-command file (GITHUB_OUTPUT, GITHUB_ENV, GITHUB_STATE): both
 * `name<<DELIMITER\nvalue\nDELIMITER` and `name=value` entries; a later entry wins.
 */
export function parseFileCommands(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === '') continue;
    const heredoc = /^([^=]+?)<<(.+)$/.exec(line);
    const equals = line.indexOf('=');
    if (heredoc && (equals < 0 || equals > line.indexOf('<<'))) {
      const [, name, delimiter] = heredoc as unknown as [string, string, string];
      const value: string[] = [];
      let closed = false;
      for (i++; i < lines.length; i++) {
        if (lines[i] === delimiter) {
          closed = true;
          break;
        }
        value.push(lines[i] as string);
      }
      if (!closed) throw new Error(`file command ${name}: missing delimiter ${delimiter}`);
      result[name] = value.join('\n');
    } else if (equals > 0) {
      result[line.slice(0, equals)] = line.slice(equals + 1);
    } else {
      throw new Error(`file command: invalid line ${JSON.stringify(line)}`);
    }
  }
  return result;
}

/** The runner's name for an input's variable: upper case, spaces to `_`, hyphens kept. */
export const inputVariable = (name: string) => `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;

/**
 * One job: its own RUNNER_TEMP, workspace, HOME and file-command files. Steps run one after the
 * other, each seeing what earlier steps exported (GITHUB_ENV, GITHUB_PATH), like on a runner.
 */
export class Job {
  readonly root: string;
  readonly runnerTemp: string;
  readonly workspace: string;
  readonly home: string;
  readonly actionDir: string;
  readonly inputs: Record<string, string>;
  /** Every step's results, in order. */
  readonly steps: StepResult[] = [];
  /** Environment exported by earlier steps through GITHUB_ENV. */
  readonly exportedEnv: Record<string, string> = {};
  /** Directories added through GITHUB_PATH, most recent first (as the runner prepends them). */
  readonly addedPath: string[] = [];
  /** What the last main step saved with saveState. */
  savedState: Record<string, string> = {};

  readonly #baseEnv: Record<string, string>;
  readonly #stepTimeoutMs: number;
  #stepCount = 0;

  private constructor(
    paths: { root: string; runnerTemp: string; workspace: string; home: string },
    options: JobOptions,
    baseEnv: Record<string, string>,
  ) {
    this.root = paths.root;
    this.runnerTemp = paths.runnerTemp;
    this.workspace = paths.workspace;
    this.home = paths.home;
    this.actionDir = options.actionDir ?? REPO_ROOT;
    this.inputs = { ...(options.inputs ?? {}) };
    this.#baseEnv = baseEnv;
    this.#stepTimeoutMs = options.stepTimeoutMs ?? 30_000;
  }

  static async create(options: JobOptions = {}): Promise<Job> {
    const root = await mkdtemp(join(tmpdir(), 'cdse-job-'));
    const runnerTemp = options.runnerTemp ?? join(root, 'runner-temp');
    if (options.runnerTemp) await rm(runnerTemp, { recursive: true, force: true });
    const workspace = join(root, 'workspace');
    const home = join(root, 'home');
    await Promise.all(
      [runnerTemp, workspace, home, join(root, 'files')].map((d) => mkdir(d, { recursive: true })),
    );
    const repository = options.repository ?? 'cdse-auth/example';
    const eventPath = join(root, 'event.json');
    const payload = options.eventPayload ?? {
      ref: 'refs/heads/main',
      repository: { full_name: repository, private: true, visibility: 'private' },
    };
    await writeFile(eventPath, JSON.stringify(payload));
    const baseEnv: Record<string, string> = {
      PATH: SYSTEM_PATH,
      HOME: home,
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_RUN_ID: options.runId ?? String(1_000_000 + Math.floor(Math.random() * 1_000_000)),
      GITHUB_RUN_ATTEMPT: options.runAttempt ?? '1',
      GITHUB_RUN_NUMBER: '1',
      GITHUB_JOB: options.job ?? 'build',
      GITHUB_REPOSITORY: repository,
      GITHUB_REPOSITORY_OWNER: repository.split('/')[0] ?? '',
      GITHUB_REF: 'refs/heads/main',
      GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
      GITHUB_EVENT_NAME: options.eventName ?? 'push',
      GITHUB_EVENT_PATH: eventPath,
      GITHUB_WORKSPACE: workspace,
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_API_URL: 'https://api.github.com',
      GITHUB_WORKFLOW: 'test',
      RUNNER_TEMP: runnerTemp,
      RUNNER_OS: 'Linux',
      RUNNER_ARCH: 'X64',
      NO_PROXY: '127.0.0.1,localhost',
      ...options.env,
    };
    return new Job({ root, runnerTemp, workspace, home }, options, baseEnv);
  }

  /** The runner's INPUT_* variables: the given inputs plus action.yml defaults for the rest. */
  async inputEnv(): Promise<Record<string, string>> {
    const action = await readActionYaml(this.actionDir);
    const env: Record<string, string> = {};
    for (const [name, spec] of Object.entries(action.inputs ?? {})) {
      if (spec?.default !== undefined && spec.default !== null) {
        env[inputVariable(name)] = String(spec.default);
      }
    }
    for (const [name, value] of Object.entries(this.inputs)) env[inputVariable(name)] = value;
    return env;
  }

  /** The action's main step: `node <runs.main>`. */
  async runMain(env: Record<string, string> = {}): Promise<StepResult> {
    const action = await readActionYaml(this.actionDir);
    const result = await this.#runNode(action.runs.main, { ...(await this.inputEnv()), ...env });
    this.savedState = { ...result.state };
    return result;
  }

  /** The action's post step, with STATE_<name> from what main saved. */
  async runPost(env: Record<string, string> = {}): Promise<StepResult> {
    const action = await readActionYaml(this.actionDir);
    if (!action.runs.post) throw new Error('action.yml has no post step');
    const state = Object.fromEntries(
      Object.entries(this.savedState).map(([name, value]) => [`STATE_${name}`, value]),
    );
    return this.#runNode(action.runs.post, { ...(await this.inputEnv()), ...state, ...env });
  }

  /** A later `run:` step: sees GITHUB_ENV exports and GITHUB_PATH entries of earlier steps. */
  runStep(
    command: string,
    args: string[] = [],
    env: Record<string, string> = {},
    options: { input?: string } = {},
  ): Promise<StepResult> {
    return this.#step(command, args, env, options.input);
  }

  /** The PATH a later step gets. */
  get stepPath(): string {
    return [...this.addedPath, this.#baseEnv.PATH ?? SYSTEM_PATH].join(delimiter);
  }

  /** stderr then stdout of every step so far, in order (for `assertNoLeaks`). */
  get logs(): string[] {
    return this.steps.map(stepLog);
  }

  /** The job summary: every step's GITHUB_STEP_SUMMARY in order. */
  get summary(): string {
    return this.steps.map((s) => s.summary).join('');
  }

  /** Everything the job's steps wrote to GITHUB_STATE. */
  get stateText(): string {
    return this.steps.map((s) => s.stateText).join('');
  }

  async cleanup(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
    if (!this.runnerTemp.startsWith(this.root)) {
      await rm(this.runnerTemp, { recursive: true, force: true });
    }
  }

  #runNode(script: string, env: Record<string, string>): Promise<StepResult> {
    return this.#step(process.execPath, [join(this.actionDir, script)], {
      GITHUB_ACTION_PATH: this.actionDir,
      GITHUB_ACTION: 'cdse-auth',
      ...env,
    });
  }

  async #step(
    command: string,
    args: string[],
    stepEnv: Record<string, string>,
    input?: string,
  ): Promise<StepResult> {
    const n = ++this.#stepCount;
    const dir = join(this.root, 'files', `step-${n}`);
    await mkdir(dir);
    const files = {
      GITHUB_OUTPUT: join(dir, 'output'),
      GITHUB_ENV: join(dir, 'env'),
      GITHUB_STATE: join(dir, 'state'),
      GITHUB_PATH: join(dir, 'path'),
      GITHUB_STEP_SUMMARY: join(dir, 'summary'),
    };
    await Promise.all(Object.values(files).map((f) => writeFile(f, '')));
    const env = {
      ...this.#baseEnv,
      ...this.exportedEnv,
      ...stepEnv,
      ...files,
      PATH: stepEnv.PATH ?? this.stepPath,
    };
    const started = performance.now();
    const { code, signal, stdout, stderr, lines } = await run(command, args, {
      env,
      cwd: this.workspace,
      timeoutMs: this.#stepTimeoutMs,
      ...(input !== undefined && { input }),
    });
    const durationMs = performance.now() - started;
    const read = (name: keyof typeof files) => readFile(files[name], 'utf8');
    const [output, envText, stateText, pathText, summary] = await Promise.all([
      read('GITHUB_OUTPUT'),
      read('GITHUB_ENV'),
      read('GITHUB_STATE'),
      read('GITHUB_PATH'),
      read('GITHUB_STEP_SUMMARY'),
    ]);
    const result: StepResult = {
      code,
      signal,
      stdout,
      stderr,
      lines,
      outputs: parseFileCommands(output),
      env: parseFileCommands(envText),
      state: parseFileCommands(stateText),
      stateText,
      path: pathText.split(/\r?\n/).filter(Boolean),
      summary,
      durationMs,
    };
    Object.assign(this.exportedEnv, result.env);
    this.addedPath.unshift(...[...result.path].reverse());
    this.steps.push(result);
    return result;
  }
}

/** One step's log as the leak scanner reads it: stderr first (stricter for the action). */
export const stepLog = (step: Pick<StepResult, 'stdout' | 'stderr'>): string =>
  [step.stderr, step.stdout].filter(Boolean).join('\n');

export interface RunResult {
  /** The exit code; -1 when a signal ended the process (see `signal`). */
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr lines interleaved in the order they arrived. */
  lines: string[];
}

/** Runs a child process asynchronously (never spawnSync: servers live in the test process). */
export function run(
  command: string,
  args: string[],
  options: { env: Record<string, string>; cwd?: string; input?: string; timeoutMs?: number },
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      env: options.env,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const lines: string[] = [];
    const collect = (chunks: Buffer[]) => {
      const decoder = new StringDecoder('utf8');
      let partial = '';
      const flush = () => {
        partial += decoder.end();
        if (partial) lines.push(partial);
        partial = '';
      };
      const onData = (chunk: Buffer) => {
        chunks.push(chunk);
        const parts = (partial + decoder.write(chunk)).split(/\r?\n/);
        partial = parts.pop() ?? '';
        lines.push(...parts);
      };
      return { onData, flush };
    };
    const stdout = collect(out);
    const stderr = collect(err);
    child.stdout.on('data', stdout.onData);
    child.stderr.on('data', stderr.onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      stdout.flush();
      stderr.flush();
      resolvePromise({
        code: code ?? -1,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        lines,
      });
    });
    child.stdin.on('error', () => {}); // the child may exit without reading its input
    child.stdin.end(options.input ?? '');
  });
}
