import { rm } from 'node:fs/promises';
import path from 'node:path';
import { StoreError } from '../../errors.js';
import { syncDir } from '../../fsutil.js';
import type { Logger } from '../../log.js';
import { metadataFileName } from '../../record/metadata.js';
import { transientCode } from '../../retry.js';
import type { AuditLog } from '../../store/AuditLog.js';
import type { RecordingIndex } from '../../store/RecordingIndex.js';
import { sealedFiles, sealedRecording, type StorageTarget } from '../../upload/StorageTarget.js';
import type { Job } from '../JobTypes.js';
import { owesOffload } from '../lifecycle.js';
import { readOffloadManifest, writeOffloadManifest } from '../offloadManifest.js';
import type { Failure, StageHandler } from '../StageRunner.js';

/**
 * The offload stage, for profiles with `removeLocalAfterUpload`: once a
 * recording is archived, every storage target is asked again for its copy
 * (whole, as the target checks it); only when all answer, the manifest is
 * written durably, the local audio removed (metadata, checksum file and
 * signature stay), the removal audited and `offloaded` committed. A crash
 * after the manifest finishes the removal without asking again — the
 * manifest is the proof the copies were there.
 */
export class OffloadStage implements StageHandler<'offload'> {
  readonly stage = 'offload';
  readonly concurrency = 1;
  readonly messages = { retry: 'local audio kept: not every storage target could show its copy yet', failed: 'offload dropped' };

  constructor(
    private readonly dataDir: string,
    private readonly index: RecordingIndex,
    private readonly audit: AuditLog,
    private readonly targets: () => ReadonlyMap<string, StorageTarget>,
    private readonly log: Logger,
  ) {}

  async run(job: Job<'offload'>): Promise<void> {
    const { recordingId } = job;
    const entry = this.index.get(recordingId);
    if (!entry || !owesOffload(entry)) {
      await this.index.commit(recordingId, null, [{ remove: job }]);
      return;
    }
    const rec = sealedRecording(this.dataDir, entry);
    let manifest = await readOffloadManifest(rec.dir, recordingId);
    if (!manifest) {
      const copies: { name: string; copiedAt: string }[] = [];
      for (const name of Object.keys(entry.uploads)) {
        const target = this.targets().get(name);
        const at = await target?.find(rec);
        if (!at)
          throw new StoreError(
            'COPY_NOT_FOUND',
            `${target ? 'no whole copy' : 'no configured target'} of ${recordingId} on ${name}; the local audio is kept`,
            {
              recordingId,
              target: name,
            },
          );
        copies.push({ name, copiedAt: at.toISOString() });
      }
      const keep = new Set([metadataFileName(recordingId)]);
      manifest = {
        recordingId,
        at: new Date().toISOString(),
        targets: copies,
        files: await sealedFiles(rec),
        removed: entry.files.filter((f) => !keep.has(f)),
        kekId: entry.kekId,
      };
      await writeOffloadManifest(rec.dir, manifest);
    }
    for (const name of manifest.removed) await rm(path.join(rec.dir, name), { force: true });
    await syncDir(rec.dir);
    await this.audit.append('daemon', 'recording.offloaded', recordingId, { targets: manifest.targets, removed: manifest.removed });
    await this.index.commit(recordingId, { type: 'offloaded', at: manifest.at }, [{ remove: job }]);
    this.log.info(
      { recordingId, targets: manifest.targets.map((t) => t.name), removed: manifest.removed },
      'local audio removed; the copies are on the storage targets',
    );
  }

  failed(_job: Job<'offload'>, err: unknown): Failure {
    return { action: 'retry', event: null, code: transientCode(err) ?? null };
  }
}
