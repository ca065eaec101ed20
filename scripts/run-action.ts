// Runs the bundled action the way GitHub's runner does (see shared/reference/runner-contract.md):
// `node dist/<step>/index.js` as a child process with INPUT_<NAME> env vars, action.yml defaults
// filled in, file commands as files, STATE_<name> for the post step. Shared by the demo and the
// bench; always asynchronous, because the test servers live in the calling process.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

export const ROOT = resolve(import.meta.dirname, '..');
const NODE = process.execPath;

/** The inputs and their defaults, read from action.yml (a small reader for its simple layout). */
export async function actionInputDefaults(): Promise<Record<string, string>> {
  const text = await readFile(join(ROOT, 'action.yml'), 'utf8');
  const defaults: Record<string, string> = {};
  let inInputs = false;
  let current: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (/^\S/.test(line)) {
      inInputs = /^inputs:\s*$/.test(line);
      current = undefined;
      continue;
    }
    if (!inInputs) continue;
    const name = /^ {2}([\w-]+):\s*$/.exec(line);
    if (name) {
      current = name[1];
      continue;
    }
    const value = /^ {4}default:\s*(.*?)\s*$/.exec(line);
    if (value && current) defaults[current] = unquote(value[1] ?? '');
  }
  return defaults;
}

function unquote(value: string): string {
  const m = /^"(.*)"$/.exec(value) ?? /^'(.*)'$/.exec(value);
  return m ? (m[1] ?? '') : value;
}

/** `name<<DELIM\nvalue\nDELIM` or `name=value` entries of a file command file. */
export function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (!line) continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delim] = heredoc as unknown as [string, string, string];
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) value.push(lines[i] ?? '');
      out[name] = value.join('\n');
      continue;
    }
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** The runner's log masker: `::add-mask::` registers a value, later lines show it as `***`. */
export class Masker {
  readonly #secrets = new Set<string>();

  add(value: string): void {
    for (const line of value.split(/\r?\n/)) {
      const v = line.trim();
      if (!v) continue;
      this.#secrets.add(v);
      // The runner masks the base64 forms as well.
      if (v.length >= 6) this.#secrets.add(Buffer.from(v).toString('base64').replace(/=+$/, ''));
    }
  }

  mask(text: string): string {
    // Longest first, so that a value containing another is masked whole.
    const secrets = [...this.#secrets].sort((a, b) => b.length - a.length);
    let out = text;
    for (const s of secrets) out = out.split(s).join('***');
    return out;
  }

  /**
   * What the log shows for a step's output (stdout and stderr lines in the order they came; the
   * runner reads workflow commands on both): mask commands registered in order and hidden,
   * annotations rendered, debug lines dropped (no step debug logging).
   */
  render(output: string | string[]): string[] {
    const shown: string[] = [];
    const lines = typeof output === 'string' ? output.split(/\r?\n/) : output;
    for (const raw of lines) {
      const command = /^::([\w-]+)(?: [^:]*)?::(.*)$/.exec(raw);
      if (command) {
        const [, name, data] = command as unknown as [string, string, string];
        const message = unescapeData(data);
        if (name === 'add-mask') {
          this.add(message);
          continue;
        }
        if (name === 'debug') continue;
        const label: Record<string, string> = {
          error: 'Error: ',
          warning: 'Warning: ',
          notice: 'Notice: ',
          group: '▸ ',
        };
        if (name === 'endgroup') continue;
        shown.push(this.mask(`${label[name] ?? `::${name}::`}${message}`));
        continue;
      }
      if (raw !== '') shown.push(this.mask(raw));
    }
    return shown;
  }
}

const unescapeData = (s: string) =>
  s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr lines interleaved in the order they arrived. */
  lines: string[];
  /** Wall time from spawn to exit, ms. */
  ms: number;
}

