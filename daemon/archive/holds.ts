import type { AuditLog } from '../store/AuditLog.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';
import { StoreError } from '../errors.js';
import { newJob } from './JobTypes.js';

export interface HoldChange {
  /** Put on hold with this reason, or released (null). */
  readonly reason: string | null;
  readonly actor: string;
}

/**
 * Legal hold on recordings (the retention sweeper never deletes one on
 * hold), or its release. Each change is audited first — the audit log is
 * what a rebuilt index takes holds from, so the index copies the entry's
 * time — then committed as a lifecycle event, with a lock job per storage
 * target the recording is copied to (S3 Object Lock carries the hold too).
 * Deleted recordings and those already so are left alone. Returns the ids changed.
 */
export async function setHold(index: RecordingIndex, audit: AuditLog, ids: readonly string[], change: HoldChange): Promise<string[]> {
  const changed: string[] = [];
  for (const id of ids) {
    const e = index.get(id);
    if (!e) throw new StoreError('NO_SUCH_RECORDING', `no recording ${id} in the index`, { recordingId: id });
    if (e.stage === 'deleted' || Boolean(e.hold) === (change.reason !== null)) continue;
    const locks = Object.keys(e.uploads).map((target) => ({ put: newJob('lock', id, target, null) }));
    if (change.reason === null) {
      await audit.append(change.actor, 'recording.release', id, {});
      await index.commit(id, { type: 'released' }, locks);
    } else {
      const entry = await audit.append(change.actor, 'recording.hold', id, { reason: change.reason });
      await index.commit(id, { type: 'held', reason: change.reason, by: change.actor, at: entry.at }, locks);
    }
    changed.push(id);
  }
  return changed;
}
