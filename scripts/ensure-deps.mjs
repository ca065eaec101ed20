// Runs before `npm test`, `npm run demo` and `npm run bench` with whatever node the machine has
// (a fresh machine may have Node 20), so it is plain JavaScript with no dependencies. It installs
// the locked dependencies, which include Node 24 itself, when they are missing or out of date.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const lock = new URL('package-lock.json', root);
const installed = new URL('node_modules/.package-lock.json', root);
const node24 = new URL('node_modules/.bin/node', root);

const fresh =
  existsSync(installed) &&
  existsSync(node24) &&
  statSync(installed).mtimeMs >= statSync(lock).mtimeMs;

if (!fresh) {
  console.error('cdse-auth: installing the locked dependencies (npm ci)…');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], {
    cwd: root,
    stdio: 'inherit',
    shell: process.platform === 'win32',
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
