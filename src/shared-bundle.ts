// The one bundle that the action's two steps and the CLI share (dist/shared/): every module and
// chunk exists once in dist/, which the runner downloads for every job that uses the action. The
// entries in dist/main, dist/post and dist/cli load this file, and it loads only the chunks of
// the path asked for: the CLI's renewal never evaluates @actions/core, a job that only restores
// never evaluates @actions/cache.
import type { CliDeps } from './cli/main.ts';

export const runMain = async (): Promise<void> => (await import('./action/main.ts')).run();
export const runPost = async (): Promise<void> => (await import('./action/post.ts')).run();
export const runCli = async (deps: CliDeps): Promise<number> =>
  (await import('./cli/main.ts')).run(deps);
