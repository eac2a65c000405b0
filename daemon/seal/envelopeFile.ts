import { EnvelopeError } from '../errors.js';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { readFull } from '../fsutil.js';
import { decodeHeader, MAX_HEADER_BYTES, TAG_BYTES, type EnvelopeHeader } from './envelope.js';

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
  /**
   * sealed: ciphertext ‖ tag, in a buffer reused for the next chunk. gap: a
   * chunk the recorder could not write (its signed metadata lists it; it
   * reads as silence). unwritten: a version 2 lead a crash kept from being
   * written.
   */
  readonly kind: 'sealed' | 'gap' | 'unwritten';
  readonly sealed: Buffer;
  /** Plaintext bytes the chunk stands for. */
  readonly plainBytes: number;
}

/** What a version 2 envelope's size says about it. */
export interface StreamedLayout {
  /** Audio chunks (1…n) present. */
  readonly chunks: number;
  /** The last chunk is the final one: the recorder closed the envelope. */
  readonly terminated: boolean;
  /** Audio bytes the chunks hold. */
  readonly dataBytes: number;
  /** Where chunk 1 starts. */
  readonly audioStart: number;
}

/**
 * Version 2: the lead (chunk 0), then audio chunks of C bytes, the last of
 * them (the final one) 0 to C-1 bytes. A file that ends exactly after a whole
 * chunk was never closed (a crash; recovery cut it there).
 */
export function streamedLayout(header: EnvelopeHeader, size: number): StreamedLayout {
  const audioStart = header.bytes.length + header.leadBytes + TAG_BYTES;
  const rest = size - audioStart;
  if (rest < 0) throw new EnvelopeError('the envelope is cut short before its first audio chunk', 0);
  const whole = header.chunkSize + TAG_BYTES;
  const full = Math.floor(rest / whole);
  const tail = rest % whole;
  if (tail === 0) return { chunks: full, terminated: false, dataBytes: full * header.chunkSize, audioStart };
  if (tail < TAG_BYTES) throw new EnvelopeError(`chunk ${full + 1} is cut short: truncated`, full + 1);
  return { chunks: full + 1, terminated: true, dataBytes: full * header.chunkSize + tail - TAG_BYTES, audioStart };
}

/** Chunk indices [from, to) of a version 2 envelope the recorder could not write. */
export type ChunkRange = readonly [number, number];

function inRanges(ranges: readonly ChunkRange[], index: number): boolean {
  return ranges.some(([from, to]) => index >= from && index < to);
}

/** Bytes never written (a hole, or space a failed write did not reach) read as zeros; sealed bytes are never all zero. */
export function isZero(buf: Buffer): boolean {
  for (const b of buf) if (b !== 0) return false;
  return true;
}

/**
 * The sealed chunks of the envelope open on `fd`, in order, each read into
 * one reused buffer. Which chunk is last follows from the file's length, so
 * a truncated or extended file makes the wrong chunk "final" and fails
 * authentication there. `gaps` (version 2) are chunks the signed metadata
 * says were never written.
 */
export function* sealedChunks(fd: number, header: EnvelopeHeader, gaps: readonly ChunkRange[] = []): Generator<SealedChunk> {
  const size = fstatSync(fd).size;
  const sealedChunk = header.chunkSize + TAG_BYTES;
  const buf = Buffer.allocUnsafe(sealedChunk);
  const read = (index: number, pos: number, length: number): Buffer => {
    const sealed = buf.subarray(0, length);
    if (readFull(fd, sealed, pos) !== sealed.length) throw new EnvelopeError(`chunk ${index} is cut short: the file shrank while it was read`, index);
    return sealed;
  };
  if (header.version === 1) {
    const body = size - header.bytes.length;
    if (body < TAG_BYTES) throw new EnvelopeError('the envelope holds no complete chunk: truncated', 0);
    const chunks = Math.ceil(body / sealedChunk);
    for (let index = 0; index < chunks; index++) {
      const pos = header.bytes.length + index * sealedChunk;
      const sealed = read(index, pos, Math.min(sealedChunk, size - pos));
      yield { index, final: index === chunks - 1, kind: 'sealed', sealed, plainBytes: sealed.length - TAG_BYTES };
    }
    return;
  }
  const layout = streamedLayout(header, size);
  const lead = read(0, header.bytes.length, header.leadBytes + TAG_BYTES);
  yield { index: 0, final: false, kind: isZero(lead) ? 'unwritten' : 'sealed', sealed: lead, plainBytes: header.leadBytes };
  for (let index = 1; index <= layout.chunks; index++) {
    const pos = layout.audioStart + (index - 1) * sealedChunk;
    const final = layout.terminated && index === layout.chunks;
    if (!final && inRanges(gaps, index)) {
      yield { index, final, kind: 'gap', sealed: buf.subarray(0, 0), plainBytes: header.chunkSize };
      continue;
    }
    const sealed = read(index, pos, Math.min(sealedChunk, size - pos));
    yield { index, final, kind: 'sealed', sealed, plainBytes: sealed.length - TAG_BYTES };
  }
}
