import { SafeEmitter } from '../events/SafeEmitter.js';
import type { Logger } from '../log.js';
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type checkEnvelope from '../../workers/checkEnvelope.js';
import type decryptFile from '../../workers/decryptFile.js';
import type encryptFile from '../../workers/encryptFile.js';
import type hashFile from '../../workers/hashFile.js';
import type reencryptFile from '../../workers/reencryptFile.js';
import type rewrapFile from '../../workers/rewrapFile.js';
import type sign from '../../workers/sign.js';
import type unwrapDek from '../../workers/unwrapDek.js';

/** Every pool task, typed by its module's own function: its input and its result come from there, not from the caller. */
interface TaskMap {
  hashFile: typeof hashFile;
  sign: typeof sign;
  encryptFile: typeof encryptFile;
  decryptFile: typeof decryptFile;
  checkEnvelope: typeof checkEnvelope;
  unwrapDek: typeof unwrapDek;
  rewrapFile: typeof rewrapFile;
  reencryptFile: typeof reencryptFile;
}

export type TaskKind = keyof TaskMap;
type TaskInput<K extends TaskKind> = Parameters<TaskMap[K]>[0];
type TaskResult<K extends TaskKind> = ReturnType<TaskMap[K]>;

const taskModule = (name: string) => new URL(`../../workers/${name}.js`, import.meta.url).href;

/** Task modules by kind; each is a default-exported pure function in workers/. */
const TASKS: Readonly<Record<TaskKind, string>> = {
  hashFile: taskModule('hashFile'),
  sign: taskModule('sign'),
  encryptFile: taskModule('encryptFile'),
  decryptFile: taskModule('decryptFile'),
  checkEnvelope: taskModule('checkEnvelope'),
  unwrapDek: taskModule('unwrapDek'),
  rewrapFile: taskModule('rewrapFile'),
  reencryptFile: taskModule('reencryptFile'),
};

/** Most signatures one task carries; bounds the latency a batch adds to its first request. */
const MAX_SIGN_BATCH = 64;

interface SignRequest {
  readonly data: Uint8Array;
  readonly key: KeyObject;
  readonly resolve: (sig: Uint8Array) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The Piscina pool that does the CPU-heavy part of sealing off the main
 * thread, so hashing a 10-hour call never delays a packet of a live one.
 */
export interface WorkerPoolEvents {
  /** A task finished (or failed) after `seconds` from submission, queueing included. */
  task: [TaskKind, number];
}

export class WorkerPool extends SafeEmitter<WorkerPoolEvents> {
  private readonly pool: Piscina;
  private readonly signQueue: SignRequest[] = [];
  private signTasksInFlight = 0;
  private signDispatchScheduled = false;

  constructor(threads: number | 'auto', log?: Logger) {
    // A listener (metrics) must never turn a task's result into a failure.
    super((err, event) =>
      log ? log.error({ err, event }, 'a pool listener failed') : process.emitWarning(`a pool listener failed: ${String(err)}`),
    );
    const n = threads === 'auto' ? availableParallelism() : threads;
    this.pool = new Piscina({ minThreads: n, maxThreads: n, idleTimeout: 60_000 });
  }

  get threads(): number {
    return this.pool.maxThreads;
  }

  /** Tasks waiting for a free thread. */
  get queueSize(): number {
    return this.pool.queueSize;
  }

  private run<K extends TaskKind>(kind: K, input: TaskInput<K>): Promise<TaskResult<K>> {
    return this.timed(kind, this.pool.run(input, { filename: TASKS[kind] }) as Promise<TaskResult<K>>);
  }

  hashFile(path: string): Promise<TaskResult<'hashFile'>> {
    return this.run('hashFile', { path });
  }

  encryptFile(t: TaskInput<'encryptFile'>): Promise<TaskResult<'encryptFile'>> {
    return this.run('encryptFile', t);
  }

  /** Decrypt to `dest`, or with no dest only check every chunk. */
  decryptFile(t: TaskInput<'decryptFile'>): Promise<TaskResult<'decryptFile'>> {
    return this.run('decryptFile', t);
  }

  /** Hash an envelope as stored and check that it decrypts to the plaintext it was made from. */
  checkEnvelope(t: TaskInput<'checkEnvelope'>): Promise<TaskResult<'checkEnvelope'>> {
    return this.run('checkEnvelope', t);
  }

  rewrapFile(t: TaskInput<'rewrapFile'>): Promise<TaskResult<'rewrapFile'>> {
    return this.run('rewrapFile', t);
  }

  /** A new envelope of the same plaintext under a fresh data key, no plaintext file in between. */
  reencryptFile(t: TaskInput<'reencryptFile'>): Promise<TaskResult<'reencryptFile'>> {
    return this.run('reencryptFile', t);
  }

  unwrapDeks(t: TaskInput<'unwrapDek'>): Promise<TaskResult<'unwrapDek'>> {
    return this.run('unwrapDek', t);
  }

  /**
   * Sign one payload. Requests are batched adaptively: those made in the same
   * turn of the event loop leave together, and while every thread is busy
   * the rest queue and leave together next, so a burst of hang-ups costs one
   * thread hand-off per batch instead of per recording.
   */
  sign(data: Uint8Array, key: KeyObject): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      // A copy with its own ArrayBuffer: a small Buffer is often a view on Node's
      // shared 8 KiB pool, and structured clone would ship the whole pool.
      this.signQueue.push({ data: new Uint8Array(data), key, resolve, reject });
      this.scheduleSignDispatch();
    });
  }

  /** Dispatch once this turn of the event loop is over, so what arrives together leaves together. */
  private scheduleSignDispatch(): void {
    if (this.signDispatchScheduled) return;
    this.signDispatchScheduled = true;
    setImmediate(() => {
      this.signDispatchScheduled = false;
      this.dispatchSigns();
    });
  }

  private dispatchSigns(): void {
    // One task per thread: a second one queued behind it leaves with a smaller
    // batch, and measured slower (native-free-bench/seal).
    while (this.signQueue.length && this.signTasksInFlight < this.threads) {
      const key = this.signQueue[0]!.key;
      let n = 1;
      while (n < this.signQueue.length && n < MAX_SIGN_BATCH && this.signQueue[n]!.key === key) n++;
      const batch = this.signQueue.splice(0, n);
      const task: TaskInput<'sign'> = { data: batch.map((r) => r.data), key };
      this.signTasksInFlight++;
      this.run('sign', task)
        .then(
          (sigs) => {
            for (const [i, r] of batch.entries()) r.resolve(sigs[i]!);
          },
          (err: unknown) => {
            for (const r of batch) r.reject(err);
          },
        )
        .finally(() => {
          this.signTasksInFlight--;
          this.scheduleSignDispatch();
        });
    }
  }

  private timed<T>(kind: TaskKind, run: Promise<T>): Promise<T> {
    const t0 = performance.now();
    void run.then(
      () => this.safeEmit('task', kind, (performance.now() - t0) / 1000),
      () => this.safeEmit('task', kind, (performance.now() - t0) / 1000),
    );
    return run;
  }

  /** Let queued tasks finish, then stop the threads. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
