import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { StorageTargetConfig } from '../config/Config.js';
import type { Logger } from '../log.js';
import type { WorkerPool } from '../seal/WorkerPool.js';
import type { RecordingIndex, UploadJob } from '../store/RecordingIndex.js';
import { createTargets, type StorageTarget } from './StorageTarget.js';

export interface UploaderEvents {
  /** One recording copied to one target, after `seconds`. */
  uploaded: [target: string, seconds: number];
  failed: [target: string];
}

/** Copies at once per target: enough to hide latency, few enough not to flood a mount. */
const PER_TARGET_CONCURRENCY = 2;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 300_000;

interface TargetQueue {
  target: StorageTarget | undefined;
  readonly jobs: UploadJob[];
  inFlight: number;
  failures: number;
  notBefore: number;
  retryTimer: NodeJS.Timeout | undefined;
}

/**
 * Copies sealed recordings to their profile's storage targets. The jobs are
 * journaled in the index (written with `sealed` in one transaction), so a
 * crash or restart resumes exactly the copies not yet confirmed. A failing
 * target backs off as a whole (it is usually the mount, not the recording),
 * and a failing recording goes to the back of its target's queue.
 */
export class Uploader extends EventEmitter<UploaderEvents> {
  private readonly queues = new Map<string, TargetQueue>();
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly dataDir: string,
    private readonly index: RecordingIndex,
    private readonly pool: WorkerPool,
    private readonly log: Logger,
  ) {
    super();
  }

  /** Targets from the config; removed targets keep their queue (reported, not dropped). */
  configure(storage: Readonly<Record<string, StorageTargetConfig>>): void {
    for (const q of this.queues.values()) q.target = undefined;
    for (const [name, target] of createTargets(storage, this.pool)) this.queue(name).target = target;
    for (const name of this.queues.keys()) this.pump(name);
  }

  /** Load what the journal says is still to copy (at start). */
  resume(): number {
    const jobs = this.index.uploadQueue();
    for (const job of jobs) this.add(job);
    return jobs.length;
  }

  /** A recording was sealed with these targets (its jobs are already journaled). */
  enqueue(recordingId: string, targets: readonly string[]): void {
    for (const target of targets) this.add({ recordingId, target, attempts: 0, notBefore: 0 });
  }

  /** The configured targets, by name. */
  get targets(): ReadonlyMap<string, StorageTarget> {
    return new Map([...this.queues].flatMap(([name, q]) => (q.target ? [[name, q.target] as const] : [])));
  }

  /** Recordings waiting for, or being copied to, each target. */
  backlog(): Map<string, number> {
    return new Map([...this.queues].map(([name, q]) => [name, q.jobs.length + q.inFlight]));
  }

  /** Stop starting copies; wait for those under way. Queued jobs stay in the journal. */
  async close(): Promise<void> {
    this.closed = true;
    for (const q of this.queues.values()) clearTimeout(q.retryTimer);
    while (this.running.size) await Promise.allSettled([...this.running]);
  }

  private queue(name: string): TargetQueue {
    let q = this.queues.get(name);
    if (!q) {
      q = { target: undefined, jobs: [], inFlight: 0, failures: 0, notBefore: 0, retryTimer: undefined };
      this.queues.set(name, q);
    }
    return q;
  }

  private add(job: UploadJob): void {
    this.queue(job.target).jobs.push(job);
    this.pump(job.target);
  }

  private pump(name: string): void {
    const q = this.queue(name);
    if (this.closed || !q.target || q.retryTimer) return;
    const wait = q.notBefore - Date.now();
    if (wait > 0) {
      q.retryTimer = setTimeout(() => {
        q.retryTimer = undefined;
        this.pump(name);
      }, wait);
      return;
    }
    while (q.inFlight < PER_TARGET_CONCURRENCY && q.jobs.length) {
      const job = q.jobs.shift() as UploadJob;
      q.inFlight++;
      const run = this.copy(q, q.target, job).finally(() => {
        q.inFlight--;
        this.running.delete(run);
        this.pump(name);
      });
      this.running.add(run);
    }
  }

  private async copy(q: TargetQueue, target: StorageTarget, job: UploadJob): Promise<void> {
    const t0 = performance.now();
    const entry = this.index.get(job.recordingId);
    if (!entry) {
      this.log.error({ recordingId: job.recordingId, target: job.target }, 'upload job for a recording the index does not have; dropped');
      await this.index.dropUploadJob(job);
      return;
    }
    try {
      const doneAt = await target.put({ recordingId: job.recordingId, dir: path.join(this.dataDir, entry.dir), relDir: entry.dir });
      await this.index.uploadDone(job, doneAt);
      q.failures = 0;
      const seconds = (performance.now() - t0) / 1000;
      this.log.info({ recordingId: job.recordingId, target: job.target, ms: Math.round(seconds * 1000) }, 'recording uploaded');
      this.emit('uploaded', job.target, seconds);
    } catch (err) {
      const reason = (err as Error).message;
      q.failures++;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (q.failures - 1));
      q.notBefore = Date.now() + delay;
      await this.index.uploadFailed(job, reason, q.notBefore).catch(() => undefined);
      q.jobs.push({ ...job, attempts: job.attempts + 1, notBefore: q.notBefore });
      this.log.warn({ recordingId: job.recordingId, target: job.target, attempt: job.attempts + 1, retryInMs: delay, err: reason }, 'upload failed; will retry');
      this.emit('failed', job.target);
    }
  }
}
