import { randomUUID } from 'node:crypto';
import { lstat, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import * as z from 'zod/mini';
import { type FileLockOptions, withFileLock } from './file-lock.ts';
import { TokenStore } from './store.ts';
import { TokenSet, TokenSetSchema } from './token-set.ts';

/** What travels with a login besides its tokens (a front end's settings); not secret. */
export type FileMeta = Record<string, unknown>;

const FileFormat = z.object({
  version: z.literal(1),
  tokenSet: TokenSetSchema,
  meta: z.optional(z.record(z.string(), z.unknown())),
});

// Mode bits mean nothing to Windows ACLs; there the file is private by living in the user's profile.
const posix = process.platform !== 'win32';

export interface FileTokenStoreOptions {
  /** Where a corrupt, foreign or exposed file is reported. Default: `process.emitWarning`. */
  onWarning?: (message: string) => void;
  /** Written with every save (e.g. the settings later processes should use). */
  meta?: FileMeta;
  /** How long a renewal waits for another process's, and when a held lock counts as stale. */
  lock?: FileLockOptions;
}

/**
 * Persists a token set as JSON readable by the owner only, so a login survives across processes.
 *
 * The file is created with mode 0600 from its first byte (temp file + rename, never
 * write-then-chmod) in a parent created with mode 0700. A file this store cannot trust (corrupt,
 * another user's, readable by others) loads as empty with a warning instead of throwing.
 * Processes that share the file renew one at a time (`exclusive`: a lock file beside it).
 */
export class FileTokenStore extends TokenStore {
  readonly path: string;
  /** The file's `meta`: as given, then as last loaded; written with every save. */
  meta: FileMeta | undefined;
  readonly #warn: (message: string) => void;
  readonly #lock: FileLockOptions;

  constructor(path: string, options: FileTokenStoreOptions = {}) {
    super();
    this.path = path;
    this.meta = options.meta;
    this.#warn = options.onWarning ?? ((m) => process.emitWarning(m, 'CdseAuthWarning'));
    this.#lock = options.lock ?? {};
  }

  override exclusive<T>(work: () => Promise<T>): Promise<T> {
    return withFileLock(this.path, work, this.#lock);
  }

  async load(): Promise<TokenSet | undefined> {
    let text: string;
    try {
      const stat = await lstat(this.path);
      if (!stat.isFile()) return this.#ignore('it is not a regular file');
      if (posix && process.getuid && stat.uid !== process.getuid()) {
        return this.#ignore('it belongs to another user');
      }
      if (posix && (stat.mode & 0o077) !== 0) {
        return this.#ignore('other users can read it (expected mode 0600)');
      }
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      return this.#ignore(`it cannot be read (${(error as NodeJS.ErrnoException).code})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return this.#ignore('it is not JSON');
    }
    const parsed = FileFormat.safeParse(json);
    if (!parsed.success) return this.#ignore('it is not a cdse-auth credentials file');
    this.meta = parsed.data.meta ?? this.meta;
    return new TokenSet(parsed.data.tokenSet);
  }

  async save(tokenSet: TokenSet): Promise<void> {
    await this.#write({ version: 1, tokenSet, ...(this.meta && { meta: this.meta }) });
  }

  /** Deletes the file; `meta` stays in memory and comes back with the next save. */
  async clear(): Promise<void> {
    await rm(this.path, { force: true });
  }

  async #write(content: z.input<typeof FileFormat>): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = join(dir, `.${basename(this.path)}.${randomUUID()}.tmp`);
    // 'wx' refuses to follow a planted symlink; mode 0600 applies at creation.
    const file = await open(temp, 'wx', 0o600);
    try {
      await file.chmod(0o600); // a umask can only remove bits, but an odd one must not matter
      await file.writeFile(`${JSON.stringify(content, null, 2)}\n`);
      await file.sync();
      await file.close();
      await rename(temp, this.path);
    } catch (error) {
      await file.close().catch(() => {});
      await rm(temp, { force: true });
      throw error;
    }
  }

  #ignore(reason: string): undefined {
    this.#warn(`Ignoring the credentials file ${this.path}: ${reason}.`);
    return undefined;
  }
}
