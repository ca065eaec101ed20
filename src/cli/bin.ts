#!/usr/bin/env node
import { SHARED_BUNDLE, type SharedBundle } from '../shared-path.ts';
import { storedAnswer } from './fast-path.ts';

const argv = process.argv.slice(2);
const answer = storedAnswer(argv, process.env);
if (answer !== undefined) {
  process.stdout.write(`${answer}\n`);
} else {
  // Everything for a renewal or a login is loaded only when it is due.
  const shared: Promise<SharedBundle> = import(/* webpackIgnore: true */ SHARED_BUNDLE);
  shared
    .then(({ runCli }) =>
      runCli({
        argv,
        env: process.env,
        stdout: (line) => process.stdout.write(`${line}\n`),
        stderr: (line) => process.stderr.write(`${line}\n`),
        interactive: !!(process.stdin.isTTY && process.stderr.isTTY),
      }),
    )
    .then((code) => {
      process.exitCode = code;
    });
}
