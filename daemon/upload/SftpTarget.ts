import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { firstLine } from '../keys/passphrase.js';
import path from 'node:path';
import { Client, type ConnectConfig, type SFTPWrapper, type Stats } from 'ssh2';
import type { SftpTargetConfig } from '../config/Config.js';
import { StoreError } from '../errors.js';
import { expandTemplate } from './pathTemplate.js';
import { copyToRemote, remoteCompletedAt, type RemoteFile, type RemoteTree } from './remoteCopy.js';
import {
  NOTHING_KEPT,
  sealedFiles,
  type PutResult,
  type RemoveOutcome,
  type SealedFile,
  type SealedRecording,
  type StorageTarget,
} from './StorageTarget.js';

/** Bytes per SFTP WRITE (OpenSSH takes up to 255 KiB; ssh2 splits to its packet size) and how many are in flight at once. */
const WRITE_CHUNK = 128 * 1024;
const WRITE_WINDOW = 64;

/** SFTP status codes (draft-ietf-secsh-filexfer-02 §7) the copy tells apart. */
const NO_SUCH_FILE = 2;

/** The fingerprint OpenSSH prints for a host key (`ssh-keygen -lf`): SHA256, base64 without padding. */
export function hostKeyFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/**
 * An SSH server as a storage target (ssh2, pure JavaScript). The host key
 * is pinned by fingerprint: an unknown or changed key refuses the upload and
 * says which key it saw. Files are written with many requests in flight,
 * each one's status checked (never `fastPut`, which its own documentation
 * says can truncate), by the copy protocol of remoteCopy.ts;
 * directories the server lacks are made one level at a time.
 */
export class SftpTarget implements StorageTarget {
  constructor(
    readonly name: string,
    private readonly config: SftpTargetConfig,
  ) {}

  async put(rec: SealedRecording): Promise<PutResult> {
    const files = await sealedFiles(rec);
    return this.#session((sftp) => copyToRemote(new SftpTree(sftp), this.name, rec, files, this.#dest(rec)));
  }

  async find(rec: SealedRecording): Promise<Date | undefined> {
    const files = await sealedFiles(rec);
    return this.#session(async (sftp) => (await remoteCompletedAt(new SftpTree(sftp), this.#dest(rec), files, rec)) ?? undefined);
  }

  async remove(rec: SealedRecording): Promise<RemoveOutcome> {
    await this.#session((sftp) => new SftpTree(sftp).removeTree(this.#dest(rec)));
    return NOTHING_KEPT;
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
        // on, not once: ssh2 can emit 'error' more than once for one connection (a socket error, then "Connection lost before
        // handshake"), and an 'error' without a listener would end the daemon.
        conn.on('error', (err) => reject(seen && seen !== c.hostKey ? hostKeyRefused(this.name, c, seen) : wrap(this.name, err)));
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
      // A connection that dies mid-copy leaves ssh2's pending SFTP requests unanswered: fail the attempt at once instead.
      const lost = new Promise<never>((_, reject) =>
        conn.once('close', () =>
          reject(new StoreError('TARGET_UNREACHABLE', `storage target ${this.name}: the connection closed mid-copy`, { target: this.name })),
        ),
      );
      lost.catch(() => undefined);
      return await withTimeout(Promise.race([body(sftp), lost]), timeoutMs * 4, this.name);
    } finally {
      conn.end();
    }
  }
}

/** An SFTP session's file operations, for the copy protocol. */
class SftpTree implements RemoteTree {
  constructor(private readonly sftp: SFTPWrapper) {}

  async list(dir: string): Promise<Map<string, RemoteFile>> {
    const entries = await call<{ filename: string; attrs: Stats }[]>((cb) => this.sftp.readdir(dir, cb)).catch((err: { code?: number }) => {
      if (err.code === NO_SUCH_FILE) return [];
      throw err;
    });
    return new Map(
      entries.filter((e) => e.attrs.isFile()).map((e) => [e.filename, { size: e.attrs.size, writeTime: new Date(e.attrs.mtime * 1000) }] as const),
    );
  }

