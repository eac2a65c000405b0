import { EnvelopeError } from '../daemon/errors.js';
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync } from 'node:fs';
import { EXCLUSIVE_CREATE, writeAll } from '../daemon/fsutil.js';
import { ChunkCipher, TAG_BYTES, type EnvelopeHeader } from '../daemon/seal/envelope.js';
import { headerOf, sealedChunks, streamedLayout, type ChunkRange } from '../daemon/seal/envelopeFile.js';
import { wavHeader } from '../daemon/record/wavFormat.js';

/**
 * What a recording's signed metadata says of a version 2 envelope: its
 * channel count (to rebuild a WAV header a crash kept from being written),
 * the chunks the recorder could not write, and whether the recording was
 * recovered after a crash (only then may the envelope be unterminated).
 */
export interface StreamContext {
  readonly channels: number;
  readonly gaps: readonly ChunkRange[];
  readonly recovered: boolean;
}

export interface DecryptFileTask {
  readonly src: string;
  /** Where the plaintext goes (fsynced); omit to only check that every chunk authenticates. */
  readonly dest?: string | undefined;
  readonly dek: Uint8Array;
  readonly stream?: StreamContext | undefined;
}

export interface DecryptFileResult {
  readonly plainBytes: number;
  readonly plainSha256: string;
  readonly kekId: string;
  /** The first bytes of the plaintext (up to 12): enough to tell a WAV/RF64 file. */
  readonly head: Uint8Array;
}

/** Plaintext bytes the envelope open on `fd` decrypts to. */
export function plaintextSize(fd: number, header: EnvelopeHeader): number {
  const size = fstatSync(fd).size;
  if (header.version === 2) return header.leadBytes + streamedLayout(header, size).dataBytes;
  const body = size - header.bytes.length;
  return body - Math.max(1, Math.ceil(body / (header.chunkSize + TAG_BYTES))) * TAG_BYTES;
}

/**
 * The plaintext of the envelope open on `fd`, chunk by chunk, each released
 * only once it has authenticated. A gap the metadata lists reads as silence;
 * a version 2 envelope that was never closed is refused unless the metadata
 * says the recording was recovered after a crash, and then its unwritten
 * WAV header is rebuilt.
 */
export function plaintextOf(
  fd: number,
  header: EnvelopeHeader,
  dek: Uint8Array,
  stream: StreamContext | undefined,
  name: string,
): Generator<Buffer[]> {
  // Checked before the first chunk is asked for, so nothing is written for an envelope that is refused.
  const cipher = new ChunkCipher(dek, header);
  const layout = header.version === 2 ? streamedLayout(header, fstatSync(fd).size) : null;
  if (layout && !layout.terminated && !stream?.recovered) {
    throw new EnvelopeError(
      `${name} ends after chunk ${layout.chunks} without its final chunk: truncated (only a recording recovered after a crash may end so)`,
      layout.chunks,
    );
  }
  return chunksOf(fd, header, cipher, stream, name, layout?.dataBytes ?? 0);
}

/** `dataBytes`: a version 2 envelope's audio bytes, for the WAV header of an unwritten lead. */
function* chunksOf(
  fd: number,
  header: EnvelopeHeader,
  cipher: ChunkCipher,
  stream: StreamContext | undefined,
  name: string,
  dataBytes: number,
): Generator<Buffer[]> {
  let silence: Buffer | undefined;
  for (const chunk of sealedChunks(fd, header, stream?.gaps)) {
    if (chunk.kind === 'sealed') yield cipher.open(chunk.index, chunk.final, chunk.sealed);
    else if (chunk.kind === 'gap') yield [(silence ??= Buffer.alloc(header.chunkSize))];
    else {
      if (!stream?.recovered)
        throw new EnvelopeError(`${name}: its header chunk was never written, and the recording is not one recovered after a crash`, 0);
      yield [wavHeader(stream.channels, dataBytes).subarray(0, header.leadBytes)];
    }
  }
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
    const chunks = plaintextOf(src, header, task.dek, task.stream, task.src);
    // Plaintext: created here, 0600, never over an existing file or through a link.
    dest = task.dest === undefined ? undefined : openSync(task.dest, EXCLUSIVE_CREATE, 0o600);
    const hash = createHash('sha256');
    let plainBytes = 0;
    let head: Uint8Array | undefined;
    for (const plain of chunks) {
      for (const p of plain) {
        hash.update(p);
        plainBytes += p.length;
      }
      head ??= new Uint8Array(plain[0]?.subarray(0, 12) ?? []);
      if (dest !== undefined) writeAll(dest, plain);
    }
    if (dest !== undefined) fsyncSync(dest);
    return { plainBytes, plainSha256: hash.digest('hex'), kekId: header.kekId, head: head ?? new Uint8Array(0) };
  } finally {
    closeSync(src);
    if (dest !== undefined) closeSync(dest);
  }
}
