import { closeSync, fstatSync, openSync } from 'node:fs';
import { readFull } from '../fsutil.js';
import { decodeHeader, EnvelopeError, MAX_HEADER_BYTES, TAG_BYTES, type EnvelopeHeader } from './envelope.js';

/*
 * Reading envelope files (synchronously: on pool threads, and for the small
 * header on the main thread). The format is daemon/seal/envelope.ts.
 */

/** The header of the envelope open on `fd`. */
export function headerOf(fd: number): EnvelopeHeader {
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

export interface SealedChunk {
  readonly index: number;
  readonly final: boolean;
  /** Ciphertext ‖ tag, in a buffer reused for the next chunk. */
  readonly sealed: Buffer;
}

/**
 * The sealed chunks of the envelope open on `fd`, in order, each read into
 * one reused buffer. Which chunk is last follows from the file's length, so
 * a truncated or extended file makes the wrong chunk "final" and fails
 * authentication there.
 */
export function* sealedChunks(fd: number, header: EnvelopeHeader): Generator<SealedChunk> {
  const size = fstatSync(fd).size;
  const body = size - header.bytes.length;
  const sealedChunk = header.chunkSize + TAG_BYTES;
  if (body < TAG_BYTES) throw new EnvelopeError('the envelope holds no complete chunk: truncated', 0);
  const chunks = Math.ceil(body / sealedChunk);
  const buf = Buffer.allocUnsafe(sealedChunk);
  for (let index = 0; index < chunks; index++) {
    const pos = header.bytes.length + index * sealedChunk;
    const sealed = buf.subarray(0, Math.min(sealedChunk, size - pos));
    if (readFull(fd, sealed, pos) !== sealed.length) throw new EnvelopeError(`chunk ${index} is cut short: the file shrank while it was read`, index);
    yield { index, final: index === chunks - 1, sealed };
  }
}
