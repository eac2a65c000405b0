/** A running call as the shedder sees it. */
export interface SheddableCall {
  /** When it started (monotonic ms): the newest calls are shed first, the oldest restored first. */
  readonly startedMono: number;
  /** The workers whose packets its legs are. */
  readonly workerPids: readonly number[];
  readonly held: boolean;
  hold(held: boolean): void;
}

/** Of a worker's calls, the share shed (at least one) each time its lag is over the limit, and restored each time it is well under. */
const SHED_SHARE = 0.05;
const RESTORE_SHARE = 0.02;
/**
 * What shedding did shows in the lag only once the packets queued before it
 * are handled: probes sent after a shed come back a lag later. So a worker
 * is shed again only after that long (at least SHED_COOLDOWN_MS), and only
 * if its lag has not fallen by a tenth since — a queue that is draining is
 * left to drain, not answered with more shedding.
 */
const SHED_COOLDOWN_MS = 500;
const STILL_HIGH = 0.9;
const RESTORE_COOLDOWN_MS = 1000;

interface LastAction {
  readonly at: number;
  readonly shed: boolean;
  readonly lagMs: number;
}

/**
 * The last line when admission was not enough (a burst, a machine slower
 * than configured for): while a worker's ingest lag is past
 * `media.maxIngestLagMs`, its newest calls are shed — their packets dropped
 * by the worker, their recordings marking the gap — a few at a time, so the
 * queue in front of Node drains and the older calls keep every packet. They
 * are restored, oldest first, once the lag is under half the limit.
 */
export class LoadShedder {
  readonly #lastAction = new Map<number, LastAction>();

  constructor(
    private maxLagMs: number | null,
    private readonly calls: () => Iterable<SheddableCall>,
  ) {}

  configure(maxLagMs: number | null): void {
    this.maxLagMs = maxLagMs;
  }

  /** How many calls are shed now. */
  get shedCalls(): number {
    let n = 0;
    for (const c of this.calls()) if (c.held) n++;
    return n;
  }

  /** A worker's lag sample: shed or restore some of its calls. Returns how many changed, negative for restored. */
  onLag(workerPid: number, lagMs: number, now: number = performance.now()): number {
    const max = this.maxLagMs;
    const restoring = max === null || lagMs < max / 2;
    if (!restoring && lagMs <= max) return 0;
    const last = this.#lastAction.get(workerPid);
    if (last) {
      const since = now - last.at;
      if (restoring ? since < RESTORE_COOLDOWN_MS : since < Math.max(SHED_COOLDOWN_MS, last.shed ? last.lagMs : 0)) return 0;
      if (!restoring && last.shed && lagMs < last.lagMs * STILL_HIGH) return 0;
    }
    // Only past the checks above: this runs for every probe of every worker, and most change nothing.
    const mine = [...this.calls()].filter((c) => c.workerPids.includes(workerPid));
    const candidates = mine
      .filter((c) => c.held === restoring)
      .sort((a, b) => (restoring ? a.startedMono - b.startedMono : b.startedMono - a.startedMono));
    if (candidates.length === 0) return 0;
    const n = Math.min(candidates.length, Math.max(1, Math.ceil(mine.length * (restoring ? RESTORE_SHARE : SHED_SHARE))));
    for (const c of candidates.slice(0, n)) c.hold(!restoring);
    this.#lastAction.set(workerPid, { at: now, shed: !restoring, lagMs });
    return restoring ? -n : n;
  }
}
