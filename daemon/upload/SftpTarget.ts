import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { firstLine } from '../keys/passphrase.js';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Client, type ConnectConfig, type SFTPWrapper, type Stats } from 'ssh2';
import type { SftpTargetConfig } from '../config/Config.js';
import { StoreError } from '../errors.js';
import { signatureFileName } from '../seal/checksumFile.js';
import { expandTemplate } from './pathTemplate.js';
import { sealedFiles, type SealedFile, type SealedRecording, type StorageTarget } from './StorageTarget.js';

/** SFTP status codes (draft-ietf-secsh-filexfer-02 §7) the copy tells apart. */
const NO_SUCH_FILE = 2;

/** The fingerprint OpenSSH prints for a host key (`ssh-keygen -lf`): SHA256, base64 without padding. */
export function hostKeyFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/**
 * An SSH server as a storage target (ssh2, pure JavaScript). The host key
 * is pinned by fingerprint: an unknown or changed key refuses the upload and
 * says which key it saw. A copy is streamed into `<dest>.partial-<random>`
 * (never `fastPut`, which its own documentation says can truncate), every
 * file's size checked on the server, the directory renamed into place
 * (OpenSSH's posix-rename where offered), and the result checked again:
 * the server never shows a recording that is incomplete. Directories the
 * server lacks are made one level at a time.
 */
export class SftpTarget implements StorageTarget {
  constructor(
    readonly name: string,
    private readonly config: SftpTargetConfig,
  ) {}

  async put(rec: SealedRecording): Promise<Date> {
    const files = await sealedFiles(rec);
    return this.#session(async (sftp) => {
      const dest = this.#dest(rec);
      const done = await completedAt(sftp, dest, files, rec);
      if (done) return done; // an earlier attempt got as far as the rename
      await mkdirs(sftp, path.posix.dirname(dest));
      const staging = `${dest}.partial-${randomBytes(4).toString('hex')}`;
      await call<void>((cb) => sftp.mkdir(staging, { mode: 0o750 }, cb));
      try {
        for (const f of files) {
          await pipeline(createReadStream(path.join(rec.dir, f.name)), sftp.createWriteStream(path.posix.join(staging, f.name), { mode: 0o640 }));
          const there = await statOrNull(sftp, path.posix.join(staging, f.name));
          if (!there || there.size !== f.size)
            throw new StoreError('COPY_MISMATCH', `${f.name} is ${there?.size ?? 'missing'} bytes on ${this.name}, ${f.size} here`, {
              target: this.name,
              file: f.name,
            });
        }
        // A half-made copy left at dest by someone else would block the rename: it never counts as a copy (completedAt said so).
        if (await statOrNull(sftp, dest)) await removeTree(sftp, dest);
        await rename(sftp, staging, dest);
      } catch (err) {
        await removeTree(sftp, staging).catch(() => undefined);
        throw err;
      }
      const at = await completedAt(sftp, dest, files, rec);
      if (!at)
        throw new StoreError('COPY_MISMATCH', `the copy of ${rec.recordingId} on ${this.name} is not whole after the rename`, { target: this.name });
      return at;
    });
  }

  async find(rec: SealedRecording): Promise<Date | undefined> {
    const files = await sealedFiles(rec);
    return this.#session(async (sftp) => (await completedAt(sftp, this.#dest(rec), files, rec)) ?? undefined);
  }

  async remove(rec: SealedRecording): Promise<void> {
    await this.#session(async (sftp) => {
      const dest = this.#dest(rec);
      if (await statOrNull(sftp, dest)) await removeTree(sftp, dest);
    });
  }

  #dest(rec: SealedRecording): string {
    return path.posix.join(this.config.path, expandTemplate(this.config.template, rec.fields, this.config.timeZone, 'posix'));
  }

  /** One connection and SFTP session for `body`, closed after it; every step bounded by timeoutSeconds. */
  async #session<T>(body: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
    const c = this.config;
    const auth: Partial<ConnectConfig> = c.privateKeyFile
      ? { privateKey: await readFile(c.privateKeyFile) }
      : { password: await firstLine(c.passwordFile!, `password file of storage target ${this.name}`) };
    const conn = new Client();
    let seen: string | null = null;
    const timeoutMs = c.timeoutSeconds * 1000;
    try {
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => {
        conn.once('error', (err) => reject(seen && seen !== c.hostKey ? hostKeyRefused(this.name, c, seen) : wrap(this.name, err)));
        conn.once('ready', () => conn.sftp((err, s) => (err ? reject(wrap(this.name, err)) : resolve(s))));
        conn.connect({
          host: c.host,
          port: c.port,
          username: c.username,
          readyTimeout: timeoutMs,
          ...auth,
          hostVerifier: (key: Buffer) => {
            seen = hostKeyFingerprint(key);
            return seen === c.hostKey;
          },
        });
      });
      return await withTimeout(body(sftp), timeoutMs * 4, this.name);
    } finally {
      conn.end();
    }
  }
}

