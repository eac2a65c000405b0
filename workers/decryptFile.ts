import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync } from 'node:fs';
import { EXCLUSIVE_CREATE, writeAll } from '../daemon/fsutil.js';
import { ChunkCipher, EnvelopeError } from '../daemon/seal/envelope.js';
import { headerOf, sealedChunks, streamedLayout, type ChunkRange } from '../daemon/seal/envelopeFile.js';
import { wavHeader } from '../daemon/record/wavFormat.js';

export interface DecryptFileTask {
  readonly src: string;
  /** Where the plaintext goes (fsynced); omit to only check that every chunk authenticates. */
  readonly dest?: string | undefined;
  readonly dek: Uint8Array;
  /**
   * What the recording's signed metadata says of a version 2 envelope: its
   * channel count (to rebuild a WAV header a crash kept from being written),
   * the chunks the recorder could not write, and whether the recording was
   * recovered after a crash (only then may the envelope be unterminated).
   */
  readonly stream?: { readonly channels: number; readonly gaps: readonly ChunkRange[]; readonly recovered: boolean } | undefined;
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
    if (header.version === 2) {
      const layout = streamedLayout(header, fstatSync(src).size);
      if (!layout.terminated && !task.stream?.recovered) {
        throw new EnvelopeError(`${task.src} ends after chunk ${layout.chunks} without its final chunk: truncated (only a recording recovered after a crash may end so)`, layout.chunks);
      }
    }
    // Plaintext: created here, 0600, never over an existing file or through a link.
    dest = task.dest === undefined ? undefined : openSync(task.dest, EXCLUSIVE_CREATE, 0o600);
    const hash = createHash('sha256');
    let plainBytes = 0;
    let head: Uint8Array = new Uint8Array(0);
    let silence: Buffer | undefined;
    for (const chunk of sealedChunks(src, header, task.stream?.gaps)) {
      let plain: Buffer[];
      if (chunk.kind === 'sealed') plain = cipher.open(chunk.index, chunk.final, chunk.sealed);
      else if (chunk.kind === 'gap') plain = [(silence ??= Buffer.alloc(header.chunkSize))];
      else {
        if (!task.stream?.recovered) throw new EnvelopeError(`${task.src}: its header chunk was never written, and the recording is not one recovered after a crash`, 0);
        plain = [wavHeader(task.stream.channels, streamedLayout(header, fstatSync(src).size).dataBytes).subarray(0, header.leadBytes)];
      }
      for (const p of plain) {
        hash.update(p);
        plainBytes += p.length;
      }
      if (chunk.index === 0) head = new Uint8Array(plain[0]?.subarray(0, 12) ?? []);
      if (dest !== undefined) writeAll(dest, plain);
    }
    if (dest !== undefined) fsyncSync(dest);
    return { plainBytes, plainSha256: hash.digest('hex'), kekId: header.kekId, head };
  } finally {
    closeSync(src);
    if (dest !== undefined) closeSync(dest);
  }
}
