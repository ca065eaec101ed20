// A secret scanner that reads a job's log the way GitHub's runner shows it: `::add-mask::VALUE`
// lines register VALUE (and its encoded forms) from that line on; a secret that shows in a line
// before that, or anywhere in the job summary, GITHUB_STATE or a cache key, is a leak.
import assert from 'node:assert/strict';

/** The forms of a value the runner masks too, and that a leak could take. */
export function encodedForms(value: string): string[] {
  const forms = new Set([value]);
  const base64 = Buffer.from(value).toString('base64').replace(/=+$/, '');
  // The shorter base64 forms a value takes inside a longer base64 text (offsets 1 and 2).
  for (const shift of [0, 1, 2]) {
    const shifted = Buffer.from(`${'x'.repeat(shift)}${value}`)
      .toString('base64')
      .replace(/=+$/, '');
    // Drop the characters that depend on the prefix or on what follows.
    const start = Math.ceil((shift * 4) / 3);
    const trimmed = shifted.slice(start, shifted.length - 1);
    if (trimmed.length >= 8) forms.add(trimmed);
  }
  forms.add(base64);
  forms.add(encodeURIComponent(value));
  return [...forms].filter((f) => f.length > 0);
}

// Workflow command data escaping (`%`, `\r`, `\n`), undone as the runner does.
const unescapeData = (s: string) =>
  s.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%');

/** Replaces every registered value in `line` with `***`, as the runner's secret masker does. */
export function maskLine(line: string, masks: Iterable<string>): string {
  const ranges: Array<[number, number]> = [];
  for (const mask of masks) {
    if (!mask) continue;
    for (let at = line.indexOf(mask); at >= 0; at = line.indexOf(mask, at + 1)) {
      ranges.push([at, at + mask.length]);
    }
  }
  if (ranges.length === 0) return line;
  ranges.sort((a, b) => a[0] - b[0]);
  let out = '';
  let position = 0;
  let current: [number, number] | undefined;
  for (const range of ranges) {
    if (current && range[0] <= current[1]) {
      current[1] = Math.max(current[1], range[1]);
      continue;
    }
    if (current) {
      out += `${line.slice(position, current[0])}***`;
      position = current[1];
    }
    current = [...range];
  }
  if (current) out += `${line.slice(position, current[0])}***`;
  return out + line.slice(current ? current[1] : position);
}

export interface LeakScanExtras {
  /** GITHUB_STATE contents of the job's steps. */
  state?: string[];
  /** Cache keys the job used (they are visible to anyone who can list caches). */
  cacheKeys?: string[];
}

/**
 * The runner's secret masker, fed step by step: `::add-mask::` lines register a value (and its
 * encoded forms) and are not shown; every other line shows with the values registered so far
 * replaced by `***`.
 */
export class LogMasker {
  readonly masks = new Set<string>();

  /** Registers a value as `::add-mask::` does (a multi-line value line by line). */
  add(value: string): void {
    for (const part of value.split(/\r?\n/)) for (const f of encodedForms(part)) this.masks.add(f);
  }

  /** `text` with every value registered so far replaced by `***`. */
  mask(text: string): string {
    return maskLine(text, this.masks);
  }

  /** The lines of one step's output as the runner would display them (mask commands consumed). */
  display(output: string | string[]): string[] {
    const shown: string[] = [];
    for (const line of typeof output === 'string' ? output.split(/\r?\n/) : output) {
      // [\s\S]: a value may hold U+2028, which `.` does not match (the runner reads to the line end).
      const command = /^::add-mask::([\s\S]*)$/.exec(line);
      if (command) this.add(unescapeData(command[1] ?? '').trim());
      else shown.push(this.mask(line));
    }
    return shown;
  }
}

/** The lines of a job's log as the runner would display them (mask commands consumed). */
export function displayedLines(stepOutputs: string[]): string[] {
  const masker = new LogMasker();
  return stepOutputs.flatMap((output) => masker.display(output));
}

/**
 * Asserts that no secret shows in a job's log before the runner was told to mask it, nor ever in
 * the summary, GITHUB_STATE or a cache key. `stepOutputs`: every step's output, in order.
 */
export function assertNoLeaks(
  stepOutputs: string[],
  summary: string,
  secrets: Array<string | undefined>,
  extras: LeakScanExtras = {},
): void {
  const wanted = [...new Set(secrets.filter((s): s is string => !!s && s.length >= 4))];
  assert.ok(wanted.length > 0, 'assertNoLeaks needs at least one secret to look for');
  const lines = displayedLines(stepOutputs);
  for (const secret of wanted) {
    const forms = encodedForms(secret);
    const where = (text: string) => forms.find((form) => text.includes(form));
    const label = `${secret.slice(0, 3)}…(${secret.length} chars)`;
    for (const line of lines) {
      const form = where(line);
      assert.equal(form, undefined, `secret ${label} shows in the log: ${JSON.stringify(line)}`);
    }
    assert.equal(where(summary), undefined, `secret ${label} is in the job summary`);
    for (const state of extras.state ?? []) {
      assert.equal(where(state), undefined, `secret ${label} is in GITHUB_STATE`);
    }
    for (const key of extras.cacheKeys ?? []) {
      assert.equal(where(key), undefined, `secret ${label} is in the cache key ${key}`);
    }
  }
}
