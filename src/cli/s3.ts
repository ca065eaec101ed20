// `cdse-auth s3`: eodata S3 keys from the login. The pair is created once and kept in the
// credentials file (0600) beside the tokens, so that every later call prints the same pair and
// `logout` (or the action's post step) can delete it; ids other than that pair are deleted only
// when named.
import { ConfigurationError, checkEndpointUrl, type TokenManager } from '../auth/index.ts';
import { oneLine } from '../auth/redact.ts';
import type { SessionFile } from '../front/session-file.ts';
import { s3Dispatcher } from '../s3/dispatcher.ts';
import { DEFAULT_S3_ENDPOINT, exportLines, jsonForm, s3Environment } from '../s3/environment.ts';
import {
  createKeyPair,
  DEFAULT_S3_KEYS_URL,
  deleteKeyPair,
  type KeysOptions,
  listKeyPairs,
} from '../s3/keys.ts';
import { pairMasks, pairUsable, type StoredKeyPair, storedPair } from '../s3/pair.ts';
import type { CliDeps, SettingOf } from './main.ts';

export interface S3CommandOptions {
  deps: CliDeps;
  store: SessionFile;
  settingOf: SettingOf;
  /** A manager for the stored session (or a login from the credentials given). */
  sessionManager: () => TokenManager;
  /** Registers a value with the workflow's log masker (in a job only). */
  mask: ((value: string) => void) | undefined;
  /** Seconds per request and attempts, as for the token endpoint. */
  timeout: number | undefined;
  maxAttempts: number | undefined;
}

export class S3Command {
  readonly #options: S3CommandOptions;
  readonly keysUrl: string;
  readonly endpoint: string;

  constructor(options: S3CommandOptions) {
    this.#options = options;
    const { settingOf, store } = options;
    // Flag, then variable, then what the action's step left in the file, then CDSE's.
    const keys = settingOf('s3-keys-url');
    this.keysUrl = keys?.value ?? store.settings.s3KeysUrl ?? DEFAULT_S3_KEYS_URL;
    checkEndpointUrl(this.keysUrl, keys?.source ?? 's3-keys-url');
    this.endpoint =
      settingOf('s3-endpoint')?.value ?? store.settings.s3Endpoint ?? DEFAULT_S3_ENDPOINT;
    checkEndpointUrl(this.endpoint, settingOf('s3-endpoint')?.source ?? 's3-endpoint');
    const stored = store.settings.s3;
    if (stored) this.#maskPair(stored);
  }

  async run(args: string[], flags: { json: boolean; allCreated: boolean }): Promise<number> {
    const [sub, ...rest] = args;
    const extra = (allowed: number) => {
      if (rest.length > allowed) {
        throw new ConfigurationError(`unexpected argument '${rest[allowed]}' after s3 ${sub}.`);
      }
    };
    switch (sub) {
      case undefined:
        return this.print(flags.json);
      case 'list':
        extra(0);
        return this.list(flags.json);
      case 'delete': {
        extra(1);
        const [id] = rest;
        if (id && flags.allCreated) {
          throw new ConfigurationError('s3 delete takes an ID or --all-created, not both.');
        }
        if (id) return this.deleteId(id);
        if (flags.allCreated) return this.deleteCreated({ onLogout: false });
        throw new ConfigurationError(
          's3 delete needs an ID (see `cdse-auth s3 list`) or --all-created (the pair this login created).',
        );
      }
      default:
        throw new ConfigurationError(
          `unknown s3 command '${sub}'. Commands: s3, s3 list, s3 delete.`,
        );
    }
  }

  /** The variables for the login's pair, creating it the first time. */
  async print(json: boolean): Promise<number> {
    const pair = await this.#pair();
    const vars = s3Environment({ ...pair, endpoint: this.endpoint }, this.#options.deps.env);
    const text = json ? jsonForm(vars) : exportLines(vars);
    this.#options.deps.stdout(text.replace(/\n$/, ''));
    return 0;
  }

  async list(json: boolean): Promise<number> {
    const listed = await this.#withToken((token, options) =>
      listKeyPairs(this.keysUrl, token, options),
    );
    const ours = this.#options.store.settings.s3?.accessKeyId;
    const rows = listed.map((key) => ({
      accessKeyId: key.accessKeyId,
      expiresAt: key.expiresAt?.toISOString() ?? null,
      ...(key.enabled !== undefined && { enabled: key.enabled }),
      createdByThisLogin: key.accessKeyId === ours,
    }));
    const { deps } = this.#options;
    if (json) deps.stdout(JSON.stringify(rows, null, 2));
    else {
      for (const row of rows) {
        deps.stdout(
          `${row.accessKeyId}\t${row.expiresAt ?? '-'}${row.createdByThisLogin ? '\tcreated by this login' : ''}`,
        );
      }
      deps.stderr(`cdse-auth: ${rows.length} S3 key pair(s).`);
    }
    return 0;
  }

