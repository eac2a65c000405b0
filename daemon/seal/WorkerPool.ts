import { EventEmitter } from 'node:events';
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { CheckEnvelopeResult, CheckEnvelopeTask } from '../../workers/checkEnvelope.js';
import type { DecryptFileResult, DecryptFileTask } from '../../workers/decryptFile.js';
import type { EncryptFileResult, EncryptFileTask } from '../../workers/encryptFile.js';
import type { HashFileResult, HashFileTask } from '../../workers/hashFile.js';
import type { ReencryptFileResult, ReencryptFileTask } from '../../workers/reencryptFile.js';
import type { RewrapFileResult, RewrapFileTask } from '../../workers/rewrapFile.js';
import type { SignTask } from '../../workers/sign.js';
import type { UnwrapDekTask } from '../../workers/unwrapDek.js';

const taskModule = (name: string) => new URL(`../../workers/${name}.js`, import.meta.url).href;

/** Task modules by kind; each is a default-exported pure function in workers/. */
const TASKS = {
  hashFile: taskModule('hashFile'),
  sign: taskModule('sign'),
  encryptFile: taskModule('encryptFile'),
  decryptFile: taskModule('decryptFile'),
  checkEnvelope: taskModule('checkEnvelope'),
  unwrapDek: taskModule('unwrapDek'),
  rewrapFile: taskModule('rewrapFile'),
  reencryptFile: taskModule('reencryptFile'),
} as const;

export type TaskKind = keyof typeof TASKS;

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

export class WorkerPool extends EventEmitter<WorkerPoolEvents> {
  private readonly pool: Piscina;
  private readonly signQueue: SignRequest[] = [];
  private signTasksInFlight = 0;
  private signDispatchScheduled = false;

  constructor(threads: number | 'auto') {
    super();
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

  private run<K extends TaskKind, R>(kind: K, input: unknown): Promise<R> {
    return this.timed(kind, this.pool.run(input, { filename: TASKS[kind] }) as Promise<R>);
  }

  hashFile(path: string): Promise<HashFileResult> {
    return this.run('hashFile', { path } satisfies HashFileTask);
  }

  encryptFile(t: EncryptFileTask): Promise<EncryptFileResult> {
    return this.run('encryptFile', t);
  }

  /** Decrypt to `dest`, or with no dest only check every chunk. */
  decryptFile(t: DecryptFileTask): Promise<DecryptFileResult> {
    return this.run('decryptFile', t);
  }

  /** Hash an envelope as stored and check that it decrypts to the plaintext it was made from. */
  checkEnvelope(t: CheckEnvelopeTask): Promise<CheckEnvelopeResult> {
    return this.run('checkEnvelope', t);
  }

  rewrapFile(t: RewrapFileTask): Promise<RewrapFileResult> {
    return this.run('rewrapFile', t);
  }

  /** A new envelope of the same plaintext under a fresh data key, no plaintext file in between. */
  reencryptFile(t: ReencryptFileTask): Promise<ReencryptFileResult> {
    return this.run('reencryptFile', t);
  }

  unwrapDeks(t: UnwrapDekTask): Promise<Uint8Array[]> {
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
      const task: SignTask = { data: batch.map((r) => r.data), key };
      this.signTasksInFlight++;
      this.run<'sign', Uint8Array[]>('sign', task)
        .then(
          (sigs) => batch.forEach((r, i) => r.resolve(sigs[i]!)),
          (err: unknown) => batch.forEach((r) => r.reject(err)),
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
      () => this.emit('task', kind, (performance.now() - t0) / 1000),
      () => this.emit('task', kind, (performance.now() - t0) / 1000),
    );
    return run;
  }

  /** Let queued tasks finish, then stop the threads. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
