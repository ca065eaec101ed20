// npm run build [-- --out DIR]: type-check, compile the library to lib/ (the package's import
// entry with its type declarations), and bundle the action steps and the CLI with ncc into
// self-contained dist/ folders (what the runner executes from a checkout without node_modules).
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { minify } from 'terser';

const root = resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { out: { type: 'string', default: 'dist' } } });
const out = resolve(root, values.out as string);
const bin = (name: string) => join(root, 'node_modules', '.bin', name);

function run(command: string, args: string[]) {
  const result = spawnSync(command, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

rmSync(join(root, 'lib'), { recursive: true, force: true });
run(bin('tsc'), ['-p', 'tsconfig.build.json']);

// shared holds all the code; the three others are small entries that load it at run time (see
// src/shared-path.ts), so dist/ carries every module, chunk and licence once.
const entries = {
  shared: 'lib/shared-bundle.js',
  main: 'lib/action/main-entry.js',
  post: 'lib/action/post-entry.js',
  cli: 'lib/cli/bin.js',
};
const staging = mkdtempSync(join(root, '.dist-'));
try {
  for (const [name, entry] of Object.entries(entries)) {
    // --no-source-map-register / no cache: the same sources must give the same bytes.
    run(bin('ncc'), [
      'build',
      entry,
      '-o',
      join(staging, name),
      '--minify',
      '--no-cache',
      '--quiet',
      '--license',
      'licenses.txt',
    ]);
  }
  for (const name of Object.keys(entries)) {
    for (const file of readdirSync(join(staging, name)).filter((f) => f.endsWith('.js'))) {
      const path = join(staging, name, file);
      let code = readFileSync(path, 'utf8');
      // ncc minifies only the entry file; its lazy chunks are parsed at every start that loads
      // them, so they are minified here (deterministically: same input, same bytes).
      if (file !== 'index.js') {
        const result = await minify(code, { module: true, compress: true, mangle: true });
        if (result.code === undefined) throw new Error(`terser produced nothing for ${file}`);
        code = result.code;
      }
      // A single non-ASCII character makes V8 hold the whole bundle as a two-byte string, which
      // is slower to decode and compile at every start; as \uXXXX escapes the source stays
      // one-byte. The few there are sit in strings, untagged templates and comments, where the
      // escape is exact.
      const ascii = code.replace(
        /[\u0080-\uffff]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
      );
      writeFileSync(path, ascii);
    }
  }
  const cli = join(staging, 'cli', 'index.js');
  const code = readFileSync(cli, 'utf8');
  if (!code.startsWith('#!')) writeFileSync(cli, `#!/usr/bin/env node\n${code}`);
  chmodSync(cli, 0o755);
  rmSync(out, { recursive: true, force: true });
  renameSync(staging, out);
  chmodSync(out, 0o755); // mkdtemp made it private
} finally {
  rmSync(staging, { recursive: true, force: true });
}
for (const name of Object.keys(entries)) {
  const files = readdirSync(join(out, name)).filter((f) => f.endsWith('.js'));
  console.log(`${name}: ${files.join(', ')}`);
}
