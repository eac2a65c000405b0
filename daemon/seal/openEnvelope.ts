import path from 'node:path';
import type { DekUnwrapper } from '../keys/kek/unwrappers.js';
import type { DecryptFileResult, StreamContext } from '../../workers/decryptFile.js';
import { plainName, type RecordingMetadata } from '../record/metadata.js';
import { readEnvelopeHeader } from './envelopeFile.js';
import type { WorkerPool } from './WorkerPool.js';

/** Whether decrypted bytes start like the WAV/RF64 files callvault writes. */
export function looksLikeWav(head: Uint8Array): boolean {
  return /^(RIFF|RF64)....WAVE$/s.test(Buffer.from(head).toString('latin1'));
}

/** What a recording's signed metadata says about one of its envelopes, for reading one written as the call ran. */
export function streamContext(meta: RecordingMetadata, stored: string): StreamContext {
  const name = plainName(stored);
  return {
    channels: meta.files.find((f) => f.name === name)?.channels ?? 2,
    gaps: (meta.gaps ?? []).flatMap((g) => (g.file === name && g.chunks ? [g.chunks] : [])),
    recovered: meta.recovered,
  };
}

/**
 * Decrypt one envelope in the pool (to `dest`, or only check it); the data
 * key lives only for this call. `meta` is the recording's metadata, which the
 * caller has verified (its signature covers it).
 */
export async function decryptEnvelope(pool: WorkerPool, unwrapper: DekUnwrapper, file: string, meta: RecordingMetadata, dest?: string): Promise<DecryptFileResult> {
  const header = readEnvelopeHeader(file);
  const dek = await unwrapper.unwrap(header.kekId, header.wrappedDek, meta.recordingId);
  try {
    return await pool.decryptFile({ src: file, dest, dek, stream: streamContext(meta, path.basename(file)) });
  } finally {
    dek.fill(0);
  }
}
