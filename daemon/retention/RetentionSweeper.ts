import { StoreError } from '../errors.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';

export interface SweepResult {
  /** Expired and not on hold, as of `now`. */
  readonly expired: string[];
  /** Deletions journaled now (the delete stage carries them out). */
  readonly queued: string[];
  /** Deletions already in the journal before this sweep (a crash or a failure left them), still to finish. */
  readonly unfinished: string[];
}

/**
 * Retention: every recording whose retention ended and that is not on
 * legal hold gets a deletion job (journaled, refused for one on hold, in one
 * transaction); the delete stage does the deleting. A dry run only lists.
 */
export class RetentionSweeper {
  constructor(private readonly index: RecordingIndex) {}

  async sweep(now: Date, actor: string, dryRun: boolean): Promise<SweepResult> {
    const unfinished = this.index.jobs.list('delete').map((j) => j.recordingId);
    const expired = [...this.index.expiredIds(now)].filter((id) => !unfinished.includes(id));
    const queued: string[] = [];
    if (dryRun) return { expired, queued, unfinished };
    for (const id of expired) {
      try {
        await this.index.beginDeletion(id, { reason: 'retention', actor, startedAt: new Date().toISOString() });
        queued.push(id);
      } catch (err) {
        // Put on hold since the expiry index was read: left alone.
        if (!(err instanceof StoreError && err.code === 'ON_HOLD')) throw err;
      }
    }
    return { expired, queued, unfinished };
  }
}