  async deleteId(id: string): Promise<number> {
    const gone = await this.#withToken((token, options) =>
      deleteKeyPair(this.keysUrl, token, id, options),
    );
    if (this.#options.store.settings.s3?.accessKeyId === id) await this.#forget();
    this.#options.deps.stderr(
      gone
        ? `cdse-auth: deleted S3 key pair ${id}.`
        : `cdse-auth: no S3 key pair ${id} (already deleted, expired, or another user's).`,
    );
    return 0;
  }

  /**
   * Deletes the pair the file records as created by cdse-auth. On logout a failure is a warning:
   * the session must end all the same.
   */
  async deleteCreated({ onLogout }: { onLogout: boolean }): Promise<number> {
    const { deps, store } = this.#options;
    const pair = store.settings.s3;
    if (!pair) {
      deps.stderr('cdse-auth: this login created no S3 key pair; nothing to delete.');
      return 0;
    }
    try {
      const gone = await this.#withToken((token, options) =>
        deleteKeyPair(pair.keysUrl, token, pair.accessKeyId, options),
      );
      await this.#forget();
      deps.stderr(
        gone
          ? 'cdse-auth: deleted the S3 key pair this login created.'
          : 'cdse-auth: the S3 key pair this login created was already gone.',
      );
      return 0;
    } catch (error) {
      if (!onLogout) throw error;
      deps.stderr(
        `cdse-auth: warning: could not delete the S3 key pair (${oneLine((error as Error).message)}); delete it with \`cdse-auth s3 delete ID\`.`,
      );
      return 1;
    }
  }

  async #pair(): Promise<StoredKeyPair> {
    const { store } = this.#options;
    const known = this.#reusable(store.settings.s3);
    if (known) return known;
    // The token first, outside the file's lock: a renewal takes that lock itself.
    let created: StoredKeyPair | undefined;
    await this.#withToken(async (token, options) => {
      const kept = await store.updateSettings(async (current) => {
        // Another process of this login may have made one meanwhile.
        const theirs = this.#reusable(current.s3);
        if (theirs) {
          created = theirs;
          return {};
        }
        created = storedPair(await createKeyPair(this.keysUrl, token, options), this.keysUrl);
        this.#maskPair(created);
        return { s3: created };
      });
      if (!kept) throw new ConfigurationError('No saved login to keep the S3 key pair with.');
    });
    return created as unknown as StoredKeyPair;
  }

  /** The stored pair if it is of this keys manager and lives on; refuses to forget a live one. */
  #reusable(pair: StoredKeyPair | undefined): StoredKeyPair | undefined {
    if (!pair || !pairUsable(pair, Date.now())) return undefined;
    if (pair.keysUrl !== this.keysUrl) {
      throw new ConfigurationError(
        `This login holds an S3 key pair of another keys manager (${new URL(pair.keysUrl).host}): delete it first with \`cdse-auth s3 delete --all-created\`.`,
      );
    }
    return pair;
  }

  async #forget(): Promise<void> {
    await this.#options.store.updateSettings(async () => ({ s3: undefined }));
  }

  async #withToken<T>(work: (token: string, options: KeysOptions) => Promise<T>): Promise<T> {
    const manager = this.#options.sessionManager();
    const dispatcher = s3Dispatcher(this.#options.deps.env);
    try {
      const token = await manager.accessToken();
      const { timeout, maxAttempts } = this.#options;
      return await work(token, {
        dispatcher,
        ...(timeout !== undefined && { timeoutMs: timeout * 1000 }),
        ...(maxAttempts !== undefined && { maxAttempts }),
      });
    } finally {
      await Promise.all([manager.close(), dispatcher.close()]);
    }
  }

  #maskPair(pair: StoredKeyPair): void {
    for (const value of pairMasks(pair)) this.#options.mask?.(value);
  }
}
