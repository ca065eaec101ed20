// The README and SECURITY.md against the code: the generated tables match action.yml and the
// pipeline, every example workflow passes GitHub's parser, names and messages quoted in the docs
// exist in the source, and the links resolve.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import {
  generatedSections,
  inputsTable,
  normalizeTables,
  readActionMetadata,
  sectionOf,
  staleSections,
  updateReadme,
} from '../scripts/readme-inputs.ts';
import {
  asWorkflow,
  loadAction,
  loadPipeline,
  ROOT,
  usageErrors,
  workflowErrors,
  yamlBlocks,
} from '../scripts/workflow-lint.ts';

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const readme = read('README.md');
const security = read('SECURITY.md');
const actionText = read('action.yml');
const action = loadAction();

/** All .ts files under a folder of the repository, concatenated. */
function sources(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(join(ROOT, d), { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) out.push(read(path));
    }
  };
  walk(dir);
  return out.join('\n');
}
const src = sources('src');

/** Markdown section (from a heading to the next heading of the same or a higher level). */
function section(markdown: string, heading: string): string {
  const lines = markdown.split('\n');
  // Lines inside code blocks (shell comments) are not headings.
  let fenced = false;
  const isHeading = lines.map((line) => {
    if (line.startsWith('```')) fenced = !fenced;
    return !fenced && /^#{1,6}\s/.test(line);
  });
  const start = lines.findIndex((l, i) => isHeading[i] && l.replace(/^#+\s*/, '') === heading);
  assert.ok(start >= 0, `no section '${heading}'`);
  const level = /^#+/.exec(lines[start] ?? '')?.[0].length ?? 1;
  let end = start + 1;
  const depth = (line = '') => /^#+/.exec(line)?.[0].length ?? 7;
  while (end < lines.length && !(isHeading[end] && depth(lines[end]) <= level)) end++;
  return lines.slice(start, end).join('\n');
}

describe('README first screen', () => {
  const first = readme.split('\n').slice(0, 25).join('\n');

  it('says what it is in one sentence, then a newcomer uses: example', () => {
    const lines = readme.split('\n');
    assert.match(lines[0] ?? '', /^# cdse-auth$/);
    const sentence = lines.slice(1).find((l) => l.trim()) ?? '';
    assert.match(sentence, /Copernicus Data Space Ecosystem/);
    assert.equal(sentence.match(/\. /g), null, 'one sentence');
    assert.match(first, /^- uses: cdse-auth\/cdse-auth@v1$/m);
    assert.match(first, /username: \$\{\{ secrets\.CDSE_USERNAME \}\}/);
  });

  it('gives exactly the two commands, and both work on a fresh clone', () => {
    const commands = [...first.matchAll(/^(npm [^#\n]*?)\s*(#.*)?$/gm)].map((m) => m[1]?.trim());
    assert.deepEqual(commands, ['npm run demo', 'npm test']);
    const pkg = JSON.parse(read('package.json'));
    assert.ok(pkg.scripts.demo && pkg.scripts.test, 'package.json has the demo and test scripts');
    // A fresh clone has no node_modules: these install the locked dependencies (and Node 24) first.
    assert.match(pkg.scripts.predemo, /ensure-deps/);
    assert.match(pkg.scripts.pretest, /ensure-deps/);
    assert.ok(pkg.devDependencies.node, 'Node 24 comes from the node package');
  });
});

describe('README reference tables', () => {
  it('are what scripts/readme-inputs.ts generates from action.yml and the pipeline', () => {
    assert.deepEqual(
      staleSections(readme),
      [],
      'README.md is out of date: run node scripts/readme-inputs.ts',
    );
  });

  it('document every input and output of action.yml', () => {
    const inputs = normalizeTables(sectionOf(readme, 'inputs') ?? '');
    for (const [name, spec] of action.inputs) {
      const row = inputs.split('\n').find((l) => l.startsWith(`|\`${name}\`|`));
      assert.ok(row, `input ${name} is not in the README's inputs table`);
      if (spec.default !== undefined) assert.ok(row.includes(`\`${spec.default}\``), name);
    }
    const outputs = normalizeTables(sectionOf(readme, 'outputs') ?? '');
    for (const name of action.outputs.keys()) {
      assert.ok(outputs.includes(`|\`${name}\`|`), `output ${name} is not in the README`);
    }
    const pipeline = loadPipeline();
    for (const name of pipeline.inputs.keys()) {
      assert.ok(
        normalizeTables(sectionOf(readme, 'pipeline-inputs') ?? '').includes(`|\`${name}\`|`),
        name,
      );
    }
    for (const name of pipeline.secrets.keys()) {
      assert.ok(
        normalizeTables(sectionOf(readme, 'pipeline-secrets') ?? '').includes(`|\`${name}\`|`),
        name,
      );
    }
  });

  it('ignore how a formatter pads the tables', () => {
    const compact = readme.replace(/^\|.*\|$/gm, (row) =>
      row.replace(/ {2,}/g, ' ').replace(/-{4,}/g, '---'),
    );
    assert.notEqual(compact, readme);
    assert.deepEqual(staleSections(compact), []);
    assert.equal(updateReadme(compact), compact, 'an up-to-date table is left as it is');
  });

  it('a new input in action.yml makes the README stale (the check can fail)', () => {
    const changed = actionText.replace(
      /^inputs:\n/m,
      'inputs:\n  colour:\n    description: A new input.\n    default: blue\n',
    );
    const sections = generatedSections(changed);
    assert.deepEqual(staleSections(readme, sections), ['inputs']);
    const updated = updateReadme(readme, sections);
    assert.deepEqual(staleSections(updated, sections), []);
    assert.match(
      normalizeTables(sectionOf(updated, 'inputs') ?? ''),
      /\|`colour`\|`blue`\|A new input\.\|/,
    );
  });

  it('marks the secret inputs and escapes table syntax', () => {
    const table = inputsTable(
      readActionMetadata(
        'inputs:\n  password:\n    description: a | b\n  x:\n    required: true\n',
      ),
    );
    assert.match(normalizeTables(table), /\|`password`\|\|a \\\| b _Secret: masked in logs\._\|/);
    assert.match(normalizeTables(table), /\|`x`\|\*\*required\*\*\|/);
  });

  it('list the environment the action exports and the CLI reads', () => {
    const exported = [...src.matchAll(/exportVariable\('([A-Z_]+)'/g)].map((m) => m[1]);
    assert.ok(exported.length >= 4);
    const environment = normalizeTables(section(readme, 'Environment for later steps'));
    for (const name of exported) assert.ok(environment.includes(`\`${name}\``), name);

    const cli = read('src/cli/main.ts');
    // The CLI's option table: `name: 'CDSE_VARIABLE',` per line.
    const variables = [...cli.matchAll(/^ {2}'?[a-z-]+'?: '(CDSE_[A-Z_]+)',$/gm)].map((m) => m[1]);
    assert.ok(variables.length >= 9);
    const command = normalizeTables(section(readme, 'The `cdse-auth` command'));
    for (const name of variables) assert.ok(command.includes(`|\`${name}\`|`), name);
    for (const verb of ['login', 'token', 'header', 'status', 'logout']) {
      assert.ok(command.includes(`|\`cdse-auth ${verb}\`|`), verb);
      assert.ok(cli.includes(`case '${verb}'`), `the CLI has no ${verb} command`);
    }
  });
});

describe('README examples', () => {
  const blocks = yamlBlocks(readme);

  it('are YAML, and complete workflows pass GitHub parser', async () => {
    let workflows = 0;
    for (const block of blocks) {
      const doc = parseYaml(block.text);
      if (doc && typeof doc === 'object' && 'on' in doc && 'jobs' in doc) {
        workflows++;
        assert.deepEqual(await workflowErrors(`README.md:${block.line}`, block.text), []);
      }
    }
    assert.ok(workflows >= 2, `expected complete example workflows, found ${workflows}`);
  });

  it('give the action and the pipeline only inputs and secrets they have', () => {
    let uses = 0;
    for (const block of blocks) {
      const doc = asWorkflow(parseYaml(block.text));
      assert.deepEqual(usageErrors(`README.md:${block.line}`, doc, action, loadPipeline()), []);
      uses += (block.text.match(/uses: cdse-auth\/cdse-auth/g) ?? []).length;
    }
    assert.ok(uses >= 10, `expected many examples of the action, found ${uses}`);
  });

  it('cover every recipe of the issue', () => {
    const recipes = section(readme, 'Recipes');
    for (const needle of [
      /password: \$\{\{ secrets\.CDSE_PASSWORD \}\}/,
      /totp-secret: \$\{\{ secrets\.CDSE_TOTP_SECRET \}\}/,
      /client-secret: \$\{\{ secrets\.CDSE_CLIENT_SECRET \}\}/,
      /refresh-token: \$\{\{ secrets\.CDSE_REFRESH_TOKEN \}\}/,
      /uses: cdse-auth\/cdse-auth\/\.github\/workflows\/cdse-pipeline\.yml@v1/,
      /\$\(cdse-auth (token|header)\)/,
      /curl [^\n]*CDSE_ACCESS_TOKEN/,
      /```python[\s\S]*cdse-auth[\s\S]*```/,
      /HTTPS_PROXY/,
      /Enterprise Server/,
    ]) {
      assert.match(recipes, needle);
    }
  });

  it('import only what the library exports', async () => {
    const library = (await import('../src/auth/index.ts')) as Record<string, unknown>;
    const imports = [...readme.matchAll(/import \{([^}]+)\} from 'cdse-auth'/g)];
    assert.ok(imports.length >= 1);
    const named = [...readme.matchAll(/`(\w+)\(/g)].map((m) => m[1] as string);
    for (const name of [
      ...imports.flatMap((m) => (m[1] ?? '').split(',').map((s) => s.trim())),
      ...named.filter((n) => /^[A-Z]/.test(n)),
    ]) {
      assert.equal(typeof library[name], 'function', `'${name}' is not exported by the library`);
    }
  });
});

describe('README troubleshooting', () => {
  // The full list lives in docs/troubleshooting.md; the README's section points there.
  const troubleshooting = read('docs/troubleshooting.md');

  // Pieces of every message a user meets; each must be in the source (or the docs are stale)
  // and in the troubleshooting section (or users cannot find it).
  const messages = [
    'The identity server rejected the',
    'Not retried, to avoid locking the account.',
    'not the public',
    'No credentials: set',
    'Credentials for more than one grant are set',
    'Pull requests from forks receive no secrets',
    'is neither a base32 secret nor an otpauth://totp/ URI.',
    'The TOTP code must be 6 to 8 digits.',
    'Give either a one-time TOTP code or a TOTP secret, not both.',
    'log in again to get a new one.',
    'the one-time TOTP code cannot log in again; use a TOTP secret for unattended logins.',
    'no credentials were given to log in again',
    'Set CDSE_CLIENT_SECRET (with CDSE_CLIENT_ID) to renew it',
    'or log in with scope: offline_access',
    'The token endpoint answered HTTP',
    'instead of a token response; a proxy or a wrong token URL?',
    'Could not reach',
    'must be an https:// URL (http:// is allowed only for localhost/127.0.0.1)',
    'in a public repository the login cache needs a cache-secret',
    '(untrusted trigger); this job logs in by itself.',
    'it does not open with this job’s key',
    'did not answer the',
    'Not logged in: run `cdse-auth login`',
    'other users can read it (expected mode 0600)',
  ];

  for (const message of messages) {
    it(`explains "${message}"`, () => {
      assert.ok(src.includes(message), `the source no longer says "${message}"`);
      assert.ok(
        troubleshooting.includes(message),
        `docs/troubleshooting.md does not quote "${message}"`,
      );
    });
  }

  it('covers invalid credentials, 2FA, 429 and session caps, expired refresh tokens', () => {
    for (const topic of [/password/i, /two-factor|2FA/, /429/, /session/i, /refresh token/i]) {
      assert.match(troubleshooting, topic);
    }
  });
});

describe('SECURITY.md', () => {
  it('covers the security model and how to report a vulnerability', () => {
    for (const heading of [
      'Reporting a vulnerability',
      'What is masked',
      'What is cached',
      'How it is encrypted',
      'Who can read the cache',
    ]) {
      assert.ok(section(security, heading));
    }
    assert.match(security, /fork/i);
    assert.match(security, /security\/advisories\/new/);
  });

  it('states the cache design as the code implements it', () => {
    const seal = read('src/action/seal.ts');
    const cache = ['workflow-cache', 'cache-policy', 'event']
      .map((name) => read(`src/action/${name}.ts`))
      .join('\n');
    const facts: [RegExp, RegExp][] = [
      [/aes-256-gcm/, /AES-256-GCM/],
      [/N: 2 \*\* 16, r: 8, p: 1/, /N = 2\^16, r = 8, p = 1/],
      [/hkdf\)\(\s*'sha256'/, /HKDF-SHA256/],
      [/createHash\('sha256'\)\.update\(identity\)/, /salted with SHA-256 of the identity/],
      [/IV_BYTES = 12/, /96-bit nonce/],
      [/TAG_BYTES = 16/, /128-bit tag/],
      [/slice\(0, 24\)/, /24 hex digits/],
      [/setAAD\(Buffer\.from\(identity\)\)/, /identity is the associated data/],
      [/`cdse-auth-\$\{keyedDigest/, /`cdse-auth-<24 hex digits>-`/],
    ];
    for (const [code, doc] of facts) {
      assert.match(seal + cache, code, `the code no longer matches ${code}`);
      assert.match(security, doc);
    }
    assert.match(cache, /CACHE_TIMEOUT_MS = 5_000/);
    assert.match(security, /after 5 seconds/);
    for (const trigger of ['pull_request_target', 'workflow_run', 'issue_comment']) {
      assert.ok(cache.includes(trigger), trigger);
      assert.ok(security.includes(`\`${trigger}\``), trigger);
    }
    assert.match(security, /openssl rand -base64 32/);
    assert.match(cache, /openssl rand -base64 32/);
  });
});

describe('links and files', () => {
  const slug = (heading: string) =>
    heading
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
  const anchors = (markdown: string) =>
    new Set(
      [...markdown.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1] ?? '')).filter(Boolean),
    );

  for (const file of ['README.md', 'SECURITY.md', 'CHANGELOG.md']) {
    it(`${file}: relative links and anchors resolve`, () => {
      const text = read(file);
      // Code blocks hold shell and YAML, not links.
      const prose = text.replace(/```[\s\S]*?```/g, '');
      for (const [, target] of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (!target || /^[a-z]+:/.test(target)) continue;
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const resolved = path ? join(ROOT, dirname(file), path) : join(ROOT, file);
        assert.ok(existsSync(resolved), `${file}: ${target} does not exist`);
        if (anchor) {
          const headings = anchors(readFileSync(resolved, 'utf8'));
          assert.ok(
            headings.has(anchor),
            `${file}: #${anchor} is not a heading of ${path || file}`,
          );
        }
      }
    });
  }

  it('LICENSE is the Apache License 2.0, as package.json says', () => {
    const license = read('LICENSE');
    assert.match(license, /Apache License\s+Version 2\.0, January 2004/);
    assert.match(license, /TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION/);
    assert.equal(JSON.parse(read('package.json')).license, 'Apache-2.0');
  });

  it('CHANGELOG.md explains the tags and has an entry for the coming release', () => {
    const changelog = read('CHANGELOG.md');
    assert.match(changelog, /^## \[(Unreleased|\d+\.\d+\.\d+)\]/m);
    assert.match(changelog, /`v1`/);
  });
});

describe('README links', () => {
  it('every relative link in README.md, SECURITY.md and docs/ points at a file that exists', () => {
    const pages = [
      'README.md',
      'SECURITY.md',
      'CHANGELOG.md',
      ...readdirSync(join(ROOT, 'docs')).map((f) => `docs/${f}`),
    ];
    let links = 0;
    for (const page of pages) {
      for (const [, target] of read(page).matchAll(
        /\]\(((?!https?:|#|mailto:)[^)#\s]+)(#[^)\s]*)?\)/g,
      )) {
        links++;
        assert.ok(
          existsSync(join(ROOT, dirname(page), target as string)),
          `${page} links to ${target}`,
        );
      }
    }
    assert.ok(links > 10, `found ${links} links`);
  });

  it('the README does not tell people to install from a registry it is not on', () => {
    assert.doesNotMatch(readme, /npm install -g cdse-auth/);
  });
});
