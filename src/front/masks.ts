/**
 * The values the runner must mask for one secret: the value itself, each of its lines (the
 * runner masks a multi-line value only line by line), and the secret inside an `otpauth://` URI
 * (logs could show it alone). Both front ends register exactly these.
 */
export function maskValues(value: string | undefined): string[] {
  if (!value) return [];
  const values = new Set([value]);
  for (const line of value.split(/\r?\n/)) if (line.trim()) values.add(line.trim());
  const embedded = /[?&]secret=([^&]+)/.exec(value)?.[1];
  if (embedded) {
    try {
      values.add(decodeURIComponent(embedded));
    } catch {
      values.add(embedded);
    }
  }
  return [...values];
}

/**
 * A workflow command line with its data escaped as the runner unescapes it (and as
 * `@actions/core` writes it): without this a `%0A` in a value would reach the runner as a line
 * break, splitting a mask or starting a forged command.
 */
export function commandLine(command: string, data: string): string {
  const escaped = data.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  return `::${command}::${escaped}`;
}
