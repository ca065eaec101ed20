// Reads the one file cdse-auth keeps in an Actions cache archive, in memory, without tar.
//
// An entry is found by key prefix, and anyone who can write to the cache can plant one under the
// same prefix: the archive is hostile until AES-GCM has opened the file it holds. So it is never
// unpacked to disk (`tar -P` would write absolute paths, `..`, links and devices); instead this
// accepts exactly what `@actions/cache` makes of one file, GNU `tar --posix` through zstd or gzip,
// and calls anything else tampered.
import { constants, gunzipSync, zstdDecompressSync } from 'node:zlib';

/** Why an archive is not one cdse-auth wrote. Never holds text taken from the archive. */
export interface Tampered {
  tampered: string;
}

/** A sealed token set is a few kB; the tar around it ~10 kB. More than this is not ours. */
export const MAX_ARCHIVE_BYTES = 1 << 20;

const BLOCK = 512;
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
// zstd at the levels @actions/cache uses (3, no --long) needs a window of at most 8 MiB; a
// frame asking for more would only make the decoder allocate it.
const ZSTD_WINDOW_LOG_MAX = 23;

const REGULAR = new Set(['0', '\0']);
const KIND: Record<string, string> = {
  '1': 'a hard link',
  '2': 'a symbolic link',
  '3': 'a character device',
  '4': 'a block device',
  '5': 'a directory',
  '6': 'a FIFO',
  '7': 'a contiguous file',
  K: 'a long link name',
  S: 'a sparse file',
  V: 'a volume label',
};

/**
 * The bytes of the archive's single member `memberPath` (a relative path with `/`), or why the
 * archive is not one `@actions/cache` made of that one file.
 */
export function extractSealedMember(archive: Buffer, memberPath: string): Buffer | Tampered {
  const tar = decompress(archive);
  if ('tampered' in tar) return tar;
  return singleMember(tar.data, memberPath);
}

