import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { ChunkCipher, decodeHeader } from '../daemon/seal/envelope.js';

export interface EncryptFileTask {
  readonly src: string;
  readonly dest: string;
  /** The fresh data key; never leaves the pool thread except in this message. */
  readonly dek: Uint8Array;
  /** The encoded envelope header (KEK id, wrapped DEK, nonce, chunk size). */
  readonly header: Uint8Array;
}

export interface EncryptFileResult {
  readonly plainBytes: number;
  readonly plainSha256: string;
  /** SHA-256 of the envelope as written: what the checksum file lists, with no second read. */
  readonly sha256: string;
  readonly bytes: number;
}

/** Fill `buf` from `fd` (at `position`, else the current offset) unless the file ends first; returns the bytes read. */
export function readFull(fd: number, buf: Buffer, position: number | null = null): number {
  let got = 0;
  for (let n; got < buf.length && (n = readSync(fd, buf, got, buf.length - got, position === null ? null : position + got)) > 0; ) got += n;
  return got;
}

/**
 * Encrypt one file into a callvault envelope (daemon/seal/envelope.ts),
 * chunk by chunk in constant memory, fsynced before it resolves. The caller
 * renames it into place and removes the plaintext only after checking it.
 */
export default function encryptFile(task: EncryptFileTask): EncryptFileResult {
  const header = decodeHeader(Buffer.from(task.header));
  const cipher = new ChunkCipher(task.dek, header);
  const src = openSync(task.src, 'r');
  const dest = openSync(task.dest, 'w', 0o640);
  try {
    const plainHash = createHash('sha256');
    const outHash = createHash('sha256').update(header.bytes);
    writeSync(dest, header.bytes);
    let bytes = header.bytes.length;
    let plainBytes = 0;
    // Read one chunk ahead: whether a chunk is the last is known only when the next read comes back empty.
    let cur = Buffer.allocUnsafe(header.chunkSize);
    let next = Buffer.allocUnsafe(header.chunkSize);
    let curLen = readFull(src, cur);
    for (let index = 0; ; index++) {
      const nextLen = curLen === header.chunkSize ? readFull(src, next) : 0;
      const final = nextLen === 0;
      const plain = cur.subarray(0, curLen);
      plainHash.update(plain);
      const sealed = cipher.seal(index, final, plain);
      outHash.update(sealed);
      writeSync(dest, sealed);
      bytes += sealed.length;
      plainBytes += curLen;
      if (final) break;
      [cur, next] = [next, cur];
      curLen = nextLen;
    }
    fsyncSync(dest);
    return { plainBytes, plainSha256: plainHash.digest('hex'), sha256: outHash.digest('hex'), bytes };
  } finally {
    closeSync(src);
    closeSync(dest);
  }
}
