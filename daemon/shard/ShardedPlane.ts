import os from 'node:os';
import { ShardError } from '../errors.js';
import { SafeEmitter } from '../events/SafeEmitter.js';
import type { LoopLoad } from '../capacity/EventLoopGauge.js';
import type { Logger, LogLevel } from '../log.js';
import type { EndReason, RecordingMetadata } from '../record/metadata.js';
import type { CallStats, MediaPlane, MediaUpdate, OpenCallRequest, OpenedCall, PlaneEvents, PlaneSettings } from './MediaPlaneTypes.js';
import { MediaShard } from './MediaShard.js';
import { FORWARDED_EVENTS, REPORT_MS } from './ShardProtocol.js';

/** A shard that has not reported for this long is taken as fully busy. */
const STALE_REPORT_MS = 4 * REPORT_MS;
/** A shard that keeps dying is started again after 1 s, 2 s, … up to this. */
const MAX_RESTART_DELAY_MS = 30_000;
/** A shard that ran this long before it died starts again at once. */
const HEALTHY_MS = 60_000;
/**
 * How long a call's open may take on its shard before it is refused with 503 SHARD_BUSY: a shard that
 * stalls (its disk, its CPU taken) must not hold an SRC's INVITE until the SRC gives up on its own.
 * An open takes a few ms; a minute of SIP retransmissions is what an SRC waits.
 */
export const OPEN_TIMEOUT_MS = 5000;

interface Abandoned {
  readonly shard: MediaShard;
  readonly recordingId: string;
  readonly opening: Promise<OpenedCall>;
}

/**
 * The media plane in `media.shards` child processes. A call lives on one
 * shard from start to end: the one with the fewest calls (the least busy
 * event loop among equals). Each shard takes its own share of the RTP port
 * range and of `media.workers`. A shard that dies is started again; its
 * calls are reported lost ('calls-lost'), for the recorder to recover from disk.
 */
export class ShardedPlane extends SafeEmitter<PlaneEvents> implements MediaPlane {
  readonly #shards: (MediaShard | undefined)[];
  readonly #callShard = new Map<string, MediaShard>();
  /** Recording ids of the calls on a shard: a report sent before a call finished still lists it. */
  readonly #recordings = new Map<string, string>();
  /** Opens given up on (SHARD_BUSY) and not yet undone, by call id. */
  readonly #abandoned = new Map<string, Abandoned>();
  readonly #startedAt: number[] = [];
  readonly #restartDelay: number[] = [];
  #closing = false;
  readonly #overdueCheck: NodeJS.Timeout;

  private constructor(
    count: number,
    private settings: PlaneSettings,
    private readonly logLevel: LogLevel,
    private readonly log: Logger,
  ) {
    super((err, event) => log.error({ err, event }, 'a media plane listener failed; the call goes on'));
    this.#shards = new Array<MediaShard | undefined>(count).fill(undefined);
    this.#overdueCheck = setInterval(() => this.#reportOverdue(), REPORT_MS);
    this.#overdueCheck.unref();
  }

  static async create(count: number, settings: PlaneSettings, logLevel: LogLevel, log: Logger): Promise<ShardedPlane> {
    const plane = new ShardedPlane(count, settings, logLevel, log);
    const { portMin, portMax } = settings.media;
    const slice = Math.floor((portMax - portMin + 1) / count);
    const probes = plane.#settingsOf(0).media.workers as number;
    // Each worker's probe takes a port of its shard's slice; a slice without room for one call is a config mistake.
    if (slice < probes + 2)
      throw new ShardError(
        'PORT_RANGE',
        `media.portMin-portMax (${portMin}-${portMax}) split over ${count} media shards leaves ${slice} ports each: too few for ${probes} worker probe(s) and one call's two legs; widen the range or lower media.shards`,
        { portMin, portMax, shards: count },
      );
    try {
      for (let i = 0; i < count; i++) await plane.#start(i);
    } catch (err) {
      await plane.close();
      throw err;
    }
    return plane;
  }

  get announcedIp(): string {
    return this.settings.media.announcedAddress ?? this.settings.media.listenIp;
  }

