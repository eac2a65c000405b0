import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { openStagingSync, writeAll } from '../daemon/fsutil.js';
import { ChunkCipher, decodeHeader, plainChunks } from '../daemon/seal/envelope.js';
import { headerOf } from '../daemon/seal/envelopeFile.js';
import { plaintextOf, plaintextSize, type StreamContext } from './decryptFile.js';

export interface ReencryptFileTask {
  readonly src: string;
  readonly dest: string;
  /** The data key `src` is sealed with. */
  readonly oldDek: Uint8Array;
  /** A fresh data key, and the header (version 1) carrying it wrapped under the new KEK. */
  readonly newDek: Uint8Array;
  readonly header: Uint8Array;
  readonly stream?: StreamContext | undefined;
}

export interface ReencryptFileResult {
  readonly plainBytes: number;
  readonly plainSha256: string;
  /** SHA-256 and size of the new envelope as written. */
  readonly sha256: string;
  readonly bytes: number;
}

/**
 * Re-encrypt one envelope under a fresh data key, chunk by chunk in
 * constant memory, with no plaintext file: each old chunk is authenticated
 * before its bytes go into the new envelope (version 1, which holds the
 * whole WAV). fsynced before it resolves; the caller decrypts the result
 * again with the new key and compares before it renames it into place.
 */
export default function reencryptFile(task: ReencryptFileTask): ReencryptFileResult {
  const src = openSync(task.src, 'r');
  let dest: number | undefined;
  try {
    const old = headerOf(src);
    const total = plaintextSize(src, old);
    const pieces = plaintextOf(src, old, task.oldDek, task.stream, task.src);
    const header = decodeHeader(Buffer.from(task.header));
    const cipher = new ChunkCipher(task.newDek, header);
    dest = openStagingSync(task.dest, 0o640);
    const hash = createHash('sha256').update(header.bytes);
    const plainHash = createHash('sha256');
    let bytes = writeAll(dest, [header.bytes]);
    const chunks = plainChunks(total, header.chunkSize);
    let chunk = chunks.next().value!;
    let enc = cipher.encryptor(chunk.index, chunk.final);
    let filled = 0;
    let plainBytes = 0;
    const emit = (parts: Buffer[]) => {
      for (const p of parts) hash.update(p);
      bytes += writeAll(dest!, parts);
    };
    const finishChunk = () => {
      enc.final();
      emit([enc.getAuthTag()]);
      const next = chunks.next();
      if (next.done) return;
      chunk = next.value;
      enc = cipher.encryptor(chunk.index, chunk.final);
      filled = 0;
    };
    for (const plain of pieces) {
      for (const p of plain) {
        plainHash.update(p);
        plainBytes += p.length;
        for (let o = 0; o < p.length; ) {
          const n = Math.min(p.length - o, chunk.end - chunk.start - filled);
          emit([enc.update(p.subarray(o, o + n))]);
          filled += n;
          o += n;
          if (filled === chunk.end - chunk.start) finishChunk();
        }
      }
    }
    if (total === 0) finishChunk(); // the one empty chunk still carries its tag
    fsyncSync(dest);
    return { plainBytes, plainSha256: plainHash.digest('hex'), sha256: hash.digest('hex'), bytes };
  } finally {
    closeSync(src);
    if (dest !== undefined) closeSync(dest);
  }
}
