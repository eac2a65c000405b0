import { EnvelopeError } from '../daemon/errors.js';
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { decodeHeader, FIXED_HEADER_BYTES } from '../daemon/seal/envelope.js';
import { openStagingSync, readFull } from '../daemon/fsutil.js';
import { readEnvelopeHeader } from '../daemon/seal/envelopeFile.js';

export interface RewrapFileTask {
  readonly src: string;
  readonly dest: string;
  /** The new encoded header: same fixed part, a new key slot. */
  readonly header: Uint8Array;
}

export interface RewrapFileResult {
  readonly sha256: string;
  readonly bytes: number;
}

const COPY_BYTES = 1 << 20;

/**
 * Write `src`'s envelope to `dest` under a new key slot: the new header, then
 * the chunks byte for byte (the fixed header, which they authenticate, is the
 * same). fsynced before it resolves; the caller checks and renames.
 */
export default function rewrapFile(task: RewrapFileTask): RewrapFileResult {
  const old = readEnvelopeHeader(task.src);
  const header = decodeHeader(Buffer.from(task.header));
  if (!old.bytes.subarray(0, FIXED_HEADER_BYTES).equals(header.bytes.subarray(0, FIXED_HEADER_BYTES)))
    throw new EnvelopeError(`the new header of ${task.src} changes its fixed part`);
  const src = openSync(task.src, 'r');
  const dest = openStagingSync(task.dest, 0o640);
  try {
    const hash = createHash('sha256').update(header.bytes);
    writeSync(dest, header.bytes);
    let bytes = header.bytes.length;
    const buf = Buffer.allocUnsafe(COPY_BYTES);
    for (let pos = old.bytes.length, n: number; (n = readFull(src, buf, pos)) > 0; pos += n) {
      hash.update(buf.subarray(0, n));
      writeSync(dest, buf, 0, n);
      bytes += n;
    }
    fsyncSync(dest);
    return { sha256: hash.digest('hex'), bytes };
  } finally {
    closeSync(src);
    closeSync(dest);
  }
}
