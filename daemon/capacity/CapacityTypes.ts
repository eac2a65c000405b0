/** What the monitor measures, over its last one-second window. */
export interface CapacitySignals {
  /** Ingest lag (IngestProbe) of the worker that lags most, the median of its last 5 s: how long a packet the worker received waits for the thread that handles it. */
  readonly ingestLagMs: number;
  /** Share of the last 5 s the event loop was busy (0–1): at 1 the thread that handles every packet has no time left and queues grow. */
  readonly eventLoopUtilization: number;
  /** p99 of the event loop's delay: how late the thread that handles every packet runs what is due. */
  readonly eventLoopDelayMs: number;
  /** RTP packets placed on call timelines per second. */
  readonly packetsPerSecond: number;
  /** Of those, the share that arrived after their place was written (beyond the jitter buffer). */
  readonly lateRatio: number;
  /** Tasks waiting for a pool thread (seals, hashes, signatures). */
  readonly poolQueue: number;
}

export type CapacitySignal = keyof CapacitySignals;

/** `calls.admission`: a limit per signal, null = that signal does not refuse calls. */
export interface AdmissionConfig {
  readonly maxIngestLagMs: number | null;
  readonly maxEventLoopUtilization: number | null;
  readonly maxEventLoopDelayMs: number | null;
  readonly maxPacketsPerSecond: number | null;
  readonly maxLateRatio: number | null;
  readonly maxPoolQueue: number | null;
  /** Packets per second a new call is expected to add (two legs at 20 ms: 100). */
  readonly packetsPerCall: number;
}

export type AdmissionVerdict =
  | { readonly admit: true }
  | {
      readonly admit: false;
      readonly signal: CapacitySignal;
      readonly value: number;
      readonly limit: number;
      readonly retryAfterSeconds: number;
      /** Every signal over its limit, the first being `signal`. */
      readonly over: readonly { readonly signal: CapacitySignal; readonly value: number; readonly limit: number }[];
    };
