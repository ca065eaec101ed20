// Another package that depends on this one: `import { TokenManager } from 'cdse-auth'` resolves
// through package.json "exports" to the compiled library, with its type declarations.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT, run } from './runner.ts';
import { IdentityServer } from './servers/identity-server.ts';

let root: string;
let consumer: string;
const env = { ...process.env } as Record<string, string>;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cdse-consumer-'));
  const pkg = join(root, 'pkg');
  await mkdir(pkg);
  // The package as `npm run build` leaves it: package.json + lib/ (compiled here, in isolation).
  await cp(join(REPO_ROOT, 'package.json'), join(pkg, 'package.json'));
  const tsc = join(REPO_ROOT, 'node_modules', '.bin', 'tsc');
  const built = await run(
    tsc,
    ['-p', join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', join(pkg, 'lib')],
    {
      env,
      cwd: REPO_ROOT,
      timeoutMs: 120_000,
    },
  );
  assert.equal(built.code, 0, built.stdout + built.stderr);
  await symlink(join(REPO_ROOT, 'node_modules'), join(pkg, 'node_modules'));
  consumer = join(root, 'consumer');
  await mkdir(join(consumer, 'node_modules'), { recursive: true });
  await symlink(pkg, join(consumer, 'node_modules', 'cdse-auth'));
  await symlink(
    join(REPO_ROOT, 'node_modules', '@types'),
    join(consumer, 'node_modules', '@types'),
  );
  await writeFile(join(consumer, 'package.json'), JSON.stringify({ type: 'module' }));
});
after(() => rm(root, { recursive: true, force: true }));

test('the package entry exports the library with working types', { timeout: 120_000 }, async () => {
  const server = await IdentityServer.start({
    users: [{ username: 'alice', password: 'pw-package-1' }],
  });
  try {
    const code = `import { TokenManager, PasswordAuth, FileTokenStore, type TokenSet } from 'cdse-auth';
const manager = new TokenManager(new PasswordAuth('alice', 'pw-package-1'), { tokenUrl: process.argv[2] as string });
const set: TokenSet = await manager.getTokenSet();
const header: string = set.authorizationHeader;
console.log(header.startsWith('Bearer ') && typeof FileTokenStore === 'function' ? 'ok' : 'bad');
await manager.close();
`;
    await writeFile(join(consumer, 'use.ts'), code);
    await writeFile(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          target: 'es2023',
          strict: true,
          noEmit: true,
          types: ['node'],
        },
        files: ['use.ts'],
      }),
    );
    const tsc = join(REPO_ROOT, 'node_modules', '.bin', 'tsc');
    const typed = await run(tsc, ['-p', consumer], { env, cwd: consumer, timeoutMs: 120_000 });
    assert.equal(
      typed.code,
      0,
      `the consumer does not type-check:\n${typed.stdout}${typed.stderr}`,
    );
    const ran = await run(process.execPath, ['use.ts', server.tokenUrl], {
      env,
      cwd: consumer,
      timeoutMs: 30_000,
    });
    assert.equal(ran.stdout.trim(), 'ok', ran.stderr);
    assert.equal(server.counts.password, 1);
  } finally {
    await server.close();
  }
});

test('importing the library touches neither network nor filesystem', {
  timeout: 30_000,
}, async () => {
  // With every fs and net entry point booby-trapped before the import, the import must succeed.
  const probe = `import fs from 'node:fs'; import net from 'node:net';
const moduleFile = (p) => /\\.(m?js|cjs|json|node)$/.test(String(p));
for (const name of ['readFileSync', 'statSync', 'existsSync']) {
  const original = fs[name];
  fs[name] = (...args) => { if (!moduleFile(args[0])) throw new Error('fs touched: ' + name); return original(...args); };
}
for (const name of ['writeFileSync', 'mkdirSync', 'appendFileSync', 'rmSync']) {
  fs[name] = () => { throw new Error('fs written: ' + name); };
}
const openSync = fs.openSync;
fs.openSync = (path, flags = 'r', ...rest) => {
  if (/[wa+]/.test(String(flags))) throw new Error('fs written: openSync');
  return openSync(path, flags, ...rest);
};
net.connect = net.createConnection = () => { throw new Error('network touched'); };
const lib = await import('cdse-auth');
new lib.TokenManager(new lib.PasswordAuth('u', 'p'));
new lib.MemoryTokenStore();
console.log('clean');
`;
  await writeFile(join(consumer, 'probe.mjs'), probe);
  const ran = await run(process.execPath, ['probe.mjs'], { env, cwd: consumer, timeoutMs: 20_000 });
  assert.equal(ran.stdout.trim(), 'clean', ran.stderr);
});
