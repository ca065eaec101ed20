// Small statistics and table helpers for the bench. Measures only; never asserts.

export interface Stats {
  n: number;
  median: number;
  p95: number;
  min: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of an unsorted sample. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function stats(values: number[]): Stats {
  const n = values.length;
  return {
    n,
    median: percentile(values, 50),
    p95: percentile(values, 95),
    min: n ? Math.min(...values) : Number.NaN,
    max: n ? Math.max(...values) : Number.NaN,
    mean: n ? values.reduce((a, b) => a + b, 0) / n : Number.NaN,
  };
}

export const fmt = (value: number, digits = 1): string =>
  Number.isFinite(value) ? value.toFixed(digits) : 'n/a';

export const ms = (value: number): string =>
  !Number.isFinite(value)
    ? 'n/a'
    : value < 10
      ? `${value.toFixed(2)} ms`
      : `${value.toFixed(0)} ms`;

export const ratio = (a: number, b: number): number => (b > 0 ? a / b : Number.NaN);

export const kB = (bytes: number): string => `${(bytes / 1000).toFixed(1)} kB`;

/** Column alignment: left or right; by default the first column left, the others right. */
export type Align = 'l' | 'r';
const alignOf = (align: Align[] | undefined, i: number): Align =>
  align?.[i] ?? (i === 0 ? 'l' : 'r');

/** A plain-text table: the first row is the header. */
export function table(rows: string[][], align?: Align[]): string {
  const widths: number[] = [];
  for (const row of rows)
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  const line = (row: string[]) =>
    row
      .map((cell, i) =>
        alignOf(align, i) === 'l' ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd();
  const [head, ...body] = rows;
  const out = [line(head ?? []), widths.map((w) => '─'.repeat(w)).join('  ')];
  for (const row of body) out.push(line(row));
  return out.join('\n');
}

export const section = (title: string): void => {
  process.stdout.write(`\n== ${title} ${'='.repeat(Math.max(0, 74 - title.length))}\n`);
};

export const say = (text = ''): void => {
  process.stdout.write(`${text}\n`);
};

/** Runs async tasks with at most `limit` at a time; `slot` tells which of the `limit` runs it. */
export async function pool<T, R>(
  items: T[],
  limit: number,
  work: (item: T, index: number, slot: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (slot: number) => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T, i, slot);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, (_, slot) => worker(slot)),
  );
  return results;
}

/** A table as a bench prints it and as the README block renders it. */
export interface Report {
  title: string;
  /** First row: the header. */
  rows: string[][];
  notes: string[];
  align?: Align[];
}

/** Prints a report's table and notes. */
export function printReport(report: Report): void {
  say(report.title);
  say(table(report.rows, report.align));
  for (const note of report.notes) say(`  ${note}`);
}

/** The same table in Markdown (first column left-aligned, the others right-aligned). */
export function markdown(report: Report): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const [head, ...body] = report.rows;
  const out = [
    `**${report.title}**`,
    '',
    `| ${(head ?? []).map(cell).join(' | ')} |`,
    `|${(head ?? []).map((_, i) => (alignOf(report.align, i) === 'l' ? ' :--- ' : ' ---: ')).join('|')}|`,
    ...body.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ];
  if (report.notes.length) out.push('', ...report.notes.map((n) => `- ${n}`));
  return out.join('\n');
}
