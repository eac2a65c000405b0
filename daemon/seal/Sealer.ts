import { EventEmitter } from 'node:events';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { SealError } from '../errors.js';
import { backoffMs, transientCode } from '../retry.js';
import { writeFileDurably } from '../fsutil.js';
import type { Kek, KekStore } from '../keys/kek/KekStore.js';
import type { SigningIdentity } from '../keys/SigningIdentity.js';
import type { Logger } from '../log.js';
import { envelopeName, metadataFileName, readMetadata, type RecordingMetadata } from '../record/metadata.js';
import { readEnvelopeHeader } from './envelopeFile.js';
import { removePlaintext, writeEnvelope } from './encryptFileInPlace.js';
import { recordingDir } from '../record/recordingId.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';
import { checksumFileName, formatChecksums, formatSignature, signatureFileName, type ChecksumEntry } from './checksumFile.js';
import type { WorkerPool } from './WorkerPool.js';

export interface SealerEvents {
  sealed: [SealResult];
  failed: [string];
  /** A seal failed for a reason that can pass (errno code); it is tried again. */
  retrying: [string];
}

/** Backoff of seal retries after a transient failure: 1 s, doubling, at most 5 minutes apart. */
const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 300_000;

export interface SealResult {
  readonly recordingId: string;
  readonly files: readonly ChecksumEntry[];
  readonly bytes: number;
  readonly ms: number;
  /** Storage targets the recording's profile archives it to (upload jobs now journaled). */
  readonly storage: readonly string[];
  /** The KEK the audio is encrypted under, or null when the profile does not encrypt. */
  readonly kekId: string | null;
}

interface StoredFile extends ChecksumEntry {
  readonly bytes: number;
  readonly kekId: string | null;
}

/**
 * Seals closed recordings: for a profile that encrypts, each audio file
 * becomes an envelope under the newest KEK (checked, then the plaintext
 * removed); SHA-256 of every stored file (in the pool, in parallel), the
 * checksum file, its SHA256withRSA signature, then `sealed`/`encrypted` in
 * the index. Every step is atomic per file and redone from where it stopped,
 * so a crash leaves a recording unsealed (sealed at the next start), never
 * half-sealed, and never a plaintext whose envelope is not verified.
 */
export class Sealer extends EventEmitter<SealerEvents> {
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly dataDir: string,
    private readonly pool: WorkerPool,
    private readonly identity: SigningIdentity,
    private readonly keks: KekStore,
    private readonly index: RecordingIndex,
    private readonly log: Logger,
  ) {
    super();
  }

  /**
   * Seal one recording; failures are logged and recorded in the index, and
   * rejected. A transient failure (out of descriptors, a full disk, an I/O
   * error) leaves it `finalizing` and tries again with backoff.
   */
  seal(meta: RecordingMetadata, attempt = 0): Promise<SealResult> {
    const job = this.run(meta, attempt);
    this.inFlight.add(job);
    void job.catch(() => undefined).finally(() => this.inFlight.delete(job));
    return job;
  }

  /**
   * Seal what a crash or stop left unsealed: recordings the index still has
   * as `recording` or `finalizing` (crash recovery has closed their files by
   * now), and `failed` ones whose files are intact: a failure that was
   * transient after all (or came from an older version) gets another try,
   * and one that was not fails again with its reason.
   */
  async sealPending(): Promise<number> {
    const ids = [...this.index.idsInState('recording'), ...this.index.idsInState('finalizing'), ...this.index.idsInState('failed')];
    for (const id of ids) {
      let meta: RecordingMetadata;
      try {
        meta = await readMetadata(recordingDir(this.dataDir, id), id);
      } catch {
        await this.index.update(id, { state: 'failed', error: 'no metadata: the process stopped before the recording was written' });
        continue;
      }
      if (meta.state !== 'closed') {
        await this.index.update(id, { state: 'failed', error: `metadata state is ${meta.state}, not closed` });
        continue;
      }
      await this.seal(meta).catch(() => undefined);
    }
    return ids.length;
  }

  /** Resolves when every seal under way has finished; retries still waiting are left to the next start. */
  async drain(): Promise<void> {
    this.closed = true;
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
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
    if (await access(plain).then(() => true, () => false)) {
      const kek = this.kekFor(recordingId);
      const w = await writeEnvelope(this.pool, kek, plain, path.join(dir, stored));
      await removePlaintext(plain);
      return { name: stored, sha256: w.sha256, bytes: w.bytes, kekId: kek.id };
    }
    const h = await this.hash(dir, stored);
    return { ...h, kekId: readEnvelopeHeader(path.join(dir, stored)).kekId };
  }

  private async run(meta: RecordingMetadata, attempt: number): Promise<SealResult> {
    const t0 = performance.now();
    const id = meta.recordingId;
    const dir = recordingDir(this.dataDir, id);
    try {
      const audio = meta.files.map((f) => (meta.profile.encryption ? this.encrypt(dir, f.name, id) : this.hash(dir, f.name)));
      const digits = meta.dtmfDigitsFile ? [this.hash(dir, meta.dtmfDigitsFile)] : [];
      const files = await Promise.all([...audio, this.hash(dir, metadataFileName(id)), ...digits]);
      const checksums = formatChecksums(files);
      await writeFileDurably(path.join(dir, checksumFileName(id)), checksums, 0o640);
      const signature = await this.pool.sign(Buffer.from(checksums), this.identity.privateKey);
      const sigFile = path.join(dir, signatureFileName(id));
      await writeFileDurably(sigFile, formatSignature(signature), 0o640);
      const kekId = files.find((f) => f.kekId)?.kekId ?? null;
      await this.index.markSealed(id, meta.profile.storage, (await stat(sigFile)).mtime, { files: files.map((f) => f.name).sort(), kekId });
      const result = {
        recordingId: id,
        files: files.map(({ name, sha256 }) => ({ name, sha256 })),
        bytes: files.reduce((s, f) => s + f.bytes, 0),
        ms: performance.now() - t0,
        storage: meta.profile.storage,
        kekId,
      };
      this.log.info({ recordingId: id, callId: meta.callId, files: files.length, bytes: result.bytes, kekId, sealMs: Math.round(result.ms) }, 'recording sealed');
      this.emit('sealed', result);
      return result;
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `file missing: ${(err as Error).message}` : (err as Error).message;
      const code = transientCode(err);
      if (code && !this.closed) {
        const waitMs = backoffMs(attempt, RETRY_BASE_MS, RETRY_MAX_MS);
        this.log.warn({ err, recordingId: id, callId: meta.callId, code, attempt: attempt + 1, retryInMs: waitMs }, 'cannot seal recording yet; trying again');
        await this.index.update(id, { state: 'finalizing', error: `seal attempt ${attempt + 1} failed (${code}), retrying: ${reason}` }).catch(() => undefined);
        this.retryTimers.set(
          id,
          setTimeout(() => {
            this.retryTimers.delete(id);
            void this.seal(meta, attempt + 1).catch(() => undefined);
          }, waitMs),
        );
        this.emit('retrying', code);
      } else {
        this.log.error({ err, recordingId: id, callId: meta.callId }, 'cannot seal recording');
        await this.index.update(id, { state: 'failed', error: `seal failed: ${reason}` }).catch(() => undefined);
        this.emit('failed', id);
      }
      throw new SealError('SEAL_FAILED', `cannot seal recording ${id}: ${reason}`, { recordingId: id, transient: code ?? null }, { cause: err });
    }
  }
}
