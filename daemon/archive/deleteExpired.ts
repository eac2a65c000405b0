import os from 'node:os';
import type { Logger } from '../log.js';
import { RetentionSweeper } from '../retention/RetentionSweeper.js';
import type { AuditLog } from '../store/AuditLog.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';
import type { StorageTarget } from '../upload/StorageTarget.js';
import { StageRunner } from './StageRunner.js';
import { DeleteStage } from './stages/DeleteStage.js';

export interface DeleteExpiredResult {
  /** Expired and not on hold, as of `now`. */
  readonly expired: string[];
  readonly deleted: string[];
  readonly failed: { readonly recordingId: string; readonly error: string }[];
  /** Deletions a crash or failure had left unfinished, finished now. */
  readonly resumed: number;
}

/**
 * `callvault retention run`, beside the daemon or without it: the sweep
 * journals a deletion per expired recording, then this process's delete
 * stage tries each journaled deletion once (one the daemon is working on is
 * left to it). What fails stays journaled for the next run.
 */
export async function deleteExpired(
  ctx: {
    readonly dataDir: string;
    readonly index: RecordingIndex;
    readonly audit: AuditLog;
    readonly targets: ReadonlyMap<string, StorageTarget>;
    readonly log: Logger;
  },
  opts: {
    readonly now: Date;
    readonly actor: string;
    readonly dryRun: boolean;
    readonly onDeleted?: (recordingId: string, done: number, total: number) => void;
  },
): Promise<DeleteExpiredResult> {
  const sweep = await new RetentionSweeper(ctx.index).sweep(opts.now, opts.actor, opts.dryRun);
  if (opts.dryRun) return { expired: sweep.expired, deleted: [], failed: [], resumed: 0 };
  const runner = new StageRunner({ index: ctx.index, log: ctx.log, owner: `${os.hostname()}:${process.pid}`, attemptsPerJob: 1 });
  runner.register(new DeleteStage(ctx.dataDir, ctx.index, ctx.audit, () => ctx.targets, ctx.log));
  const total = sweep.queued.length + sweep.unfinished.length;
  const done: string[] = [];
  const failed: { recordingId: string; error: string }[] = [];
  runner.observer.on('done', (_stage, _lane, recordingId) => {
    done.push(recordingId);
    opts.onDeleted?.(recordingId, done.length, total);
  });
  runner.observer.on('failed', (_stage, _lane, recordingId, _action, _code, error) => failed.push({ recordingId, error }));
  await runner.start();
  await runner.idle();
  await runner.drain();
  const unfinished = new Set(sweep.unfinished);
  return {
    expired: sweep.expired,
    deleted: done.filter((id) => !unfinished.has(id)),
    failed,
    resumed: done.filter((id) => unfinished.has(id)).length,
  };
}