function decompress(archive: Buffer): { data: Buffer } | Tampered {
  if (archive.length > MAX_ARCHIVE_BYTES) return { tampered: 'the archive is too large' };
  const zstd = archive.subarray(0, 4).equals(ZSTD_MAGIC);
  if (!zstd && !archive.subarray(0, 2).equals(GZIP_MAGIC)) {
    return { tampered: 'not a zstd or gzip archive' };
  }
  try {
    const data = zstd
      ? zstdDecompressSync(archive, {
          maxOutputLength: MAX_ARCHIVE_BYTES,
          params: { [constants.ZSTD_d_windowLogMax]: ZSTD_WINDOW_LOG_MAX },
        })
      : gunzipSync(archive, { maxOutputLength: MAX_ARCHIVE_BYTES });
    return { data };
  } catch (error) {
    const tooLarge = (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
    return { tampered: tooLarge ? 'it unpacks to too many bytes' : 'it does not decompress' };
  }
}

interface Member {
  name: string;
  type: string;
  data: Buffer;
}

function singleMember(tar: Buffer, memberPath: string): Buffer | Tampered {
  const members: Member[] = [];
  const parsed = parseTar(tar, (member) => {
    members.push(member);
    return members.length > 1 ? 'more than one member' : undefined;
  });
  if (parsed) return { tampered: parsed };
  const [member] = members;
  if (!member) return { tampered: 'no member' };
  if (!REGULAR.has(member.type)) {
    return { tampered: `a member is ${KIND[member.type] ?? 'of an unknown type'}` };
  }
  const name = normalise(member.name);
  if (typeof name !== 'string') return name;
  if (name !== memberPath) return { tampered: 'an unexpected member' };
  return member.data;
}

/** `a/./b` and `./a/b` as `a/b`; absolute, `..`, backslash and drive-letter names are refused. */
function normalise(name: string): string | Tampered {
  if (name.startsWith('/')) return { tampered: 'a member with an absolute path' };
  if (/^[A-Za-z]:/.test(name) || name.includes('\\')) {
    return { tampered: 'a member with a Windows path' };
  }
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { tampered: 'a member with `..` in its path' };
  return parts.join('/');
}

/**
 * Walks a POSIX/GNU tar stream, calling `onMember` for each entry after applying pax (`x`, `g`)
 * and GNU long-name (`L`) headers. Answers why the stream is malformed, or undefined.
 */
function parseTar(tar: Buffer, onMember: (m: Member) => string | undefined): string | undefined {
  if (tar.length % BLOCK !== 0) return 'a truncated tar stream';
  const global: Record<string, string> = {};
  let local: Record<string, string> = {};
  let longName: string | undefined;
  let offset = 0;
  while (true) {
    if (offset + BLOCK > tar.length) return 'a tar stream without its end marker';
    const header = tar.subarray(offset, offset + BLOCK);
    if (isZero(header)) {
      // The end: two zero blocks, then only the zero padding GNU tar adds up to its record size.
      if (offset + 2 * BLOCK > tar.length) return 'a tar stream without its end marker';
      if (!isZero(tar.subarray(offset))) return 'data after the end of the tar stream';
      if (Object.keys(local).length > 0 || longName !== undefined) {
        return 'an extended header without a member';
      }
      return undefined;
    }
    const fields = readHeader(header);
    if (typeof fields === 'string') return fields;
    // A pax `size` overrides the size of the member that follows, not of the header itself.
    const extension = fields.type === 'x' || fields.type === 'g' || fields.type === 'L';
    const paxSize = extension ? undefined : (local.size ?? global.size);
    const size = paxSize === undefined ? fields.size : strictDecimal(paxSize);
    if (size === undefined) return 'a malformed size';
    const start = offset + BLOCK;
    const end = start + size;
    if (end > tar.length) return 'a truncated member';
    const data = tar.subarray(start, end);
    offset = start + Math.ceil(size / BLOCK) * BLOCK;

    if (fields.type === 'x' || fields.type === 'g') {
      if (fields.type === 'x' && Object.keys(local).length > 0) return 'two extended headers';
      const records = parsePax(data);
      if (typeof records === 'string') return records;
      if (Object.keys(records).some((k) => k.startsWith('GNU.sparse'))) return 'a sparse file';
      Object.assign(fields.type === 'x' ? local : global, records);
      continue;
    }
    if (fields.type === 'L') {
      if (longName !== undefined) return 'two long-name headers';
      longName = cString(data);
      continue;
    }
    const name = local.path ?? longName ?? global.path ?? fields.name;
    local = {};
    longName = undefined;
    if (name.includes('\0')) return 'a member name with a NUL byte';
    const stop = onMember({ name, type: fields.type, data });
    if (stop) return stop;
  }
}

function readHeader(block: Buffer): { name: string; type: string; size: number } | string {
  // POSIX ustar is "ustar\0" "00"; old GNU tar writes "ustar  \0". Nothing else is tar we made.
  const magic = block.toString('latin1', 257, 265);
  const ustar = magic === 'ustar\u000000';
  if (!ustar && magic !== 'ustar  \0') return 'not a ustar header';
  const checksum = octal(block.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
  if (checksum !== sum) return 'a header checksum mismatch';
  const size = octal(block.subarray(124, 136));
  if (size === undefined) return 'a malformed size';
  const base = cString(block.subarray(0, 100));
  const prefix = ustar ? cString(block.subarray(345, 500)) : '';
  return {
    name: prefix ? `${prefix}/${base}` : base,
    type: String.fromCharCode(block[156] as number),
    size,
  };
}

/** An octal field: optional leading spaces, digits, then only NUL or space. No base-256. */
function octal(field: Buffer): number | undefined {
  const match = /^ *([0-7]+)[ \0]*$/.exec(field.toString('latin1'));
  return match ? Number.parseInt(match[1] as string, 8) : undefined;
}

function strictDecimal(text: string): number | undefined {
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.toString('utf8', 0, end < 0 ? bytes.length : end);
}

/** pax records: `<length> <key>=<value>\n`, the length counting the whole record. */
function parsePax(data: Buffer): Record<string, string> | string {
  const records: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = space < 0 ? undefined : strictDecimal(data.toString('latin1', at, space));
    if (length === undefined || length <= 0 || at + length > data.length) {
      return 'a malformed pax header';
    }
    const record = data.subarray(space + 1, at + length);
    const equals = record.indexOf(0x3d);
    if (equals <= 0 || record[record.length - 1] !== 0x0a) return 'a malformed pax header';
    records[record.toString('utf8', 0, equals)] = record.toString(
      'utf8',
      equals + 1,
      record.length - 1,
    );
    at += length;
  }
  return records;
}

function isZero(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte !== 0) return false;
  return true;
}
