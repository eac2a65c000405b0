import path from 'node:path';
import type { DekUnwrapper } from '../keys/kek/unwrappers.js';
import { ENVELOPE_SUFFIX } from '../record/metadata.js';
import type { WorkerPool } from '../seal/WorkerPool.js';
import type { DecryptFileResult } from '../../workers/decryptFile.js';
import { readEnvelopeHeader } from '../../workers/decryptFile.js';

/** Whether decrypted bytes start like the WAV/RF64 files callvault writes. */
export function looksLikeWav(head: Uint8Array): boolean {
  const s = Buffer.from(head).toString('latin1');
  return /^(RIFF|RF64)....WAVE$/s.test(s);
}

export function isEnvelope(name: string): boolean {
  return name.endsWith(ENVELOPE_SUFFIX);
}

/** Decrypt one envelope in the pool (to `dest`, or only check it); the data key lives only for this call. */
export async function decryptEnvelope(pool: WorkerPool, unwrapper: DekUnwrapper, file: string, dest?: string): Promise<DecryptFileResult & { name: string }> {
  const header = readEnvelopeHeader(file);
  const dek = await unwrapper.unwrap(header.kekId, header.wrappedDek);
  try {
    const r = await pool.decryptFile({ src: file, dest, dek });
    return { ...r, name: path.basename(file).slice(0, -ENVELOPE_SUFFIX.length) };
  } finally {
    dek.fill(0);
  }
}
