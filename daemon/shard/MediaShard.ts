import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withHeapFlags } from '../capacity/heapFlags.js';
import { ShardError } from '../errors.js';
import { SafeEmitter } from '../events/SafeEmitter.js';
import type { Logger } from '../log.js';
import {
  fromWire,
  REPORT_MS,
  type FromShard,
  type ShardEvents,
  type ShardNotices,
  type ShardReport,
  type ShardRequests,
  type ShardStart,
  type ToShard,
} from './ShardProtocol.js';

export type MediaShardEvents = ShardEvents & {
  /** The process ended without being asked to: its calls are lost. */
  died: [Error];
};

const ENTRY = fileURLToPath(new URL('./shardMain.js', import.meta.url));
/** A shard that does not answer its start within this long is taken for dead. */
const START_TIMEOUT_MS = 30_000;
/** After a close request: how long the shard gets to stop its workers before it is killed. */
const CLOSE_TIMEOUT_MS = 10_000;

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/**
 * The daemon's handle on one media shard (a child process running
 * shardMain): its requests and their answers, its events, and its last report.
 */
export class MediaShard extends SafeEmitter<MediaShardEvents> {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #report: ShardReport | undefined;
  #reportedAt = performance.now();
  #workerPids: readonly number[] = [];
  #closing = false;
  #exited = false;
  readonly #exit: Promise<void>;

  private constructor(
    readonly index: number,
    log: Logger,
  ) {
    super((err, event) => log.error({ err, event, shard: index }, 'a media shard listener failed'));
    // stdout and stderr are the daemon's: the shard's log lines reach journald as the daemon's do.
    this.#child = fork(ENTRY, [], {
      execArgv: withHeapFlags(process.execArgv),
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#child.on('message', (msg) => this.#onMessage(msg as FromShard));
    this.#exit = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exited = true;
        const err = new ShardError('SHARD_LOST', `media shard ${index} (pid ${this.#child.pid}) ended (${signal ?? `exit code ${code}`})`, {
          shard: index,
          pid: this.#child.pid,
          code,
          signal,
        });
        for (const p of this.#pending.values()) p.reject(err);
        this.#pending.clear();
        if (!this.#closing) this.safeEmit('died', err);
        resolve();
      });
    });
    // A spawn failure (no such file, EAGAIN) also ends in 'exit' or is all there is.
    this.#child.on('error', (err) => log.error({ err, shard: index }, 'media shard process error'));
  }

  static async start(start: ShardStart, log: Logger): Promise<MediaShard> {
    const shard = new MediaShard(start.shard, log);
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new ShardError('SHARD_START', `media shard ${start.shard} did not start within ${START_TIMEOUT_MS / 1000} s`)),
          START_TIMEOUT_MS,
        );
      });
      shard.#workerPids = (await Promise.race([shard.request('start', start), timeout])).workerPids;
      return shard;
    } catch (err) {
      await shard.kill();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Its mediasoup workers, as it started or as it reported last (a worker that died is replaced). */
  get workerPids(): readonly number[] {
    return this.#report?.workerPids ?? this.#workerPids;
  }

  /** What the shard reported last (undefined before its first report). */
  get report(): ShardReport | undefined {
    return this.#report;
  }

  /** How long since the shard last reported (it reports every REPORT_MS): a shard too busy to report is as late as that. */
  get reportAgeMs(): number {
    return performance.now() - this.#reportedAt;
  }

  /** How far past its interval the next report is (negative while it is not yet due): the least the shard lags by. */
  get reportLateMs(): number {
    return this.reportAgeMs - REPORT_MS;
  }

  request<K extends keyof ShardRequests>(method: K, ...args: ShardRequests[K]['args']): Promise<ShardRequests[K]['result']> {
    if (this.#exited) return Promise.reject(new ShardError('SHARD_LOST', `media shard ${this.index} has ended`, { shard: this.index }));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#send({ kind: 'request', id, method, args });
    });
  }

  notify<K extends keyof ShardNotices>(method: K, ...args: ShardNotices[K]): void {
    if (!this.#exited) this.#send({ kind: 'notice', method, args });
  }

  /** Ask the shard to stop its mediasoup workers and end; killed if it does not. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#exited) return;
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), CLOSE_TIMEOUT_MS);
    await this.request('close').catch(() => undefined);
    await this.#exit;
    clearTimeout(timer);
  }

  async kill(): Promise<void> {
    this.#closing = true;
    if (!this.#exited) this.#child.kill('SIGKILL');
    await this.#exit;
  }

  #send(msg: ToShard): void {
    try {
      this.#child.send(msg);
    } catch {
      // The channel closed under us: 'exit' follows and rejects what is pending.
    }
  }

  #onMessage(msg: FromShard): void {
    if (msg.kind === 'event') {
      if (msg.name === 'report') {
        this.#report = msg.args[0] as ShardReport;
        this.#reportedAt = performance.now();
      }
      this.safeEmit(msg.name, ...(msg.args as MediaShardEvents[typeof msg.name]));
      return;
    }
    const p = this.#pending.get(msg.id);
    if (!p) return;
    this.#pending.delete(msg.id);
    if (msg.kind === 'result') p.resolve(msg.value);
    else p.reject(fromWire(msg.error, this.index));
  }
}
