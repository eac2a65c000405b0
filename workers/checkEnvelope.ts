import { EnvelopeError } from '../daemon/errors.js';
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { readFull } from '../daemon/fsutil.js';
import { ChunkCipher, PIECE_BYTES } from '../daemon/seal/envelope.js';
import { headerOf, sealedChunks } from '../daemon/seal/envelopeFile.js';

export interface CheckEnvelopeTask {
  /** The envelope just written (and fsynced). */
  readonly envelope: string;
  /** The file it was made from. */
  readonly plain: string;
  readonly dek: Uint8Array;
}

export interface CheckEnvelopeResult {
  /** SHA-256 of the envelope as read back from disk: what the checksum file lists. */
  readonly sha256: string;
  readonly bytes: number;
  readonly plainBytes: number;
}

/**
 * The check before a plaintext may be removed: read the envelope back, hash
 * it as stored, decrypt every chunk and compare it byte for byte with the
 * plaintext file. One pass over each file; a byte compare instead of a second
 * hash of the plaintext.
 */
export default function checkEnvelope(task: CheckEnvelopeTask): CheckEnvelopeResult {
  const env = openSync(task.envelope, 'r');
  const plain = openSync(task.plain, 'r');
  try {
    const header = headerOf(env);
    const cipher = new ChunkCipher(task.dek, header);
    const hash = createHash('sha256').update(header.bytes);
    const original = Buffer.allocUnsafe(PIECE_BYTES);
    let plainBytes = 0;
    for (const { index, final, sealed } of sealedChunks(env, header)) {
      hash.update(sealed);
      for (const back of cipher.open(index, final, sealed)) {
        const want = original.subarray(0, readFull(plain, original.subarray(0, back.length), plainBytes));
        if (!back.equals(want)) throw new EnvelopeError(`chunk ${index} of ${task.envelope} does not decrypt to the bytes of ${task.plain}`, index);
        plainBytes += back.length;
      }
    }
    const size = fstatSync(plain).size;
    if (size !== plainBytes) throw new EnvelopeError(`${task.envelope} holds ${plainBytes} bytes of ${task.plain}, which has ${size}`);
    return { sha256: hash.digest('hex'), bytes: fstatSync(env).size, plainBytes };
  } finally {
    closeSync(env);
    closeSync(plain);
  }
}
