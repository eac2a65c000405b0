import { createCipheriv, randomBytes } from 'node:crypto';
import { ChunkCipher, decodeHeader, PIECE_BYTES, plainChunks } from '../../daemon/seal/envelope.js';

export interface CipherInMemoryTask {
  readonly bytes: number;
  readonly dek: Uint8Array;
  readonly header: Uint8Array;
  /** One plain cipher over the whole buffer instead of the envelope: node:crypto raw, on a pool thread. */
  readonly raw?: boolean;
}

// Made once per thread, so the timed runs measure the cipher, not randomBytes.
let plain: Buffer | undefined;

/**
 * The envelope cipher exactly as encryptFile drives it (a KeyObject per file,
 * one cipher per chunk, 64 KiB pieces, a tag per chunk) over a buffer already
 * in memory: what the pool costs besides the file I/O. Returns the sealed bytes.
 * With `raw`, the same buffer through one plain cipher: the baseline it is
 * judged against, run on as many threads at once.
 */
export default function cipherInMemory(task: CipherInMemoryTask): number {
  if (plain?.length !== task.bytes) plain = randomBytes(task.bytes);
  if (task.raw) {
    const c = createCipheriv('aes-256-gcm', task.dek, randomBytes(12));
    for (let pos = 0; pos < plain.length; pos += PIECE_BYTES) c.update(plain.subarray(pos, pos + PIECE_BYTES));
    c.final();
    return plain.length + c.getAuthTag().length;
  }
  const header = decodeHeader(Buffer.from(task.header));
  const cipher = new ChunkCipher(task.dek, header);
  let sealed = 0;
  for (const { index, start, end, final } of plainChunks(task.bytes, header.chunkSize)) {
    const c = cipher.encryptor(index, final);
    for (let pos = start; pos < end; pos += PIECE_BYTES) sealed += c.update(plain.subarray(pos, Math.min(end, pos + PIECE_BYTES))).length;
    c.final();
    sealed += c.getAuthTag().length;
  }
  return sealed;
}
