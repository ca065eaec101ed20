// The one bundle that the action's two steps and the CLI share (dist/shared/): every module and
// the lazily loaded @actions/cache chunk exist once in dist/, which the runner downloads for
// every job that uses the action. The entries in dist/main, dist/post and dist/cli only load it.
export { run as runMain } from './action/main.ts';
export { run as runPost } from './action/post.ts';
export { run as runCli } from './cli/main.ts';
