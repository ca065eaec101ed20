// A tiny tar writer for tests: well-formed archives like the ones GNU `tar --posix` makes, and
// the hostile ones a planted cache entry could hold (absolute paths, `..`, links, devices...).
import { gzipSync, zstdCompressSync } from 'node:zlib';

const BLOCK = 512;

export interface TarMember {
  name: string;
  /** Type flag: '0' file, '1' hard link, '2' symlink, '3'/'4' devices, '5' dir, '6' FIFO... */
  type?: string;
  data?: Buffer | string;
  linkname?: string;
  /** Written as a pax `x` header before the member. */
  pax?: Record<string, string>;
  /** Written as a GNU `L` long-name header before the member (the header keeps `name`). */
  longName?: string;
  /** Adds this to the computed checksum. */
  checksumDelta?: number;
}

export interface TarOptions {
  /** Zero blocks at the end (GNU tar writes 2, then pads to a 10240-byte record). */
  endBlocks?: number;
  /** Pad the whole stream to a multiple of this many bytes (default 10240, as GNU tar). */
  record?: number;
  /** Bytes appended after everything. */
  trailer?: Buffer;
  /** pax `g` records written first. */
  global?: Record<string, string>;
}

function field(block: Buffer, offset: number, length: number, value: string): void {
  block.write(value, offset, Math.min(length, Buffer.byteLength(value)), 'utf8');
}

function octalField(value: number, length: number): string {
  return `${value.toString(8).padStart(length - 1, '0')}\0`;
}

export function tarHeader(
  name: string,
  type: string,
  size: number,
  options: { linkname?: string; checksumDelta?: number } = {},
): Buffer {
  const block = Buffer.alloc(BLOCK);
  field(block, 0, 100, name);
  field(block, 100, 8, octalField(0o644, 8));
  field(block, 108, 8, octalField(0, 8));
  field(block, 116, 8, octalField(0, 8));
  field(block, 124, 12, octalField(size, 12));
  field(block, 136, 12, octalField(1_700_000_000, 12));
  block.write(type, 156, 1, 'latin1');
  field(block, 157, 100, options.linkname ?? '');
  block.write('ustar\u000000', 257, 8, 'latin1');
  field(block, 265, 32, 'root');
  field(block, 297, 32, 'root');
  field(block, 329, 8, octalField(0, 8));
  field(block, 337, 8, octalField(0, 8));
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  sum += options.checksumDelta ?? 0;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

function padded(data: Buffer): Buffer {
  const rest = data.length % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)]);
}

/** pax records `<len> key=value\n`, where len counts the whole record. */
export function paxRecords(records: Record<string, string>): Buffer {
  const lines = Object.entries(records).map(([key, value]) => {
    const body = ` ${key}=${value}\n`;
    let length = Buffer.byteLength(body) + 1;
    while (String(length).length + Buffer.byteLength(body) !== length) length++;
    return `${length}${body}`;
  });
  return Buffer.from(lines.join(''));
}

function entry(name: string, type: string, data: Buffer, member: Partial<TarMember> = {}): Buffer {
  return Buffer.concat([
    tarHeader(name, type, data.length, {
      ...(member.linkname !== undefined && { linkname: member.linkname }),
      ...(member.checksumDelta !== undefined && { checksumDelta: member.checksumDelta }),
    }),
    padded(data),
  ]);
}

export function tar(members: TarMember[], options: TarOptions = {}): Buffer {
  const parts: Buffer[] = [];
  if (options.global) parts.push(entry('pax_global_header', 'g', paxRecords(options.global)));
  for (const member of members) {
    if (member.pax) {
      parts.push(entry(`PaxHeaders/${member.name.slice(-80)}`, 'x', paxRecords(member.pax)));
    }
    if (member.longName !== undefined) {
      parts.push(entry('././@LongLink', 'L', Buffer.from(`${member.longName}\0`)));
    }
    const data = Buffer.from(member.data ?? '');
    parts.push(entry(member.name, member.type ?? '0', data, member));
  }
  parts.push(Buffer.alloc(BLOCK * (options.endBlocks ?? 2)));
  let stream = Buffer.concat(parts);
  const record = options.record ?? 10240;
  if (stream.length % record !== 0) {
    stream = Buffer.concat([stream, Buffer.alloc(record - (stream.length % record))]);
  }
  return options.trailer ? Buffer.concat([stream, options.trailer]) : stream;
}

export const zstd = (data: Buffer): Buffer => zstdCompressSync(data);
export const gzip = (data: Buffer): Buffer => gzipSync(data);
