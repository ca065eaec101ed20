import { readFileSync } from 'node:fs';

/** What the action needs to know about the workflow run, read from the runner's environment. */
interface EventPayload {
  repository?: { private?: boolean; visibility?: string };
  pull_request?: {
    head?: { repo?: { full_name?: string; fork?: boolean } | null };
    base?: { repo?: { full_name?: string } };
  };
}

let payload: EventPayload | undefined;
function event(): EventPayload {
  if (payload === undefined) {
    try {
      payload = JSON.parse(
        readFileSync(process.env.GITHUB_EVENT_PATH ?? '', 'utf8'),
      ) as EventPayload;
    } catch {
      payload = {};
    }
  }
  return payload;
}

export const eventName = (): string => process.env.GITHUB_EVENT_NAME ?? '';

/**
 * A pull request whose head lives in a fork: its workflow runs without the repository's secrets.
 * A head that cannot be told apart from a fork counts as one: a deleted fork has `head.repo: null`,
 * and a payload without the pull request says nothing either way.
 */
export function isForkPullRequest(): boolean {
  if (!eventName().startsWith('pull_request')) return false;
  const pr = event().pull_request;
  const head = pr?.head?.repo;
  const base = pr?.base?.repo?.full_name;
  if (!head?.full_name || !base) return true;
  return head.fork === true || head.full_name !== base;
}

/** Public repositories let anyone who opens a pull request read the cache. */
export function isPublicRepository(): boolean {
  const repo = event().repository;
  return repo?.private === false || repo?.visibility === 'public';
}

/**
 * Triggers whose code or inputs an outsider controls: a token set is neither restored into nor
 * saved from them.
 */
export function untrustedTrigger(): string | undefined {
  const name = eventName();
  if (['pull_request_target', 'workflow_run', 'issue_comment'].includes(name)) return name;
  if (isForkPullRequest()) return 'pull_request from a fork';
  return undefined;
}