/** Runs a command asynchronously and collects its output (never spawnSync: servers live here). */
export function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {},
): Promise<ProcessResult> {
  return new Promise((done, fail) => {
    const started = performance.now();
    const child = spawn(command, args, {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const lines: string[] = [];
    const partial = { stdout: '', stderr: '' };
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    const collect = (stream: 'stdout' | 'stderr', chunks: Buffer[]) => (chunk: Buffer) => {
      chunks.push(chunk);
      const parts = (partial[stream] + decoders[stream].write(chunk)).split(/\r?\n/);
      partial[stream] = parts.pop() ?? '';
      lines.push(...parts);
    };
    child.stdout.on('data', collect('stdout', out));
    child.stderr.on('data', collect('stderr', err));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      fail(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      for (const rest of [partial.stdout, partial.stderr]) if (rest) lines.push(rest);
      done({
        lines,
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: performance.now() - started,
      });
    });
    child.stdin.end(options.input ?? '');
  });
}

export interface StepResult extends ProcessResult {
  outputs: Record<string, string>;
  /** What the step exported for later steps (GITHUB_ENV). */
  exported: Record<string, string>;
  /** Directories the step added to PATH (GITHUB_PATH). */
  paths: string[];
  state: Record<string, string>;
  summary: string;
}

export interface JobOptions {
  /** Extra environment of the whole job (e.g. a cache emulator's variables). */
  env?: Record<string, string>;
  /** The event payload written to GITHUB_EVENT_PATH. */
  event?: unknown;
  eventName?: string;
  runId?: string;
  job?: string;
  /**
   * The runner's work folder. Hosted runners use the same RUNNER_TEMP and workspace paths in every
   * job (emptied at job start), and the Actions cache version hashes the cached path, so jobs that
   * are to share cache entries must be given the same folder. Default: a fresh folder.
   */
  runnerRoot?: string;
}

/**
 * One job on a runner: a fresh RUNNER_TEMP and workspace, the job's environment, and the state
 * that carries from main to post.
 */
export class Job {
  readonly root: string;
  readonly runnerTemp: string;
  readonly workspace: string;
  #baseEnv: Record<string, string> = {};
  #state: Record<string, string> = {};
  #exported: Record<string, string> = {};
  #paths: string[] = [];
  #step = 0;

  private constructor(root: string) {
    this.root = root;
    this.runnerTemp = join(root, 'temp');
    this.workspace = join(root, 'workspace');
  }

  static async create(options: JobOptions = {}): Promise<Job> {
    let root = options.runnerRoot;
    if (root) {
      await rm(root, { recursive: true, force: true });
      await mkdir(root, { recursive: true, mode: 0o700 });
    } else {
      root = await mkdtemp(join(tmpdir(), 'cdse-job-'));
    }
    const job = new Job(root);
    await mkdir(job.runnerTemp);
    await mkdir(job.workspace);
    const eventPath = join(job.root, 'event.json');
    await writeFile(eventPath, JSON.stringify(options.event ?? { repository: { private: true } }));
    // A clean environment like a runner's, without this machine's proxies or GITHUB_* values.
    job.#baseEnv = {
      // No node_modules/.bin: a later step must find `cdse-auth` through the added PATH only.
      PATH: (process.env.PATH ?? '/usr/bin:/bin')
        .split(delimiter)
        .filter((dir) => dir && !dir.includes('node_modules'))
        .join(delimiter),
      HOME: process.env.HOME ?? job.root,
      LANG: 'C.UTF-8',
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: job.workspace,
      GITHUB_ACTION_PATH: ROOT,
      GITHUB_REPOSITORY: 'example/cdse-pipeline',
      GITHUB_REF: 'refs/heads/main',
      GITHUB_EVENT_NAME: options.eventName ?? 'push',
      GITHUB_EVENT_PATH: eventPath,
      GITHUB_RUN_ID: options.runId ?? String(Date.now()),
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_JOB: options.job ?? 'build',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_API_URL: 'https://api.github.com',
      RUNNER_OS: 'Linux',
      RUNNER_TEMP: job.runnerTemp,
      ...options.env,
    };
    return job;
  }

  /** Runs `dist/<step>/index.js` with the given inputs (action.yml defaults fill in the rest). */
  async runAction(
    step: 'main' | 'post',
    inputs: Record<string, string>,
    defaults: Record<string, string>,
  ): Promise<StepResult> {
    const files = await this.#commandFiles();
    const env: Record<string, string> = { ...this.#stepEnv(), ...files };
    for (const [name, value] of Object.entries({ ...defaults, ...inputs })) {
      env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
    }
    if (step === 'post') {
      for (const [name, value] of Object.entries(this.#state)) env[`STATE_${name}`] = value;
    }
    const result = await run(NODE, [join(ROOT, 'dist', step, 'index.js')], {
      env,
      cwd: this.workspace,
    });
    return this.#collect(result, files);
  }

  /** A later `run:` step: a shell command with what earlier steps exported and added to PATH. */
  async runShell(script: string): Promise<StepResult> {
    const files = await this.#commandFiles();
    const result = await run('/bin/sh', ['-e', '-c', script], {
      env: { ...this.#stepEnv(), ...files },
      cwd: this.workspace,
    });
    return this.#collect(result, files);
  }

  async cleanup(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }

  #stepEnv(): Record<string, string> {
    const env = { ...this.#baseEnv, ...this.#exported };
    env.PATH = [...this.#paths, this.#baseEnv.PATH].join(delimiter);
    return env;
  }

  async #commandFiles(): Promise<Record<string, string>> {
    const dir = join(this.root, `step-${++this.#step}`);
    await mkdir(dir);
    const files = {
      GITHUB_OUTPUT: join(dir, 'output'),
      GITHUB_ENV: join(dir, 'env'),
      GITHUB_STATE: join(dir, 'state'),
      GITHUB_PATH: join(dir, 'path'),
      GITHUB_STEP_SUMMARY: join(dir, 'summary'),
    };
    for (const file of Object.values(files)) await writeFile(file, '');
    return files;
  }

  async #collect(result: ProcessResult, files: Record<string, string>): Promise<StepResult> {
    const read = (name: string) => readFile(files[name] as string, 'utf8');
    const outputs = parseFileCommands(await read('GITHUB_OUTPUT'));
    const exported = parseFileCommands(await read('GITHUB_ENV'));
    const state = parseFileCommands(await read('GITHUB_STATE'));
    const paths = (await read('GITHUB_PATH')).split(/\r?\n/).filter(Boolean);
    const summary = await read('GITHUB_STEP_SUMMARY');
    Object.assign(this.#exported, exported);
    Object.assign(this.#state, state);
    // Each added directory goes in front of those added before.
    this.#paths = [...paths.reverse(), ...this.#paths];
    return { ...result, outputs, exported, paths, state, summary };
  }
}
