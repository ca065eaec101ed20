// The cache trust rules as a table: event, inputs and environment in, a decision out. No I/O.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CachePolicy, cachePolicy } from '../src/action/cache-policy.ts';
import type { EventPayload, WorkflowEvent } from '../src/action/event.ts';
import type { Inputs } from '../src/action/inputs.ts';

const SERVICE = { ACTIONS_RESULTS_URL: 'http://127.0.0.1:1/', ACTIONS_CACHE_SERVICE_V2: 'true' };
const PRIVATE: EventPayload = { repository: { private: true, visibility: 'private' } };
const PUBLIC: EventPayload = { repository: { private: false, visibility: 'public' } };
const SAME_REPO_PR: EventPayload = {
  ...PRIVATE,
  pull_request: { head: { repo: { full_name: 'o/r' } }, base: { repo: { full_name: 'o/r' } } },
};
const FORK_PR: EventPayload = {
  ...PRIVATE,
  pull_request: {
    head: { repo: { full_name: 'x/r', fork: true } },
    base: { repo: { full_name: 'o/r' } },
  },
};
const DELETED_FORK_PR: EventPayload = {
  ...PRIVATE,
  pull_request: { head: { repo: null }, base: { repo: { full_name: 'o/r' } } },
};

const inputs = (extra: Partial<Inputs> = {}): Inputs =>
  ({ cache: true, password: 'pw', 'cache-secret': undefined, ...extra }) as Inputs;
const event = (name: string, payload: EventPayload): WorkflowEvent => ({ name, payload });

type Expect =
  | { use: true; read: boolean; write: boolean; key: 'cacheSecret' | 'credentialSecret' }
  | { use: false; note: RegExp; notice: boolean };

const rows: Array<[string, WorkflowEvent, Partial<Inputs>, NodeJS.ProcessEnv, Expect]> = [
  [
    'push, private, password',
    event('push', PRIVATE),
    {},
    SERVICE,
    { use: true, read: true, write: true, key: 'credentialSecret' },
  ],
  [
    'push, private, cache-secret',
    event('push', PRIVATE),
    { 'cache-secret': 'c' },
    SERVICE,
    { use: true, read: true, write: true, key: 'cacheSecret' },
  ],
  [
    'cache: false',
    event('push', PRIVATE),
    { cache: false },
    SERVICE,
    { use: false, note: /^off$/, notice: false },
  ],
  [
    'public without cache-secret',
    event('push', PUBLIC),
    {},
    SERVICE,
    { use: false, note: /public repository/, notice: true },
  ],
  [
    'public with cache-secret',
    event('push', PUBLIC),
    { 'cache-secret': 'c' },
    SERVICE,
    { use: true, read: true, write: true, key: 'cacheSecret' },
  ],
  [
    'pull_request from the same repository',
    event('pull_request', SAME_REPO_PR),
    {},
    SERVICE,
    { use: true, read: true, write: true, key: 'credentialSecret' },
  ],
  [
    'pull_request from a fork',
    event('pull_request', FORK_PR),
    {},
    SERVICE,
    { use: false, note: /fork/, notice: true },
  ],
  [
    'pull_request from a deleted fork (head.repo null)',
    event('pull_request', DELETED_FORK_PR),
    {},
    SERVICE,
    { use: false, note: /fork/, notice: true },
  ],
  [
    'pull_request without a payload',
    event('pull_request', {}),
    {},
    SERVICE,
    { use: false, note: /fork/, notice: true },
  ],
  ...(['pull_request_target', 'workflow_run', 'issue_comment'] as const).map(
    (name): [string, WorkflowEvent, Partial<Inputs>, NodeJS.ProcessEnv, Expect] => [
      name,
      event(name, PRIVATE),
      { 'cache-secret': 'c' },
      SERVICE,
      { use: false, note: new RegExp(name), notice: true },
    ],
  ),
  [
    'ACTIONS_CACHE_MODE=none',
    event('push', PRIVATE),
    {},
    { ...SERVICE, ACTIONS_CACHE_MODE: 'none' },
    { use: false, note: /ACTIONS_CACHE_MODE=none/, notice: false },
  ],
  [
    'ACTIONS_CACHE_MODE=read',
    event('push', PRIVATE),
    {},
    { ...SERVICE, ACTIONS_CACHE_MODE: 'read' },
    { use: true, read: true, write: false, key: 'credentialSecret' },
  ],
  [
    'ACTIONS_CACHE_MODE=write-only',
    event('push', PRIVATE),
    {},
    { ...SERVICE, ACTIONS_CACHE_MODE: 'write-only' },
    { use: true, read: false, write: true, key: 'credentialSecret' },
  ],
  [
    'no secret to key it with (a one-time code only)',
    event('push', PRIVATE),
    { password: undefined },
    SERVICE,
    { use: false, note: /^off$/, notice: false },
  ],
  [
    'no cache service on this runner',
    event('push', PRIVATE),
    {},
    {},
    { use: false, note: /not available/, notice: false },
  ],
];

describe('cachePolicy', () => {
  for (const [name, ev, given, env, expected] of rows) {
    test(name, () => {
      const policy: CachePolicy = cachePolicy(ev, inputs(given), env);
      if (expected.use) {
        assert.ok(policy.use, `expected the cache to be used: ${JSON.stringify(policy)}`);
        assert.equal(policy.read, expected.read);
        assert.equal(policy.write, expected.write);
        assert.ok(expected.key in policy.material, `keyed by ${expected.key}`);
      } else {
        assert.ok(!policy.use, 'expected the cache not to be used');
        assert.match(policy.note, expected.note);
        assert.equal(!!policy.notice, expected.notice, 'one notice line exactly when untrusted');
      }
    });
  }
});
