#!/usr/bin/env node
import { run } from './main.ts';

run({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
  interactive: !!(process.stdin.isTTY && process.stderr.isTTY),
}).then((code) => {
  process.exitCode = code;
});
