import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { SealError } from '../../errors.js';
import { transientCode } from '../../retry.js';
import { writeFileDurably } from '../../fsutil.js';
import type { Kek, KekStore } from '../../keys/kek/KekStore.js';
import type { SigningIdentity } from '../../keys/SigningIdentity.js';
import type { Logger } from '../../log.js';
import { envelopeName, metadataFileName, readMetadata, type RecordingMetadata } from '../../record/metadata.js';
import { readEnvelopeHeader } from '../../seal/envelopeFile.js';
import { removePlaintext, writeEnvelope } from '../../seal/encryptFileInPlace.js';
import { recordingDir } from '../../record/recordingId.js';
import type { RecordingIndex } from '../../store/RecordingIndex.js';
import { checksumFileName, formatChecksums, formatSignature, signatureFileName, type ChecksumEntry } from '../../seal/checksumFile.js';
import type { WorkerPool } from '../../seal/WorkerPool.js';
import { newJob, type Job } from '../JobTypes.js';
import type { Failure, StageHandler } from '../StageRunner.js';

/** Checksums and signature of one recording, as the seal left them. */
export interface SealResult {
  readonly recordingId: string;
  readonly files: readonly ChecksumEntry[];
  readonly bytes: number;
  /** The KEK the audio is encrypted under, or null when the profile does not encrypt. */
  readonly kekId: string | null;
}

interface StoredFile extends ChecksumEntry {
  readonly bytes: number;
  readonly kekId: string | null;
}

/**
 * The seal stage: for a profile that encrypts, each audio file that is still
 * plaintext (written by a version that encrypted only at the seal) becomes
 * an envelope under the newest KEK (checked, then the plaintext removed);
 * SHA-256 of every stored file (in the pool, in parallel), the checksum
 * file, its SHA256withRSA signature; then, in one transaction, `sealed` and
 * an upload job per storage target of the profile. Every step is atomic per
 * file and redone from where it stopped, so a crash leaves a recording
 * unsealed (its job still in the journal), never half-sealed, and never a
 * plaintext whose envelope is not verified.
 */
export class SealStage implements StageHandler<'seal'> {
  readonly stage = 'seal';
  readonly concurrency: number;
  readonly messages = { retry: 'cannot seal recording yet; trying again', failed: 'cannot seal recording' };

  constructor(
    private readonly dataDir: string,
    private readonly pool: WorkerPool,
    private readonly identity: SigningIdentity,
    private readonly keks: KekStore,
    private readonly index: RecordingIndex,
    private readonly log: Logger,
  ) {
    // Hashing runs in the pool: a few recordings at once keep every thread busy.
    this.concurrency = Math.max(2, pool.threads * 2);
  }

  async run(job: Job<'seal'>): Promise<void> {
    const id = job.recordingId;
    const dir = recordingDir(this.dataDir, id);
    const meta = await readMetadata(dir, id).catch((err: unknown) => {
      throw new SealError('NO_METADATA', 'no metadata: the process stopped before the recording was written', { recordingId: id }, { cause: err });
    });
    if (meta.state !== 'closed') throw new SealError('NOT_CLOSED', `metadata state is ${meta.state}, not closed`, { recordingId: id });
    const t0 = performance.now();
    const { result, sealedAt } = await this.seal(meta, dir);
    const targets = meta.profile.storage;
    await this.index.commit(
      id,
      {
        type: 'sealed',
        files: result.files.map((f) => f.name).sort(),
        kekId: result.kekId,
        sealedAt: sealedAt.toISOString(),
        targets,
        ...(meta.profile.removeLocalAfterUpload && targets.length ? { removeLocalAfterUpload: true } : {}),
      },
      [{ remove: job }, ...targets.map((t) => ({ put: newJob('upload', id, t, null) }))],
    );
    this.log.info(
      {
        recordingId: id,
        callId: meta.callId,
        files: result.files.length,
        bytes: result.bytes,
        kekId: result.kekId,
        sealMs: Math.round(performance.now() - t0),
      },
      'recording sealed',
    );
  }

  failed(job: Job<'seal'>, err: unknown): Failure {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `file missing: ${(err as Error).message}` : (err as Error).message;
    const code = transientCode(err) ?? null;
    if (code)
      return {
        action: 'retry',
        code,
        event: { type: 'seal-retrying', error: `seal attempt ${job.attempts + 1} failed (${code}), retrying: ${reason}` },
      };
    // Parked, not dropped: the next start tries once more (a failure that was transient after all, or a fixed file).
    return { action: 'park', code: null, event: { type: 'failed', error: `seal failed: ${reason}` } };
  }

  /** The KEK for a recording whose profile encrypts; none is a failure (the plaintext stays until there is one). */
  private kekFor(recordingId: string): Kek {
    const kek = this.keks.current();
    if (!kek) throw new SealError('NO_KEK', 'the profile encrypts but there is no key-encryption key: run `callvault keys init`', { recordingId });
    return kek;
  }

  private async hash(dir: string, name: string): Promise<StoredFile> {
    const h = await this.pool.hashFile(path.join(dir, name));
    return { name, sha256: h.sha256, bytes: h.bytes, kekId: null };
  }

  /**
   * The stored envelope of one audio file. Recordings are encrypted as they
   * are written, so normally the envelope is all there is; a plaintext (left
   * by a version that encrypted only at the seal) is encrypted now. After a crash, a plaintext already gone means
   * its envelope was checked and is in place.
   */
  private async encrypt(dir: string, name: string, recordingId: string): Promise<StoredFile> {
    const plain = path.join(dir, name);
    const stored = envelopeName(name);
    if (
      await access(plain).then(
        () => true,
        () => false,
      )
    ) {
      const kek = this.kekFor(recordingId);
      const w = await writeEnvelope(this.pool, kek, plain, path.join(dir, stored));
      await removePlaintext(plain);
      return { name: stored, sha256: w.sha256, bytes: w.bytes, kekId: kek.id };
    }
    const h = await this.hash(dir, stored);
    return { ...h, kekId: readEnvelopeHeader(path.join(dir, stored)).kekId };
  }

  /** Hash, write the checksum file and sign it; `sealedAt` is the signature file's mtime, so a rebuild from disk restores it exactly. */
  private async seal(meta: RecordingMetadata, dir: string): Promise<{ result: SealResult; sealedAt: Date }> {
    const id = meta.recordingId;
    const audio = meta.files.map((f) => (meta.profile.encryption ? this.encrypt(dir, f.name, id) : this.hash(dir, f.name)));
    const digits = meta.dtmfDigitsFile ? [this.hash(dir, meta.dtmfDigitsFile)] : [];
    const files = await Promise.all([...audio, this.hash(dir, metadataFileName(id)), ...digits]);
    const checksums = formatChecksums(files);
    await writeFileDurably(path.join(dir, checksumFileName(id)), checksums, 0o640);
    const signature = await this.pool.sign(Buffer.from(checksums), this.identity.privateKey);
    const sigFile = path.join(dir, signatureFileName(id));
    await writeFileDurably(sigFile, formatSignature(signature), 0o640);
    const result = {
      recordingId: id,
      files: files.map(({ name, sha256 }) => ({ name, sha256 })),
      bytes: files.reduce((s, f) => s + f.bytes, 0),
      kekId: files.find((f) => f.kekId)?.kekId ?? null,
    };
    return { result, sealedAt: (await stat(sigFile)).mtime };
  }
}
