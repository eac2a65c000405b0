import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { ChunkCipher, decodeHeader, EnvelopeError, MAX_HEADER_BYTES, TAG_BYTES, type EnvelopeHeader } from '../daemon/seal/envelope.js';
import { readFull } from './encryptFile.js';

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

function headerOf(fd: number): EnvelopeHeader {
  const buf = Buffer.allocUnsafe(Math.min(MAX_HEADER_BYTES, fstatSync(fd).size));
  return decodeHeader(buf.subarray(0, readFull(fd, buf, 0)));
}

/** Read an envelope's header only (the KEK id and wrapped DEK are needed before the data key exists). */
export function readEnvelopeHeader(path: string): EnvelopeHeader {
  const fd = openSync(path, 'r');
  try {
    return headerOf(fd);
  } finally {
    closeSync(fd);
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
    const cipher = new ChunkCipher(task.dek, header);
    dest = task.dest === undefined ? undefined : openSync(task.dest, 'w', 0o600);
    const size = fstatSync(src).size;
    const body = size - header.bytes.length;
    const sealedChunk = header.chunkSize + TAG_BYTES;
    if (body < TAG_BYTES) throw new EnvelopeError('the envelope holds no complete chunk: truncated', 0);
    const chunks = Math.ceil(body / sealedChunk);
    const buf = Buffer.allocUnsafe(sealedChunk);
    const hash = createHash('sha256');
    let plainBytes = 0;
    let head: Uint8Array = new Uint8Array(0);
    for (let index = 0; index < chunks; index++) {
      const pos = header.bytes.length + index * sealedChunk;
      const sealed = buf.subarray(0, Math.min(sealedChunk, size - pos));
      readFull(src, sealed, pos);
      const plain = cipher.open(index, index === chunks - 1, sealed);
      hash.update(plain);
      if (index === 0) head = new Uint8Array(plain.subarray(0, 12));
      if (dest !== undefined) writeSync(dest, plain);
      plainBytes += plain.length;
    }
    if (dest !== undefined) fsyncSync(dest);
    return { plainBytes, plainSha256: hash.digest('hex'), kekId: header.kekId, head };
  } finally {
    closeSync(src);
    if (dest !== undefined) closeSync(dest);
  }
}
