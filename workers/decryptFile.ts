import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { EXCLUSIVE_CREATE, writeAll } from '../daemon/fsutil.js';
import { ChunkCipher } from '../daemon/seal/envelope.js';
import { headerOf, sealedChunks } from '../daemon/seal/envelopeFile.js';

export interface DecryptFileTask {
  readonly src: string;
  /** Where the plaintext goes (fsynced); omit to only check that every chunk authenticates. */
  readonly dest?: string | undefined;
  readonly dek: Uint8Array;
}

export interface DecryptFileResult {
  readonly plainBytes: number;
  readonly plainSha256: string;
  readonly kekId: string;
  /** The first bytes of the plaintext (up to 12): enough to tell a WAV/RF64 file. */
  readonly head: Uint8Array;
}

/**
 * Decrypt (or check) one envelope chunk by chunk in constant memory. Any
 * chunk that does not authenticate — damaged, swapped, the file cut short or
 * extended, the wrong data key — throws an EnvelopeError naming it.
 */
export default function decryptFile(task: DecryptFileTask): DecryptFileResult {
  const src = openSync(task.src, 'r');
  let dest: number | undefined;
  try {
    const header = headerOf(src);
    const cipher = new ChunkCipher(task.dek, header);
    // Plaintext: created here, 0600, never over an existing file or through a link.
    dest = task.dest === undefined ? undefined : openSync(task.dest, EXCLUSIVE_CREATE, 0o600);
    const hash = createHash('sha256');
    let plainBytes = 0;
    let head: Uint8Array = new Uint8Array(0);
    for (const { index, final, sealed } of sealedChunks(src, header)) {
      const plain = cipher.open(index, final, sealed);
      for (const p of plain) {
        hash.update(p);
        plainBytes += p.length;
      }
      if (index === 0) head = new Uint8Array(plain[0]?.subarray(0, 12) ?? []);
      if (dest !== undefined) writeAll(dest, plain);
    }
    if (dest !== undefined) fsyncSync(dest);
    return { plainBytes, plainSha256: hash.digest('hex'), kekId: header.kekId, head };
  } finally {
    closeSync(src);
    if (dest !== undefined) closeSync(dest);
  }
}
