import { EventLoopGauge, type LoopLoad } from './EventLoopGauge.js';
import type { AdmissionConfig, AdmissionVerdict, CapacitySignal, CapacitySignals } from './CapacityTypes.js';

/** Monotonic packet counts of the calls running now, by recording. */
export type LiveCounters = () => ReadonlyMap<string, { readonly received: number; readonly late: number }>;

const WINDOW_MS = 1000;
/**
 * The packet rate and late share are taken over this many windows: a media shard's counters arrive in
 * its reports every 500 ms, so one 1 s window holds one to three of them and read 200 packets/s as
 * anything from 100 to 300 (a call admitted past maxPacketsPerSecond, or refused under it).
 */
const RATE_WINDOWS = 3;
/** A signal that refused a call admits again only below this share of its limit, so admission at the edge does not flap call by call. */
const HYSTERESIS = 0.95;

/**
 * Measures, once a second, what decides whether one more call fits: how
 * long packets wait between a mediasoup worker and us, how busy the event
 * loop was and its delay, the packets placed per second and how many of them
 * came too late, the pool's queue. Admission (`admit`) refuses a new call
 * when a signal is past its limit — the calls already running are never cut
 * to make room — and says which signal and when to try again, so the SRC or
 * PBX sends the call to another recorder early instead of every call here
 * degrading at once.
 */
export class CapacityMonitor {
  #signals: CapacitySignals = { ingestLagMs: 0, eventLoopUtilization: 0, eventLoopDelayMs: 0, packetsPerSecond: 0, lateRatio: 0, poolQueue: 0 };
  #prev = new Map<string, { received: number; late: number }>();
  /** The last RATE_WINDOWS windows' packets, newest last. */
  #windows: { received: number; late: number; seconds: number }[] = [];
  readonly #loop = new EventLoopGauge();
  #timer: NodeJS.Timeout | undefined;
  readonly #refusing = new Set<CapacitySignal>();
  #last = 0;

  constructor(
    private config: AdmissionConfig,
    private readonly live: LiveCounters,
    private readonly poolQueue: () => number,
    /** The ingest lag now (MediaIngest.ingestLagMs). */
    private readonly ingestLag: () => number,
    /** The busiest media shard's event loop, when packets are handled on other threads than this one (null: on this one). */
    private readonly mediaLoop: () => LoopLoad | null = () => null,
  ) {}

  start(): void {
    this.#loop.start();
    this.#last = performance.now();
    this.#timer = setInterval(() => this.#sample(), WINDOW_MS).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#loop.stop();
  }

  /** New limits (SIGHUP). */
  configure(config: AdmissionConfig): void {
    this.config = config;
  }

  get signals(): CapacitySignals {
    return this.#signals;
  }

  /** The share of the tightest configured limit still free (1: idle, 0 or less: new calls are refused); 1 when no limit is set. */
  get headroom(): number {
    const used = this.#limits().map(([signal, limit]) => this.#projected(signal) / limit);
    return used.length ? 1 - Math.max(...used) : 1;
  }

  admit(): AdmissionVerdict {
    const over: { signal: CapacitySignal; value: number; limit: number }[] = [];
    for (const [signal, limit] of this.#limits()) {
      const value = this.#projected(signal);
      if (value > (this.#refusing.has(signal) ? limit * HYSTERESIS : limit)) {
        this.#refusing.add(signal);
        over.push({ signal, value, limit });
      } else this.#refusing.delete(signal);
    }
    const [first] = over;
    if (!first) return { admit: true };
    return { admit: false, ...first, over, retryAfterSeconds: over.some((o) => o.signal === 'poolQueue') ? 30 : 10 };
  }

  /** A signal as it would be with one more call (only the packet rate grows by a call's share). */
  #projected(signal: CapacitySignal): number {
    return signal === 'packetsPerSecond' ? this.#signals.packetsPerSecond + this.config.packetsPerCall : this.#signals[signal];
  }

  #limits(): [CapacitySignal, number][] {
    const c = this.config;
    const all: [CapacitySignal, number | null][] = [
      ['ingestLagMs', c.maxIngestLagMs],
      ['eventLoopUtilization', c.maxEventLoopUtilization],
      ['eventLoopDelayMs', c.maxEventLoopDelayMs],
      ['packetsPerSecond', c.maxPacketsPerSecond],
      ['lateRatio', c.maxLateRatio],
      ['poolQueue', c.maxPoolQueue],
    ];
    return all.filter((e): e is [CapacitySignal, number] => e[1] !== null);
  }

  #sample(): void {
    const now = performance.now();
    const seconds = Math.max(0.001, (now - this.#last) / 1000);
    this.#last = now;
    let received = 0;
    let late = 0;
    const counters = this.live();
    for (const [id, c] of counters) {
      const p = this.#prev.get(id) ?? { received: 0, late: 0 };
      received += Math.max(0, c.received - p.received);
      late += Math.max(0, c.late - p.late);
    }
    this.#prev = new Map([...counters].map(([id, c]) => [id, { received: c.received, late: c.late }]));
    this.#windows = [...this.#windows.slice(1 - RATE_WINDOWS), { received, late, seconds }];
    const sum = this.#windows.reduce((a, w) => ({ received: a.received + w.received, late: a.late + w.late, seconds: a.seconds + w.seconds }));
    // The thread that handles the packets is the one that runs out first: this one, or the busiest shard's.
    const own = this.#loop.sample();
    const media = this.mediaLoop();
    this.#signals = {
      ingestLagMs: this.ingestLag(),
      eventLoopUtilization: Math.max(own.utilization, media?.utilization ?? 0),
      eventLoopDelayMs: Math.max(own.delayMs, media?.delayMs ?? 0),
      packetsPerSecond: sum.received / sum.seconds,
      lateRatio: sum.received + sum.late ? sum.late / (sum.received + sum.late) : 0,
      poolQueue: this.poolQueue(),
    };
  }
}
