import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The job's private folder: the credentials file and the `cdse-auth` launcher live here. */
export interface SessionDir {
  dir: string;
  credentialsFile: string;
  binDir: string;
}

export async function createSessionDir(env: NodeJS.ProcessEnv): Promise<SessionDir> {
  // mkdtemp makes the folder 0700 with a random name: no user or secret in the path.
  const dir = await mkdtemp(join(env.RUNNER_TEMP || tmpdir(), 'cdse-auth-'));
  const binDir = join(dir, 'bin');
  await writeLaunchers(binDir);
  return { dir, credentialsFile: join(dir, 'credentials.json'), binDir };
}

export function sessionDirAt(dir: string): SessionDir {
  return { dir, credentialsFile: join(dir, 'credentials.json'), binDir: join(dir, 'bin') };
}

export async function removeSessionDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * `cdse-auth` for later steps: runs the bundled CLI with the node that runs this action, so it
 * works on every runner without node on PATH. A shell script for Linux, macOS and Git Bash, and a
 * .cmd for cmd and PowerShell on Windows.
 */
async function writeLaunchers(binDir: string): Promise<void> {
  await mkdir(binDir, { mode: 0o700 });
  const node = process.execPath;
  const cli = bundledCli();
  const sh = join(binDir, 'cdse-auth');
  await writeFile(sh, `#!/bin/sh\nexec ${shQuote(node)} ${shQuote(cli)} "$@"\n`, { mode: 0o700 });
  await chmod(sh, 0o700);
  await writeFile(join(binDir, 'cdse-auth.cmd'), `@"${node}" "${cli}" %*\r\n`, { mode: 0o600 });
}

/**
 * The CLI bundle, found from this module's own location (not the process's script, which is
 * another program under local-action): dist/shared/ in the bundle, src/action/ or lib/action/
 * when the sources run directly. Not `new URL(.., import.meta.url)`: ncc would copy an asset.
 */
function bundledCli(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return basename(here) === 'shared'
    ? resolve(here, '..', 'cli', 'index.js')
    : resolve(here, '..', '..', 'dist', 'cli', 'index.js');
}

const shQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
