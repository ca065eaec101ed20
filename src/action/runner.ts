import * as core from '@actions/core';

/**
 * What the action asks of the runner: the part of `@actions/core` it uses, and nothing of the
 * process. The steps take it as a dependency, so tests run them in-process with a recorder, and
 * `@github/local-action` runs them with its own core.
 */
export interface Runner {
  getInput(name: string): string;
  getState(name: string): string;
  /** Registers a value with the log masker; before any line that could show it. */
  setSecret(value: string): void;
  setOutput(name: string, value: string): void;
  exportVariable(name: string, value: string): void;
  addPath(dir: string): void;
  saveState(name: string, value: string): void;
  info(message: string): void;
  debug(message: string): void;
  notice(message: string): void;
  warning(message: string): void;
  /** One `::error::` line and exit code 1. */
  setFailed(message: string): void;
  startGroup(title: string): void;
  endGroup(): void;
  /** Appends Markdown to the job summary (a no-op where the runner has none). */
  appendSummary(markdown: string): Promise<void>;
}

/** Everything a step reads from its surroundings. */
export interface ActionDeps {
  runner: Runner;
  /** The job's environment (GITHUB_*, RUNNER_*, ACTIONS_*, proxies). */
  env: NodeJS.ProcessEnv;
  now: () => number;
}

// A value is registered once: the masker needs no second `::add-mask::` line for it.
const masked = new Set<string>();

/** The real runner, through `@actions/core` (which escapes every command as the runner expects). */
export const actionsRunner: Runner = {
  getInput: (name) => core.getInput(name),
  getState: (name) => core.getState(name),
  setSecret: (value) => {
    if (masked.has(value)) return;
    masked.add(value);
    core.setSecret(value);
  },
  setOutput: (name, value) => core.setOutput(name, value),
  exportVariable: (name, value) => core.exportVariable(name, value),
  addPath: (dir) => core.addPath(dir),
  saveState: (name, value) => core.saveState(name, value),
  info: (message) => core.info(message),
  debug: (message) => core.debug(message),
  notice: (message) => core.notice(message),
  warning: (message) => core.warning(message),
  setFailed: (message) => core.setFailed(message),
  startGroup: (title) => core.startGroup(title),
  endGroup: () => core.endGroup(),
  appendSummary: async (markdown) => {
    if (!process.env.GITHUB_STEP_SUMMARY) return;
    await core.summary.addRaw(markdown, true).write();
  },
};

export const defaultDeps = (): ActionDeps => ({
  runner: actionsRunner,
  env: process.env,
  now: Date.now,
});
