import { readFileSync } from 'node:fs';

/** What the action needs of the event payload (GITHUB_EVENT_PATH); anything else is ignored. */
export interface EventPayload {
  repository?: { private?: boolean; visibility?: string };
  pull_request?: {
    head?: { repo?: { full_name?: string; fork?: boolean } | null };
    base?: { repo?: { full_name?: string } };
  };
}

export interface WorkflowEvent {
  name: string;
  payload: EventPayload;
}

/** The run's event, as the runner describes it; an unreadable payload says nothing. */
export function readEvent(env: NodeJS.ProcessEnv): WorkflowEvent {
  let payload: EventPayload = {};
  try {
    payload = JSON.parse(readFileSync(env.GITHUB_EVENT_PATH ?? '', 'utf8')) ?? {};
  } catch {
    // No payload (a local run): nothing in it can make the run look trusted or public.
  }
  return { name: env.GITHUB_EVENT_NAME ?? '', payload };
}

/**
 * A pull request whose head lives in a fork: its workflow runs without the repository's secrets.
 * A head that cannot be told apart from a fork counts as one: a deleted fork has `head.repo: null`,
 * and a payload without the pull request says nothing either way.
 */
export function isForkPullRequest(event: WorkflowEvent): boolean {
  if (!event.name.startsWith('pull_request')) return false;
  const pr = event.payload.pull_request;
  const head = pr?.head?.repo;
  const base = pr?.base?.repo?.full_name;
  if (!head?.full_name || !base) return true;
  return head.fork === true || head.full_name !== base;
}

/** Public repositories let anyone who opens a pull request read the cache. */
export function isPublicRepository(event: WorkflowEvent): boolean {
  const repo = event.payload.repository;
  return repo?.private === false || repo?.visibility === 'public';
}

/**
 * Triggers whose code or inputs an outsider controls: a token set is neither restored into nor
 * saved from them.
 */
export function untrustedTrigger(event: WorkflowEvent): string | undefined {
  if (['pull_request_target', 'workflow_run', 'issue_comment'].includes(event.name)) {
    return event.name;
  }
  if (isForkPullRequest(event)) return 'pull_request from a fork';
  return undefined;
}
