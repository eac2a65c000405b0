import type { DekUnwrapper } from '../keys/kek/unwrappers.js';
import type { DecryptFileResult } from '../../workers/decryptFile.js';
import { readEnvelopeHeader } from './envelopeFile.js';
import type { WorkerPool } from './WorkerPool.js';

/** Whether decrypted bytes start like the WAV/RF64 files callvault writes. */
export function looksLikeWav(head: Uint8Array): boolean {
  return /^(RIFF|RF64)....WAVE$/s.test(Buffer.from(head).toString('latin1'));
}

/** Decrypt one envelope in the pool (to `dest`, or only check it); the data key lives only for this call. */
export async function decryptEnvelope(pool: WorkerPool, unwrapper: DekUnwrapper, file: string, dest?: string): Promise<DecryptFileResult> {
  const header = readEnvelopeHeader(file);
  const dek = await unwrapper.unwrap(header.kekId, header.wrappedDek);
  try {
    return await pool.decryptFile({ src: file, dest, dek });
  } finally {
    dek.fill(0);
  }
}