  /** mkdir -p, one level at a time (SFTP has no recursive mkdir). */
  async mkdirs(dir: string): Promise<void> {
    if (dir === '.' || dir === '/' || dir === '') return;
    if (await this.#exists(dir)) return;
    await this.mkdirs(path.posix.dirname(dir));
    await call<void>((cb) => this.sftp.mkdir(dir, { mode: 0o750 }, cb)).catch(async (err: unknown) => {
      // Made meanwhile by a parallel copy: fine.
      if (!(await this.#exists(dir))) throw err;
    });
  }

  async upload(localDir: string, files: readonly SealedFile[], remoteDir: string): Promise<void> {
    await call<void>((cb) => this.sftp.mkdir(remoteDir, { mode: 0o750 }, cb));
    for (const f of files) await this.#writeFile(path.join(localDir, f.name), path.posix.join(remoteDir, f.name));
  }

  /**
   * One file, with WRITE_WINDOW requests in flight: ssh2's write stream waits
   * for each 32 KiB write's status before sending the next, which on loopback
   * made 2 MB/s against scp's 177 on loopback, this 30–35 (native-free-bench/uploads). `fastPut`
   * pipelines too, but its own documentation warns it can truncate with some
   * servers; here every write's status is checked, and the copy protocol
   * checks the size on the server after.
   */
  async #writeFile(local: string, remote: string): Promise<void> {
    const handle = await call<Buffer>((cb) => this.sftp.open(remote, 'w', { mode: 0o640 }, cb));
    const fh = await open(local, 'r');
    try {
      const inFlight = new Set<Promise<void>>();
      let failure: unknown = null;
      for (let pos = 0; ; ) {
        const buf = Buffer.allocUnsafe(WRITE_CHUNK);
        const { bytesRead } = await fh.read(buf, 0, WRITE_CHUNK, pos);
        if (bytesRead === 0) break;
        const at = pos;
        const p = call<void>((cb) => this.sftp.write(handle, buf, 0, bytesRead, at, cb)).then(
          () => void inFlight.delete(p),
          (err: unknown) => {
            inFlight.delete(p);
            failure ??= err;
          },
        );
        inFlight.add(p);
        pos += bytesRead;
        if (inFlight.size >= WRITE_WINDOW) await Promise.race(inFlight);
        if (failure) break;
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
    } catch (err) {
      await call<void>((cb) => this.sftp.close(handle, cb)).catch(() => undefined);
      throw err;
    } finally {
      await fh.close();
    }
    await call<void>((cb) => this.sftp.close(handle, cb));
  }

  async removeTree(dir: string): Promise<void> {
    if (!(await this.#exists(dir))) return;
    const entries = await call<{ filename: string; attrs: Stats }[]>((cb) => this.sftp.readdir(dir, cb));
    for (const e of entries) {
      const p = path.posix.join(dir, e.filename);
      if (e.attrs.isDirectory()) await this.removeTree(p);
      else await call<void>((cb) => this.sftp.unlink(p, cb));
    }
    await call<void>((cb) => this.sftp.rmdir(dir, cb));
  }

  async rename(from: string, to: string): Promise<void> {
    // posix-rename@openssh.com where offered, plain SFTP rename otherwise (the target does not exist).
    const sftp = this.sftp as unknown as { ext_openssh_rename?: (a: string, b: string, cb: (err?: Error | null) => void) => void };
    const posix = sftp.ext_openssh_rename;
    await call<void>((cb) => (posix ? posix.call(this.sftp, from, to, cb) : this.sftp.rename(from, to, cb))).catch(() =>
      call<void>((cb) => this.sftp.rename(from, to, cb)),
    );
  }

  async #exists(p: string): Promise<boolean> {
    return call<Stats>((cb) => this.sftp.stat(p, cb)).then(
      () => true,
      (err: { code?: number }) => {
        if (err.code === NO_SUCH_FILE) return false;
        throw err;
      },
    );
  }
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
