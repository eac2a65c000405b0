import { EnvelopeError } from '../errors.js';
import path from 'node:path';
import type { DekUnwrapper } from '../keys/kek/unwrappers.js';
import type { DecryptFileResult, StreamContext } from '../../workers/decryptFile.js';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { plaintextOf } from '../../workers/decryptFile.js';
import { plainName, type DtmfDigitsFile, type RecordingMetadata } from '../record/metadata.js';
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
export async function decryptEnvelope(
  pool: WorkerPool,
  unwrapper: DekUnwrapper,
  file: string,
  meta: RecordingMetadata,
  dest?: string,
): Promise<DecryptFileResult> {
  const header = readEnvelopeHeader(file);
  const dek = await unwrapper.unwrap(header.kekId, header.wrappedDek, meta.recordingId);
  try {
    return await pool.decryptFile({ src: file, dest, dek, stream: streamContext(meta, path.basename(file)) });
  } finally {
    dek.fill(0);
  }
}

/** The keys-pressed envelope is small (a few bytes a key); anything much larger is not one callvault wrote. */
const MAX_DIGITS_FILE = 4 << 20;

/**
 * Decrypt a recording's keys-pressed envelope in memory and check it is
 * that recording's; the plaintext is wiped once parsed.
 */
export async function readDigits(unwrapper: DekUnwrapper, file: string, meta: RecordingMetadata): Promise<DtmfDigitsFile> {
  const header = readEnvelopeHeader(file);
  const dek = await unwrapper.unwrap(header.kekId, header.wrappedDek, meta.recordingId);
  const fd = openSync(file, 'r');
  const parts: Buffer[] = [];
  try {
    if (fstatSync(fd).size > MAX_DIGITS_FILE) throw new EnvelopeError(`${file} is larger than any keys-pressed file callvault writes`);
    for (const chunk of plaintextOf(fd, header, dek, undefined, file)) parts.push(...chunk);
    const plain = Buffer.concat(parts);
    try {
      const parsed = JSON.parse(plain.toString('utf8')) as Partial<DtmfDigitsFile>;
      if (parsed.format !== 'callvault-dtmf/1' || parsed.recordingId !== meta.recordingId || !Array.isArray(parsed.digits))
        throw new EnvelopeError(`${file} is not recording ${meta.recordingId}'s keys-pressed file`);
      return parsed as DtmfDigitsFile;
    } finally {
      plain.fill(0);
    }
  } finally {
    closeSync(fd);
    dek.fill(0);
    for (const p of parts) p.fill(0);
  }
}
