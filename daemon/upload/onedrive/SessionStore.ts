import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** An upload session begun for a file: its URL (a credential: anyone holding it may write the file) and when it expires. */
export interface StoredSession {
  readonly uploadUrl: string;
  readonly expiresAt: string;
  readonly size: number;
}

/**
 * Upload sessions in progress, by remote path, in a 0600 file in the data
 * dir (directory 0700): an upload cut by a crash or restart resumes from
 * what the service says it has (`nextExpectedRanges`) instead of starting
 * over. Writes are atomic; one writer (the target) at a time.
 */
export class SessionStore {
  #sessions: Map<string, StoredSession> | null = null;
  #chain: Promise<void> = Promise.resolve();

  constructor(private readonly file: string) {}

  async get(remotePath: string): Promise<StoredSession | undefined> {
    const s = (await this.#load()).get(remotePath);
    return s && Date.parse(s.expiresAt) > Date.now() ? s : undefined;
  }

  async put(remotePath: string, session: StoredSession): Promise<void> {
    (await this.#load()).set(remotePath, session);
    await this.#save();
  }

  async delete(remotePath: string): Promise<void> {
    if ((await this.#load()).delete(remotePath)) await this.#save();
  }

  async #load(): Promise<Map<string, StoredSession>> {
    if (this.#sessions) return this.#sessions;
    const text = await readFile(this.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '{}';
      throw err;
    });
    let parsed: Record<string, StoredSession> = {};
    try {
      parsed = JSON.parse(text) as Record<string, StoredSession>;
    } catch {
      // A torn or foreign file: the sessions are only a shortcut, uploads start over.
    }
    this.#sessions ??= new Map(Object.entries(parsed).filter(([, s]) => Date.parse(s.expiresAt) > Date.now()));
    return this.#sessions;
  }

  #save(): Promise<void> {
    const next = this.#chain.then(async () => {
      await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.tmp`;
      await writeFile(tmp, JSON.stringify(Object.fromEntries(this.#sessions ?? [])), { mode: 0o600 });
      await rename(tmp, this.file);
    });
    this.#chain = next.catch(() => undefined);
    return next;
  }
}
