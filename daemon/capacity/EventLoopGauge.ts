import { monitorEventLoopDelay, performance as perf, type EventLoopUtilization } from 'node:perf_hooks';

type IntervalHistogram = ReturnType<typeof monitorEventLoopDelay>;

/** How busy one thread's event loop is: the share of the last windows it was busy, and its delay's p99 since the last sample. */
export interface LoopLoad {
  readonly utilization: number;
  readonly delayMs: number;
}

/** The utilization is taken over this many samples: one busy second (a burst of set-ups, a collection) is not the load. */
const ELU_WINDOWS = 5;

/**
 * The event loop of the thread it runs on, sampled by its owner once a
 * window (the capacity monitor's second, a media shard's stats push).
 */
export class EventLoopGauge {
  readonly #histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  /** Snapshots of the event loop's utilization, one per sample, oldest first. */
  #elu: EventLoopUtilization[] = [];

  start(): void {
    this.#histogram.enable();
    this.#elu = [perf.eventLoopUtilization()];
  }

  stop(): void {
    this.#histogram.disable();
  }

  /** The load since the oldest kept sample (utilization) and since the last (delay). */
  sample(): LoopLoad {
    const elu = perf.eventLoopUtilization();
    const oldest = this.#elu[0];
    const window = oldest ? perf.eventLoopUtilization(elu, oldest) : elu;
    this.#elu = [...this.#elu, elu].slice(-ELU_WINDOWS);
    const delayMs = this.#histogram.count ? this.#histogram.percentile(99) / 1e6 : 0;
    this.#histogram.reset();
    return { utilization: window.utilization, delayMs };
  }
}
