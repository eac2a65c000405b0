import os from 'node:os';
import type { StorageTargetConfig } from '../config/Config.js';
import type { KekStore } from '../keys/kek/KekStore.js';
import type { SigningIdentity } from '../keys/SigningIdentity.js';
import type { Logger } from '../log.js';
import type { RecordingMetadata } from '../record/metadata.js';
import { RetentionSweeper, type SweepResult } from '../retention/RetentionSweeper.js';
import type { WorkerPool } from '../seal/WorkerPool.js';
import type { AuditLog } from '../store/AuditLog.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';
import type { StorageTarget } from '../upload/StorageTarget.js';
import { newJob } from './JobTypes.js';
import { uploadStatus, type TargetUploads } from './uploadStatus.js';
import { apply, startedEntry } from './lifecycle.js';
import { StageRunner } from './StageRunner.js';
import { DeleteStage } from './stages/DeleteStage.js';
import { LockStage } from './stages/LockStage.js';
import { OffloadStage } from './stages/OffloadStage.js';
import { SealStage } from './stages/SealStage.js';
import { UploadStage } from './stages/UploadStage.js';

export interface ArchiveParts {
  readonly dataDir: string;
  readonly index: RecordingIndex;
  readonly audit: AuditLog;
  readonly pool: WorkerPool;
  readonly identity: SigningIdentity;
  readonly keks: KekStore;
  readonly log: Logger;
}

/**
 * The archive pipeline of the daemon: the stage runner with the seal, upload
 * and delete stages over the one job journal, crash-recovered recordings
 * taken in, and retention's sweep. A recording's packets end in the Recorder;
 * from its close on, everything that happens to it happens here.
 */
export class Archive {
  readonly runner: StageRunner;
  readonly #uploads: UploadStage;
  readonly #sweeper: RetentionSweeper;

  constructor(private readonly parts: ArchiveParts) {
    const { dataDir, index, audit, pool, identity, keks, log } = parts;
    this.#uploads = new UploadStage(dataDir, index, pool, log);
    this.runner = new StageRunner({ index, log, owner: `${os.hostname()}:${process.pid}` })
      .register(new SealStage(dataDir, pool, identity, keks, index, log))
      .register(this.#uploads)
      .register(new LockStage(dataDir, index, () => this.#uploads.targets, log))
      .register(new OffloadStage(dataDir, index, audit, () => this.#uploads.targets, log))
      .register(new DeleteStage(dataDir, index, audit, () => this.#uploads.targets, log));
    this.#sweeper = new RetentionSweeper(index);
  }

  /** Storage targets from the config (at start and on reload). */
  configure(storage: Readonly<Record<string, StorageTargetConfig>>): void {
    this.#uploads.configure(storage);
    this.runner.poke();
  }

  get targets(): ReadonlyMap<string, StorageTarget> {
    return this.#uploads.targets;
  }

  /** Copies made, for monitoring. */
  get uploadObserver(): UploadStage['observer'] {
    return this.#uploads.observer;
  }

  /**
   * Recordings crash recovery closed: each is closed in the index (or
   * entered, if the crash came before its entry was written) with its seal
   * job, in one transaction. One the index already has as failed keeps that
   * stage and gets its seal tried again.
   */
  async adoptRecovered(metas: readonly RecordingMetadata[]): Promise<void> {
    const { index, dataDir } = this.parts;
    for (const meta of metas) {
      const id = meta.recordingId;
      const seal = { put: newJob('seal', id, '', null) };
      const closed = { type: 'closed', endedAt: meta.endedAt, durationMs: meta.durationMs } as const;
      const entry = index.get(id);
      if (!entry) await index.create(apply(startedEntry(meta, dataDir), closed), [seal]);
      else if (entry.stage === 'recording') await index.commit(id, closed, [seal]);
      else if (entry.stage === 'closed' || entry.stage === 'failed') await index.commit(id, null, [seal]);
    }
  }

  /** Take up the journal, and say what the previous run left. */
  async start(): Promise<void> {
    const pending = await this.runner.start();
    const { log } = this.parts;
    if (pending.get('seal')) log.info({ count: pending.get('seal') }, 'sealing recordings left unsealed by the previous run');
    if (pending.get('upload')) log.info({ count: pending.get('upload') }, 'resuming uploads left by the previous run');
    if (pending.get('delete')) log.info({ count: pending.get('delete') }, 'finishing deletions left by the previous run');
  }

  /** Per storage target (configured, or removed and still owed copies): pending copies, the oldest one's age, attempts. */
  uploadStatus(): TargetUploads[] {
    return uploadStatus(this.parts.index, [...this.#uploads.targets.keys()]);
  }

  /** Retention: journal the deletion of what expired; the delete stage carries it out. */
  async sweep(now: Date, actor: string): Promise<SweepResult> {
    const result = await this.#sweeper.sweep(now, actor, false);
    this.runner.poke();
    return result;
  }

  /** Shutdown: the seals of the calls just ended are finished; uploads and deletions under way too, the rest waits in the journal. */
  drain(): Promise<void> {
    return this.runner.drain(['seal']);
  }
}
