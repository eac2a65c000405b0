import { randomBytes } from 'node:crypto';
import { constants, openSync, readSync, rmSync, writevSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * How every staging and temp file is opened: created here and now (never an
 * existing file, which would keep its owner and mode) and never through a
 * symlink (which would send the bytes elsewhere).
 */
export const EXCLUSIVE_CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Our own staging file `file` afresh: a leftover (of a crash, or planted) is removed, not followed, then created exclusively. */
export function openStagingSync(file: string, mode: number): number {
  rmSync(file, { force: true });
  return openSync(file, EXCLUSIVE_CREATE, mode);
}

/**
 * Write-to-temp, fsync, rename, fsync the directory: a reader (or a restart
 * after power loss) sees the old file or the new one, never half of one. The
 * mode is set when the temp file is created, so a secret is never readable by others.
 */
export async function writeFileDurably(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${file}.tmp`;
  await rm(tmp, { force: true });
  const fh = await open(tmp, EXCLUSIVE_CREATE, mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  await syncDir(path.dirname(file));
}

/** Make a rename or create in `dir` survive power loss. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Fill `buf` from `fd` (at `position`, else the current offset) unless the file ends first; returns the bytes read. */
export function readFull(fd: number, buf: Buffer, position: number | null = null): number {
  let got = 0;
  for (let n: number; got < buf.length && (n = readSync(fd, buf, got, buf.length - got, position === null ? null : position + got)) > 0; ) got += n;
  return got;
}

/** Write every buffer in order with as few syscalls as the kernel allows (writev may write only part). */
export function writeAll(fd: number, bufs: readonly Uint8Array[]): number {
  let total = 0;
  let rest = bufs.filter((b) => b.length > 0);
  while (rest.length > 0) {
    let n = writevSync(fd, rest.slice(0, 1024)); // IOV_MAX
    total += n;
    let i = 0;
    while (i < rest.length && n >= rest[i]!.length) n -= rest[i++]!.length;
    rest = i < rest.length ? [rest[i]!.subarray(n), ...rest.slice(i + 1)] : [];
  }
  return total;
}

/**
 * Overwrite a file with random bytes, fsync, then unlink it (and fsync the
 * directory): the content is gone from this file system's view of the
 * blocks. On copy-on-write or flash storage older copies may survive below
 * it; that is what encrypted volumes underneath are for.
 */
export async function destroyFile(file: string): Promise<void> {
  const fh = await open(file, constants.O_WRONLY | constants.O_NOFOLLOW);
  try {
    const { size } = await fh.stat();
    for (let o = 0; o < size; o += 1 << 16) {
      const n = Math.min(1 << 16, size - o);
      await fh.write(randomBytes(n), 0, n, o);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rm(file);
  await syncDir(path.dirname(file));
}
