import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';

export interface HashFileTask {
  readonly path: string;
}

export interface HashFileResult {
  readonly sha256: string;
  readonly bytes: number;
}

const CHUNK = 1 << 20;

/**
 * SHA-256 of one file, streamed through one reused 1 MiB buffer: constant
 * memory for a 10-hour call. Synchronous reads on purpose: this runs on a pool
 * thread (or a CLI with nothing else to do) and skips a libuv round trip per chunk.
 */
export default function hashFile({ path }: HashFileTask): HashFileResult {
  const fd = openSync(path, 'r');
  try {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(CHUNK);
    let bytes = 0;
    for (let n: number; (n = readSync(fd, buf, 0, CHUNK, null)) > 0; bytes += n) hash.update(buf.subarray(0, n));
    return { sha256: hash.digest('hex'), bytes };
  } finally {
    closeSync(fd);
  }
}
