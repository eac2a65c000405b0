import { EventEmitter } from 'node:events';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { SealError } from '../errors.js';
import { writeFileDurably } from '../fsutil.js';
import type { SigningIdentity } from '../keys/SigningIdentity.js';
import type { Logger } from '../log.js';
import { readMetadata, recordingFileNames, type RecordingMetadata } from '../record/metadata.js';
import { recordingDir } from '../record/recordingId.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';
import { checksumFileName, formatChecksums, formatSignature, signatureFileName, type ChecksumEntry } from './checksumFile.js';
import type { WorkerPool } from './WorkerPool.js';

export interface SealerEvents {
  sealed: [SealResult];
  failed: [string];
}

export interface SealResult {
  readonly recordingId: string;
  readonly files: readonly ChecksumEntry[];
  readonly bytes: number;
  readonly ms: number;
  /** Storage targets the recording's profile archives it to (upload jobs now journaled). */
  readonly storage: readonly string[];
}

/**
 * Seals closed recordings: SHA-256 of every file (in the pool, in parallel),
 * the checksum file, its SHA256withRSA signature, then `sealed` in the index.
 * Both files are written atomically, so a crash leaves a recording unsealed
 * (and sealed again at the next start), never half-sealed.
 */
export class Sealer extends EventEmitter<SealerEvents> {
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly dataDir: string,
    private readonly pool: WorkerPool,
    private readonly identity: SigningIdentity,
    private readonly index: RecordingIndex,
    private readonly log: Logger,
  ) {
    super();
  }

  /** Seal one recording; failures are logged and recorded in the index, and rejected. */
  seal(meta: RecordingMetadata): Promise<SealResult> {
    const job = this.run(meta);
    this.inFlight.add(job);
    void job.catch(() => undefined).finally(() => this.inFlight.delete(job));
    return job;
  }

  /**
   * Seal what a crash or stop left unsealed: recordings the index still has
   * as `recording` or `finalizing` (crash recovery has closed their files by now).
   */
  async sealPending(): Promise<number> {
    const ids = [...this.index.idsInState('recording'), ...this.index.idsInState('finalizing')];
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

  /** Resolves when every seal under way has finished. */
  async drain(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  private async run(meta: RecordingMetadata): Promise<SealResult> {
    const t0 = performance.now();
    const id = meta.recordingId;
    const dir = recordingDir(this.dataDir, id);
    try {
      const names = recordingFileNames(meta);
      const hashes = await Promise.all(names.map((name) => this.pool.hashFile(path.join(dir, name))));
      const files = names.map((name, i) => ({ name, sha256: hashes[i]!.sha256 }));
      const checksums = formatChecksums(files);
      await writeFileDurably(path.join(dir, checksumFileName(id)), checksums, 0o640);
      const signature = await this.pool.sign(Buffer.from(checksums), this.identity.privateKey);
      const sigFile = path.join(dir, signatureFileName(id));
      await writeFileDurably(sigFile, formatSignature(signature), 0o640);
      await this.index.markSealed(id, meta.profile.storage, (await stat(sigFile)).mtime);
      const result = { recordingId: id, files, bytes: hashes.reduce((s, h) => s + h.bytes, 0), ms: performance.now() - t0, storage: meta.profile.storage };
      this.log.info({ recordingId: id, callId: meta.callId, files: files.length, bytes: result.bytes, sealMs: Math.round(result.ms) }, 'recording sealed');
      this.emit('sealed', result);
      return result;
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `file missing: ${(err as Error).message}` : (err as Error).message;
      this.log.error({ recordingId: id, callId: meta.callId, err: reason }, 'cannot seal recording');
      await this.index.update(id, { state: 'failed', error: `seal failed: ${reason}` }).catch(() => undefined);
      this.emit('failed', id);
      throw new SealError('SEAL_FAILED', `cannot seal recording ${id}: ${reason}`, { recordingId: id }, { cause: err });
    }
  }
}
