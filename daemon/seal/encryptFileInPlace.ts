import { rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { SealError } from '../errors.js';
import { syncDir } from '../fsutil.js';
import { newEnvelope, type WrappingKey } from './envelope.js';
import type { WorkerPool } from './WorkerPool.js';

export interface EnvelopeWritten {
  /** SHA-256 of the envelope as stored. */
  readonly sha256: string;
  readonly bytes: number;
  readonly plainBytes: number;
}

/** Where an envelope is staged until it has been checked. */
export function stagingName(file: string): string {
  return `${file}.partial`;
}

/**
 * Encrypt `src` into the envelope file `staged` under a fresh data key,
 * fsynced (in the pool), then read back, hashed and checked by decrypting
 * every chunk against `src` (in the pool). A failed attempt leaves nothing.
 */
export async function stageEnvelope(pool: WorkerPool, kek: WrappingKey, src: string, staged: string): Promise<EnvelopeWritten> {
  const { dek, header } = newEnvelope(kek);
  try {
    const written = await pool.encryptFile({ src, dest: staged, dek, header: header.bytes });
    const check = await pool.checkEnvelope({ envelope: staged, plain: src, dek }).catch((err: unknown) => {
      throw new SealError(
        'ENVELOPE_CHECK_FAILED',
        `the envelope of ${path.basename(src)} does not decrypt to the file it was made from: ${err instanceof Error ? err.message : String(err)}`,
        { file: src },
        { cause: err },
      );
    });
    if (check.bytes !== written.bytes)
      throw new SealError(
        'ENVELOPE_CHECK_FAILED',
        `the envelope of ${path.basename(src)} is ${check.bytes} bytes on disk, ${written.bytes} were written`,
        { file: src },
      );
    return check;
  } catch (err) {
    await unlink(staged).catch(() => undefined);
    throw err;
  } finally {
    dek.fill(0);
  }
}

/** stageEnvelope, then renamed to `dest` and the directory synced: only then may a caller remove `src`. */
export async function writeEnvelope(pool: WorkerPool, kek: WrappingKey, src: string, dest: string): Promise<EnvelopeWritten> {
  const staged = stagingName(dest);
  const written = await stageEnvelope(pool, kek, src, staged);
  await rename(staged, dest);
  await syncDir(path.dirname(dest));
  return written;
}

/** Remove a plaintext whose envelope is in place, durably. */
export async function removePlaintext(file: string): Promise<void> {
  await unlink(file);
  await syncDir(path.dirname(file));
}
