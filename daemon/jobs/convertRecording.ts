import type { KeyObject } from 'node:crypto';
import { readdir, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { writeFileDurably, syncDir } from '../fsutil.js';
import type { DekUnwrapper } from '../keys/kek/unwrappers.js';
import { envelopeName, isAudioFile, isEnvelope, plainName, readMetadata, type RecordingMetadata } from '../record/metadata.js';
import {
  checksumFileName,
  formatChecksums,
  formatSignature,
  parseChecksums,
  readChecksumFile,
  signatureFileName,
  type ChecksumEntry,
} from '../seal/checksumFile.js';
import { stageEnvelope, stagingName } from '../seal/encryptFileInPlace.js';
import { decryptEnvelope, streamContext } from '../seal/openEnvelope.js';
import { newEnvelope, rewrapHeader, type WrappingKey } from '../seal/envelope.js';
import type { WorkerPool } from '../seal/WorkerPool.js';
import { JobError } from '../errors.js';
import type { KeyJobKind, StagedConversion } from '../archive/JobTypes.js';
import { readEnvelopeHeader } from '../seal/envelopeFile.js';

export interface ConversionContext {
  readonly pool: WorkerPool;
  readonly signingKey: KeyObject;
  readonly kind: KeyJobKind;
  /** encrypt, rewrap: where recordings go. */
  readonly toKek: WrappingKey | null;
  /** rewrap: only envelopes under this KEK move. */
  readonly fromKekId: string | null;
  /** rewrap, decrypt. */
  readonly unwrapper: DekUnwrapper | null;
}

/** Throw away what an attempt that never reached its journal entry left behind. */
export async function discardLeftovers(dir: string): Promise<void> {
  for (const name of await readdir(dir)) if (name.endsWith('.partial') || name.endsWith('.tmp')) await unlink(path.join(dir, name));
}

interface FilePlan {
  /** What the checksum file lists for it afterwards; null: it goes. */
  readonly entry: ChecksumEntry | null;
  readonly rename?: readonly [string, string];
  readonly remove?: string;
}

async function planFile(ctx: ConversionContext, dir: string, meta: RecordingMetadata, e: ChecksumEntry): Promise<FilePlan> {
  if (!isAudioFile(e.name) && !isEnvelope(e.name)) return { entry: e };
  // The keys pressed are kept only encrypted: turning encryption off removes them.
  if (e.name === meta.dtmfDigitsFile && ctx.kind === 'decrypt') return { entry: null, remove: e.name };
  const src = path.join(dir, e.name);
  if (ctx.kind === 'encrypt') {
    if (isEnvelope(e.name)) return { entry: e };
    const name = envelopeName(e.name);
    const w = await stageEnvelope(ctx.pool, ctx.toKek!, src, path.join(dir, stagingName(name)));
    return { entry: { name, sha256: w.sha256 }, rename: [stagingName(name), name], remove: e.name };
  }
  if (!isEnvelope(e.name)) return { entry: e };
  if (ctx.kind === 'rewrap') return planRewrap(ctx, dir, meta, e);
  if (ctx.kind === 'reencrypt') return planReencrypt(ctx, dir, meta, e);
  const name = plainName(e.name);
  const plain = path.join(dir, stagingName(name));
  const r = await decryptEnvelope(ctx.pool, ctx.unwrapper!, src, meta, plain);
  // What reached the disk, read back: the plaintext replaces the only other copy.
  if ((await ctx.pool.hashFile(plain)).sha256 !== r.plainSha256)
    throw new JobError('DECRYPT_CHECK_FAILED', `${name}: the decrypted file on disk does not hash to what was decrypted`);
  return { entry: { name, sha256: r.plainSha256 }, rename: [stagingName(name), name], remove: e.name };
}

/** A new key slot for an envelope under the revoked KEK; the chunks are copied and checked with the same data key. */
async function planRewrap(ctx: ConversionContext, dir: string, meta: RecordingMetadata, e: ChecksumEntry): Promise<FilePlan> {
  const src = path.join(dir, e.name);
  const header = readEnvelopeHeader(src);
  if (header.kekId !== ctx.fromKekId) return { entry: e };
  const dek = await ctx.unwrapper!.unwrap(header.kekId, header.wrappedDek, meta.recordingId);
  try {
    const staged = path.join(dir, stagingName(e.name));
    const r = await ctx.pool.rewrapFile({ src, dest: staged, header: rewrapHeader(header, dek, ctx.toKek!).bytes });
    await ctx.pool.decryptFile({ src: staged, dek, stream: streamContext(meta, e.name) });
    return { entry: { name: e.name, sha256: r.sha256 }, rename: [stagingName(e.name), e.name] };
  } finally {
    dek.fill(0);
  }
}

/**
 * A fresh data key for an envelope under the revoked KEK: the audio
 * re-encrypted in the pool chunk by chunk (no plaintext file), then the new
 * envelope decrypted again with the new key and compared.
 */
async function planReencrypt(ctx: ConversionContext, dir: string, meta: RecordingMetadata, e: ChecksumEntry): Promise<FilePlan> {
  const src = path.join(dir, e.name);
  const old = readEnvelopeHeader(src);
  if (old.kekId !== ctx.fromKekId) return { entry: e };
  const oldDek = await ctx.unwrapper!.unwrap(old.kekId, old.wrappedDek, meta.recordingId);
  const { dek: newDek, header } = newEnvelope(ctx.toKek!);
  try {
    const staged = path.join(dir, stagingName(e.name));
    const r = await ctx.pool.reencryptFile({ src, dest: staged, oldDek, newDek, header: header.bytes, stream: streamContext(meta, e.name) });
    const back = await ctx.pool.decryptFile({ src: staged, dek: newDek });
    if (back.plainSha256 !== r.plainSha256)
      throw new JobError('REENCRYPT_CHECK_FAILED', `${e.name}: the re-encrypted envelope does not decrypt to the audio it was made from`);
    return { entry: { name: e.name, sha256: r.sha256 }, rename: [stagingName(e.name), e.name] };
  } finally {
    oldDek.fill(0);
    newDek.fill(0);
  }
}

/**
 * Stage one recording's conversion: each file that changes is written
 * under a `.partial` name, fsynced and checked; then the new checksum file
 * and its signature, also staged. Nothing the recording is made of changes yet.
 */
export async function stageConversion(ctx: ConversionContext, dir: string, recordingId: string): Promise<StagedConversion | null> {
  const sumsName = checksumFileName(recordingId);
  const listed = parseChecksums((await readChecksumFile(path.join(dir, sumsName))).toString('utf8'));
  const meta = await readMetadata(dir, recordingId);
  const plans = await Promise.all(listed.map((e) => planFile(ctx, dir, meta, e)));
  if (!plans.some((p) => p.rename || p.remove)) return null;
  const entries = plans.flatMap((p) => (p.entry ? [p.entry] : []));
  const checksums = formatChecksums(entries);
  const sigName = signatureFileName(recordingId);
  await writeFileDurably(path.join(dir, stagingName(sumsName)), checksums, 0o640);
  const signature = await ctx.pool.sign(Buffer.from(checksums), ctx.signingKey);
  await writeFileDurably(path.join(dir, stagingName(sigName)), formatSignature(signature), 0o640);
  const files = entries.map((e) => e.name).sort();
  const encrypted = ctx.kind !== 'decrypt' && files.some(isEnvelope);
  return {
    renames: [...plans.flatMap((p) => (p.rename ? [p.rename] : [])), [stagingName(sumsName), sumsName], [stagingName(sigName), sigName]],
    removes: plans.flatMap((p) => (p.remove ? [p.remove] : [])),
    files,
    kekId: encrypted ? ctx.toKek!.id : null,
  };
}

/** Put a staged conversion in place; safe to repeat after a crash at any point (roll forward). */
export async function commitConversion(dir: string, staged: StagedConversion): Promise<void> {
  for (const [from, to] of staged.renames) {
    await rename(path.join(dir, from), path.join(dir, to)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  await syncDir(dir);
  for (const name of staged.removes) {
    await unlink(path.join(dir, name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  await syncDir(dir);
}