  /** A shard whose report is overdue counts as lagging by how overdue it is: a thread too busy to report is as far behind. */
  get ingestLagMs(): number {
    return this.#live().reduce((worst, s) => Math.max(worst, s.report?.ingestLagMs ?? 0, s.reportLateMs), 0);
  }

  get workerPids(): readonly number[] {
    return this.#live().flatMap((s) => s.workerPids);
  }

  get runningShards(): number {
    return this.#live().length;
  }

  get mediaLoop(): LoopLoad {
    let utilization = 0;
    let delayMs = 0;
    for (const s of this.#live()) {
      const overdue = s.reportAgeMs > STALE_REPORT_MS;
      utilization = Math.max(utilization, overdue ? 1 : (s.report?.loop.utilization ?? 0));
      delayMs = Math.max(delayMs, s.report?.loop.delayMs ?? 0);
    }
    return { utilization, delayMs };
  }

  /** The shards' process ids (undefined for one being restarted). */
  get shardPids(): (number | undefined)[] {
    return this.#shards.map((s) => s?.pid);
  }

  async open(req: OpenCallRequest): Promise<OpenedCall> {
    const { callId } = req.info;
    if (this.#abandoned.has(callId))
      throw new ShardError('SHARD_BUSY', `the last attempt at call ${callId} is still being undone on its media shard`, { callId });
    const shard = this.#choose();
    // Counted at once: calls set up in the same turn spread over the shards.
    this.#callShard.set(callId, shard);
    const opening = shard.request('open', req);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#abandoned.set(callId, { shard, recordingId: req.recordingId, opening });
        reject(
          new ShardError('SHARD_BUSY', `media shard ${shard.index} did not open the call within ${OPEN_TIMEOUT_MS / 1000} s`, {
            callId,
            shard: shard.index,
          }),
        );
      }, OPEN_TIMEOUT_MS);
    });
    try {
      const opened = await Promise.race([opening, late]);
      this.#recordings.set(callId, req.recordingId);
      return opened;
    } catch (err) {
      this.#callShard.delete(callId);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async discard(callId: string, recordingId: string): Promise<boolean> {
    const given = this.#abandoned.get(callId);
    if (!given || given.recordingId !== recordingId) return true;
    try {
      try {
        await given.opening;
      } catch (err) {
        // The open failed after all: nothing was left, unless the shard died under it (then recovery decides).
        return !(err instanceof ShardError && err.code === 'SHARD_LOST');
      }
      return await given.shard.request('discard', callId, recordingId).catch(() => false);
    } finally {
      // Only now may the call's id be opened again: the shard holds no call under it.
      this.#abandoned.delete(callId);
    }
  }

  async update(callId: string, change: MediaUpdate): Promise<boolean> {
    const shard = this.#callShard.get(callId);
    return shard ? shard.request('update', callId, change) : false;
  }

  hold(callId: string, held: boolean): void {
    this.#callShard.get(callId)?.notify('hold', callId, held);
  }

  resumeWriting(callId: string): void {
    this.#callShard.get(callId)?.notify('resumeWriting', callId);
  }

  async finish(callId: string, reason: EndReason): Promise<RecordingMetadata> {
    const shard = this.#callShard.get(callId);
    if (!shard) throw new ShardError('SHARD_LOST', `call ${callId} is on no running media shard`, { callId });
    try {
      return await shard.request('finish', callId, reason);
    } finally {
      if (this.#callShard.get(callId) === shard) this.#forget(callId);
    }
  }

  async meta(callId: string): Promise<RecordingMetadata | undefined> {
    const shard = this.#callShard.get(callId);
    return shard ? shard.request('meta', callId).catch(() => undefined) : undefined;
  }

  /** As the shards last reported, less the calls finished since (their counts are in the final metadata now). */
  stats(): ReadonlyMap<string, CallStats> {
    const running = new Set(this.#recordings.values());
    return new Map(this.#live().flatMap((s) => (s.report?.stats ?? []).filter(([id]) => running.has(id))));
  }

  configure(settings: PlaneSettings): void {
    this.settings = settings;
    for (const [i, s] of this.#shards.entries()) s?.notify('configure', this.#settingsOf(i));
  }

  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#overdueCheck);
    await Promise.all(this.#shards.map((s) => s?.close()));
    this.#shards.fill(undefined);
  }

  /**
   * A shard starved of CPU cannot measure its own lag: the probe packet waits behind the queue it would
   * measure. Its report being late says as much, so past a report's interval the lateness is its workers'
   * lag, for shedding as for admission (ingestLagMs).
   */
  #reportOverdue(): void {
    for (const s of this.#live()) {
      const lateMs = s.reportLateMs;
      if (lateMs > REPORT_MS) for (const pid of s.workerPids) this.safeEmit('lag', pid, lateMs);
    }
  }

  #forget(callId: string): void {
    this.#callShard.delete(callId);
    this.#recordings.delete(callId);
  }

  #live(): MediaShard[] {
    return this.#shards.filter((s): s is MediaShard => s !== undefined);
  }

  #choose(): MediaShard {
    const calls = new Map<MediaShard, number>();
    for (const s of this.#callShard.values()) calls.set(s, (calls.get(s) ?? 0) + 1);
    const load = (s: MediaShard) => [calls.get(s) ?? 0, s.report?.loop.utilization ?? 0] as const;
    let best: MediaShard | undefined;
    for (const s of this.#live()) {
      if (!best) best = s;
      else {
        const [a, b] = [load(s), load(best)];
        if (a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])) best = s;
      }
    }
    if (!best) throw new ShardError('NO_SHARD', 'no media shard is running (being restarted)');
    return best;
  }

  /** Shard i's share: its slice of the port range and of the workers. */
  #settingsOf(i: number): PlaneSettings {
    const { media } = this.settings;
    const n = this.#shards.length;
    const span = Math.floor((media.portMax - media.portMin + 1) / n);
    const workers = Math.max(1, Math.round((media.workers === 'auto' ? os.availableParallelism() : media.workers) / n));
    const portMin = media.portMin + i * span;
    return { ...this.settings, media: { ...media, workers, portMin, portMax: i === n - 1 ? media.portMax : portMin + span - 1 } };
  }

  async #start(i: number): Promise<void> {
    const settings = this.#settingsOf(i);
    const shard = await MediaShard.start({ shard: i, settings, logLevel: this.logLevel }, this.log);
    for (const name of FORWARDED_EVENTS) shard.on(name, (...args: unknown[]) => this.safeEmit(name, ...(args as PlaneEvents[typeof name])));
    shard.on('died', (err) => this.#onDied(i, shard, err));
    this.#shards[i] = shard;
    this.#startedAt[i] = performance.now();
    this.log.info(
      { shard: i, pid: shard.pid, workerPids: shard.workerPids, ports: `${settings.media.portMin}-${settings.media.portMax}` },
      'media shard ready',
    );
  }

  #onDied(i: number, shard: MediaShard, err: Error): void {
    if (this.#shards[i] !== shard) return;
    this.#shards[i] = undefined;
    const lost = [...this.#callShard].filter(([, s]) => s === shard).map(([callId]) => callId);
    for (const callId of lost) this.#forget(callId);
    this.log.error(
      { err, shard: i, pid: shard.pid, calls: lost.length },
      'media shard died; its calls are recovered from disk and it is started again',
    );
    this.safeEmit('calls-lost', lost, err);
    if (this.#closing) return;
    const ranFor = performance.now() - (this.#startedAt[i] ?? 0);
    const delay = ranFor >= HEALTHY_MS ? 0 : Math.min(MAX_RESTART_DELAY_MS, Math.max(1000, (this.#restartDelay[i] ?? 500) * 2));
    this.#restartDelay[i] = delay;
    setTimeout(() => void this.#restart(i), delay).unref();
  }

  async #restart(i: number): Promise<void> {
    if (this.#closing || this.#shards[i]) return;
    try {
      await this.#start(i);
    } catch (err) {
      const delay = Math.min(MAX_RESTART_DELAY_MS, (this.#restartDelay[i] ?? 500) * 2);
      this.#restartDelay[i] = delay;
      this.log.error({ err, shard: i, retryInMs: delay }, 'cannot start media shard again; trying later');
      setTimeout(() => void this.#restart(i), delay).unref();
    }
  }
}
