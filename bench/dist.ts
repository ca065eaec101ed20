// dist/ bytes: every file with its size, the total against the previous layout, and whether any
// piece is there twice (files hashed; identical bytes under two names count as a duplicate).
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../test/runner.ts';
import { fmt, printReport, type Report, section } from './util.ts';

/** dist/ of the previous layout (main, post and cli each a full bundle), measured before. */
export const BEFORE_BYTES = 6_900_000;

export interface DistFile {
  file: string;
  bytes: number;
  sha256: string;
  /** Other files with the same bytes. */
  sameAs: string[];
  role: string;
}

export interface DistResults {
  files: DistFile[];
  totalBytes: number;
  beforeBytes: number;
  /** Bytes a main step loads when it saves nothing (entry + shared bundle). */
  mainLoadsBytes: number;
  duplicateBytes: number;
  report: Report;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** What a file is, from its place and content. */
function roleOf(file: string, text: string): string {
  if (file.endsWith('package.json')) return 'module-type marker';
  if (file.endsWith('licenses.txt')) return 'third-party licences';
  if (file === 'dist/shared/index.js') return 'all code (every entry loads it)';
  if (/^dist\/(main|post|cli)\/index\.js$/.test(file)) {
    return file.includes('cli')
      ? 'CLI entry (answers a valid stored token itself)'
      : `${file.split('/')[1]} step entry`;
  }
  if (/^dist\/.*\d+\.index\.js$/.test(file)) {
    if (text.includes('ReserveCacheError')) return 'lazy chunk: @actions/cache (saving only)';
    const binding = /\/\* binding \*\/ (\w+)/.exec(text)?.[1];
    return `lazy chunk${binding ? `: ${binding}` : ''}${binding === 'ActionsCacheTokenStore' ? ' (jobs using the cache)' : ''}`;
  }
  return '';
}

const bytes = (n: number) => n.toLocaleString('en-US');

/** `actionDir`: the folder holding dist/ (a snapshot of this repository's, or the repository). */
export async function benchDist(actionDir = REPO_ROOT): Promise<DistResults> {
  section('dist/ bytes');
  const root = join(actionDir, 'dist');
  const paths = (await walk(root)).sort();
  const files: DistFile[] = [];
  for (const path of paths) {
    const data = await readFile(path);
    const file = relative(actionDir, path).split('\\').join('/');
    files.push({
      file,
      bytes: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
      sameAs: [],
      role: roleOf(file, data.toString('latin1')),
    });
  }
  for (const f of files)
    f.sameAs = files.filter((g) => g !== f && g.sha256 === f.sha256).map((g) => g.file);
  const totalBytes = files.reduce((a, f) => a + f.bytes, 0);
  // Per set of identical files, every copy after the first.
  const duplicateBytes = files
    .filter((f) => f.sameAs.some((other) => other < f.file))
    .reduce((a, f) => a + f.bytes, 0);
  const size = (file: string) => files.find((f) => f.file === file)?.bytes ?? 0;
  const mainLoadsBytes = size('dist/main/index.js') + size('dist/shared/index.js');

  const rows: string[][] = [['file', 'bytes', 'share', 'once', 'what']];
  for (const f of files) {
    rows.push([
      f.file,
      bytes(f.bytes),
      `${fmt((100 * f.bytes) / totalBytes, 1)} %`,
      f.sameAs.length === 0 ? 'yes' : `no: ${f.sameAs.length + 1} copies`,
      f.role,
    ]);
  }
  rows.push(['total now', bytes(totalBytes), '100.0 %', '', `${files.length} files`]);
  rows.push([
    'total before',
    bytes(BEFORE_BYTES),
    '',
    '',
    'previous layout, 6.9 MB as measured before this change (hard-coded)',
  ]);
  rows.push([
    'now / before',
    `${fmt(totalBytes / BEFORE_BYTES, 2)}x`,
    '',
    '',
    `${bytes(BEFORE_BYTES - totalBytes)} bytes less`,
  ]);
  const markers = files.filter((f) => f.role === 'module-type marker' && f.sameAs.length > 0);
  const codeDuplicates = files.filter(
    (f) => f.sameAs.length > 0 && f.role !== 'module-type marker',
  );
  const notes = [
    `Identical files: ${duplicateBytes === 0 ? 'none' : `${bytes(duplicateBytes)} bytes in copies`}${
      markers.length
        ? ` (${markers.length} package.json markers of ${markers[0]?.bytes} bytes, {"type":"module"}, one per folder: Node reads the nearest one)`
        : ''
    }; code or licence files present twice: ${codeDuplicates.length === 0 ? 'none' : codeDuplicates.map((f) => f.file).join(', ')}.`,
    `A main step without a save loads ${bytes(mainLoadsBytes)} bytes (entry + shared bundle); a save adds the @actions/cache chunk.`,
  ];
  const report: Report = {
    title: 'dist/ bytes: every file, the total against the previous layout, identical files',
    rows,
    notes,
    align: ['l', 'r', 'r', 'l', 'l'],
  };
  printReport(report);
  return { files, totalBytes, beforeBytes: BEFORE_BYTES, mainLoadsBytes, duplicateBytes, report };
}
