import { constants } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { CallvaultError } from '../errors.js';
import type { DekUnwrapper } from '../keys/kek/unwrappers.js';
import { isAudioFile, isEnvelope, plainName, readMetadata, type DtmfDigitsFile } from '../record/metadata.js';
import { decryptEnvelope, looksLikeWav, readDigits } from '../seal/openEnvelope.js';
import { verifyRecording } from '../seal/verify.js';
import { checkAgainstIndex } from '../seal/verifyAgainstIndex.js';
import type { WorkerPool } from '../seal/WorkerPool.js';
import type { AuditLog } from '../store/AuditLog.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';
import { audioIsLocal, isSealed, legacyState } from './lifecycle.js';

export interface ExportRequest {
  readonly recordingId: string;
  /** The WAV file, or a directory when the recording has one file per leg. */
  readonly out: string;
  readonly reason: string | null;
  /** Also the keys pressed (a profile with `dtmfDigits: encrypted`). */
  readonly dtmf: boolean;
  readonly actor: string;
}

export interface ExportContext {
  readonly dataDir: string;
  readonly index: RecordingIndex;
  readonly audit: AuditLog;
  readonly pool: WorkerPool;
  /** The certificate the recording must verify against (pinned or given; the caller says which). */
  readonly certificatePem: string;
  readonly instanceId: string | null;
  /** Both shares or the key manager, asked only when something is encrypted. */
  readonly unwrapper: () => Promise<DekUnwrapper>;
  /** After the audit entry, before the first byte is written (a signed checkpoint). */
  readonly audited: () => Promise<void>;
}

export interface ExportResult {
  readonly files: string[];
  readonly digits?: DtmfDigitsFile['digits'];
}

/**
 * Hand one recording's audio to an authorised listener: only a recording
 * that verifies (checksums, signature, its place in this instance's index)
 * is exported; encrypted audio is decrypted; who, when, why and where goes
 * to the audit log before the first byte is written; nothing is overwritten.
 */
export async function exportRecording(ctx: ExportContext, req: ExportRequest): Promise<ExportResult> {
  const { recordingId } = req;
  const entry = ctx.index.get(recordingId);
  if (!entry) throw new CallvaultError('NO_SUCH_RECORDING', `no recording ${recordingId} in the index`, { recordingId });
  if (!isSealed(entry))
    throw new CallvaultError('NOT_SEALED', `recording ${recordingId} is ${legacyState(entry)}: only sealed recordings are exported`, { recordingId });
  if (!audioIsLocal(entry))
    throw new CallvaultError(
      'OFFLOADED',
      `recording ${recordingId}'s audio was removed here after upload (${entry.local?.removedAt}); its copies are on ${Object.keys(entry.uploads).join(', ')} (see ${recordingId}.offloaded.json)`,
      { recordingId },
    );
  const dir = path.join(ctx.dataDir, entry.dir);
  const v = checkAgainstIndex(await verifyRecording(dir, ctx.certificatePem), { dataDir: ctx.dataDir, instanceId: ctx.instanceId, index: ctx.index });
  if (!v.ok)
    throw new CallvaultError('VERIFY_FAILED', `recording ${recordingId} does not verify, refusing to export it: ${v.problems.join('; ')}`, {
      recordingId,
    });
  const audio = v.files.map((f) => f.name).filter(isAudioFile);
  const meta = await readMetadata(dir, recordingId);
  const digitsFile = meta.dtmfDigitsFile && v.files.some((f) => f.name === meta.dtmfDigitsFile) ? path.join(dir, meta.dtmfDigitsFile) : null;
  if (req.dtmf && !digitsFile) {
    const gone = meta.dtmfDigitsFile ? ', or `keys decrypt-all` removed them (they are kept only encrypted)' : '';
    throw new CallvaultError('NO_DIGITS', `recording ${recordingId} keeps no keys pressed: its profile discards them${gone}`, { recordingId });
  }
  const outs = audio.length === 1 ? [path.resolve(req.out)] : audio.map((n) => path.resolve(req.out, plainName(n)));
  if (audio.length > 1) await mkdir(path.resolve(req.out), { recursive: true, mode: 0o700 });
  for (const o of outs) if (await exists(o)) throw new CallvaultError('OUT_EXISTS', `${o} exists; refusing to overwrite it`, { out: o });
  const unwrapper = audio.some(isEnvelope) || req.dtmf ? await ctx.unwrapper() : null;
  await ctx.audit.append(req.actor, 'recording.exported', recordingId, { out: outs, reason: req.reason, kekId: entry.kekId, dtmf: req.dtmf });
  await ctx.audited();
  for (const [i, name] of audio.entries()) {
    // Staged in a directory made for this file alone (mode 0700, a fresh random name, beside the
    // destination so the rename stays on one file system): nothing planted in a shared output
    // directory can be written through, and nobody else can open the plaintext while it grows.
    const staging = await mkdtemp(path.join(path.dirname(outs[i]!), '.callvault-export-'));
    const staged = path.join(staging, 'audio.wav');
    try {
      if (isEnvelope(name)) {
        const r = await decryptEnvelope(ctx.pool, unwrapper!, path.join(dir, name), meta, staged);
        if (!looksLikeWav(r.head)) throw new CallvaultError('NOT_AUDIO', `${name} decrypts, but not to a WAV file`, { recordingId });
      } else {
        await copyFile(path.join(dir, name), staged, constants.COPYFILE_EXCL);
        await chmod(staged, 0o600);
      }
      await rename(staged, outs[i]!);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
  return { files: outs, ...(req.dtmf ? { digits: (await readDigits(unwrapper!, digitsFile!, meta)).digits } : {}) };
}

function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}
