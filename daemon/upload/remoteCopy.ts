import path from 'node:path';
import { StoreError } from '../errors.js';
import { signatureFileName } from '../seal/checksumFile.js';
import type { PutResult, SealedFile, SealedRecording } from './StorageTarget.js';

/** A file on a remote file system as listed there. */
export interface RemoteFile {
  readonly size: number;
  readonly writeTime: Date;
}

/** The few file operations a copy needs from a remote file system (SFTP, SMB). Paths are posix, relative to where the session starts. */
export interface RemoteTree {
  /** The files (not directories) in `dir`, by name; empty when it does not exist. */
  list(dir: string): Promise<Map<string, RemoteFile>>;
  /** Make `dir` and its missing parents. */
  mkdirs(dir: string): Promise<void>;
  /** Make `remoteDir` (its parent exists) and write `files` from `localDir` into it. */
  upload(localDir: string, files: readonly SealedFile[], remoteDir: string): Promise<void>;
  /** Remove `dir` and everything in it; nothing when it does not exist. */
  removeTree(dir: string): Promise<void>;
  /** Rename a directory; `to` does not exist. */
  rename(from: string, to: string): Promise<void>;
  /**
   * Uploads resume (OneDrive's upload sessions): the staging directory an
   * attempt leaves is kept, not made anew, so the next one carries on where it stopped.
   */
  readonly resumable?: boolean;
}

/** When the copy at `dest` became whole (its signature file, written last), or null if any file is missing or of another size. */
export async function remoteCompletedAt(tree: RemoteTree, dest: string, files: readonly SealedFile[], rec: SealedRecording): Promise<Date | null> {
  const there = await tree.list(dest);
  for (const f of files) if (there.get(f.name)?.size !== f.size) return null;
  return there.get(signatureFileName(rec.recordingId))?.writeTime ?? null;
}

/**
 * Copy a sealed recording to `dest` on a remote file system so that the
 * server never shows an incomplete copy: into `<dest>.partial`,
 * every size checked there, renamed into place, checked again. A whole copy
 * already at `dest` (an earlier attempt got as far as the rename) is kept;
 * a half one someone left there is replaced. Idempotent, as targets must be.
 */
export async function copyToRemote(
  tree: RemoteTree,
  target: string,
  rec: SealedRecording,
  files: readonly SealedFile[],
  dest: string,
): Promise<PutResult> {
  const done = await remoteCompletedAt(tree, dest, files, rec);
  if (done) return { completedAt: done, bytesSent: 0 };
  await tree.mkdirs(path.posix.dirname(dest));
  // One staging name per copy (jobs are claimed: no two attempts run at once), so what a cut connection could not clean up is found and replaced.
  const staging = `${dest}.partial`;
  if (!tree.resumable) await tree.removeTree(staging);
  try {
    await tree.upload(rec.dir, files, staging);
    const there = await tree.list(staging);
    for (const f of files) {
      const size = there.get(f.name)?.size;
      if (size !== f.size)
        throw new StoreError('COPY_MISMATCH', `${f.name} is ${size ?? 'missing'} bytes on ${target}, ${f.size} here`, { target, file: f.name });
    }
    await tree.removeTree(dest);
    await tree.rename(staging, dest);
  } catch (err) {
    if (!tree.resumable) await tree.removeTree(staging).catch(() => undefined);
    throw err;
  }
  const at = await remoteCompletedAt(tree, dest, files, rec);
  if (!at) throw new StoreError('COPY_MISMATCH', `the copy of ${rec.recordingId} on ${target} is not whole after the rename`, { target });
  return { completedAt: at, bytesSent: files.reduce((n, f) => n + f.size, 0) };
}
