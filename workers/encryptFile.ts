import { EnvelopeError } from '../daemon/errors.js';
import { closeSync, fstatSync, fsyncSync, openSync } from 'node:fs';
import { ChunkCipher, decodeHeader, PIECE_BYTES, plainChunks } from '../daemon/seal/envelope.js';
import { openStagingSync, readFull, writeAll } from '../daemon/fsutil.js';

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
  readonly bytes: number;
}

/**
 * Encrypt one (finished, no longer growing) file into a callvault envelope
 * (daemon/seal/envelope.ts) in constant memory, fsynced before it resolves.
 * Only the cipher touches the bytes: hashing the envelope and checking it
 * against the plaintext is checkEnvelope's job, on the bytes read back. The
 * caller renames the result into place and removes the plaintext only then.
 */
export default function encryptFile(task: EncryptFileTask): EncryptFileResult {
  const header = decodeHeader(Buffer.from(task.header));
  const cipher = new ChunkCipher(task.dek, header);
  const src = openSync(task.src, 'r');
  const dest = openStagingSync(task.dest, 0o640);
  try {
    // The size decides which chunk is the last, and the AAD of a chunk must be set before its first byte.
    const plainBytes = fstatSync(src).size;
    const piece = Buffer.allocUnsafe(Math.min(PIECE_BYTES, header.chunkSize));
    let bytes = writeAll(dest, [header.bytes]);
    for (const { index, start, end, final } of plainChunks(plainBytes, header.chunkSize)) {
      const c = cipher.encryptor(index, final);
      const out: Buffer[] = [];
      for (let pos = start; pos < end; ) {
        const n = readFull(src, piece.subarray(0, Math.min(piece.length, end - pos)), pos);
        if (n === 0) throw new EnvelopeError(`${task.src} shrank while it was being encrypted (${pos} of ${plainBytes} bytes)`);
        out.push(c.update(piece.subarray(0, n)));
        pos += n;
      }
      c.final();
      out.push(c.getAuthTag());
      bytes += writeAll(dest, out);
    }
    fsyncSync(dest);
    return { plainBytes, bytes };
  } finally {
    closeSync(src);
    closeSync(dest);
  }
}