/** When the copy at `dest` became whole (its signature file, written last), or null if any file is missing or of another size. */
async function completedAt(sftp: SFTPWrapper, dest: string, files: readonly SealedFile[], rec: SealedRecording): Promise<Date | null> {
  for (const f of files) {
    const there = await statOrNull(sftp, path.posix.join(dest, f.name));
    if (!there || there.size !== f.size) return null;
  }
  const sig = await statOrNull(sftp, path.posix.join(dest, signatureFileName(rec.recordingId)));
  return sig ? new Date(sig.mtime * 1000) : null;
}

/** mkdir -p, one level at a time (SFTP has no recursive mkdir). */
async function mkdirs(sftp: SFTPWrapper, dir: string): Promise<void> {
  if (dir === '.' || dir === '/' || dir === '') return;
  if (await statOrNull(sftp, dir)) return;
  await mkdirs(sftp, path.posix.dirname(dir));
  await call<void>((cb) => sftp.mkdir(dir, { mode: 0o750 }, cb)).catch(async (err: unknown) => {
    // Made meanwhile by a parallel copy: fine.
    if (!(await statOrNull(sftp, dir))) throw err;
  });
}

async function removeTree(sftp: SFTPWrapper, dir: string): Promise<void> {
  const entries = await call<{ filename: string; attrs: Stats }[]>((cb) => sftp.readdir(dir, cb));
  for (const e of entries) {
    const p = path.posix.join(dir, e.filename);
    if (e.attrs.isDirectory()) await removeTree(sftp, p);
    else await call<void>((cb) => sftp.unlink(p, cb));
  }
  await call<void>((cb) => sftp.rmdir(dir, cb));
}

async function rename(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
  // posix-rename@openssh.com replaces atomically; plain SFTP rename refuses an existing target, which we removed.
  const posix = (sftp as unknown as { ext_openssh_rename?: (a: string, b: string, cb: (err?: Error | null) => void) => void }).ext_openssh_rename;
  await call<void>((cb) => (posix ? posix.call(sftp, from, to, cb) : sftp.rename(from, to, cb))).catch(() =>
    call<void>((cb) => sftp.rename(from, to, cb)),
  );
}

async function statOrNull(sftp: SFTPWrapper, p: string): Promise<Stats | null> {
  return call<Stats>((cb) => sftp.stat(p, cb)).catch((err: { code?: number }) => {
    if (err.code === NO_SUCH_FILE) return null;
    throw err;
  });
}

function call<T>(fn: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T))));
}

function withTimeout<T>(p: Promise<T>, ms: number, target: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new StoreError('TARGET_TIMEOUT', `storage target ${target} did not finish within ${ms / 1000} s`, { target })),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function hostKeyRefused(target: string, c: SftpTargetConfig, seen: string): StoreError {
  return new StoreError(
    'HOST_KEY_MISMATCH',
    `storage target ${target}: ${c.host}:${c.port} offered host key ${seen}, not the pinned ${c.hostKey}; upload refused`,
    {
      target,
      seen,
      pinned: c.hostKey,
    },
  );
}

function wrap(target: string, err: Error): StoreError {
  return new StoreError('TARGET_UNREACHABLE', `storage target ${target}: ${err.message}`, { target }, { cause: err });
}
