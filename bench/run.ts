// npm run bench: measures (never asserts) the library's single flight and overhead, the main
// step's start-up against plain alternatives, the bundle sizes, and the workflow cache's effect
// on token requests. Prints tables and writes .bench/results.json. Always exits 0.
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../test/runner.ts';
import { benchCache } from './cache.ts';
import { benchLibrary } from './library.ts';
import { benchStep } from './step.ts';
import { fmt, say } from './util.ts';

const started = performance.now();
const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  cpus: `${availableParallelism()} × ${cpus()[0]?.model ?? 'unknown'}`,
};
say(`cdse-auth bench: node ${process.version}, ${results.cpus}`);

const attempt = async <T>(name: string, work: () => Promise<T>): Promise<T | undefined> => {
  const t0 = performance.now();
  try {
    const value = await work();
    results[name] = value;
    say(`(${name}: ${fmt((performance.now() - t0) / 1000, 0)} s)`);
    return value;
  } catch (error) {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    say(`!! ${name} bench failed: ${message}`);
    results[name] = { error: message };
    return undefined;
  }
};

await attempt('library', benchLibrary);
const step = await attempt('step', () => benchStep(18));
await attempt('cache', () => benchCache(step?.mainSamples ?? []));

const seconds = (performance.now() - started) / 1000;
results.seconds = seconds;
const dir = join(REPO_ROOT, '.bench');
await mkdir(dir, { recursive: true });
await writeFile(join(dir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
say();
say(`done in ${fmt(seconds, 0)} s; results in .bench/results.json`);
process.exit(0);
