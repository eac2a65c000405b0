import type { LoopLoad } from '../capacity/EventLoopGauge.js';
import { CallvaultError, IngestError, RecordingError, ShardError } from '../errors.js';
import type { LogLevel } from '../log.js';
import type { EndReason, RecordingMetadata } from '../record/metadata.js';
import type { CallStats, MediaUpdate, OpenCallRequest, OpenedCall, PlaneEvents, PlaneSettings } from './MediaPlaneTypes.js';

/*
 * What the daemon and a media shard say to each other over the shard's IPC
 * channel (child_process, advanced serialization): requests with an answer,
 * notices without one, and the shard's events. Per call only: a packet never
 * crosses, so the channel carries a few messages a call, plus a report twice a second.
 */

export interface ShardStart {
  readonly shard: number;
  readonly settings: PlaneSettings;
  readonly logLevel: LogLevel;
}

/** Requests the daemon makes of a shard, and their answers. */
export interface ShardRequests {
  start: { args: [ShardStart]; result: { readonly workerPids: readonly number[] } };
  open: { args: [OpenCallRequest]; result: OpenedCall };
  update: { args: [callId: string, change: MediaUpdate]; result: boolean };
  finish: { args: [callId: string, reason: EndReason]; result: RecordingMetadata };
  meta: { args: [callId: string]; result: RecordingMetadata | undefined };
  discard: { args: [callId: string, recordingId: string]; result: boolean };
  close: { args: []; result: undefined };
}

export interface ShardNotices {
  hold: [callId: string, held: boolean];
  resumeWriting: [callId: string];
  configure: [PlaneSettings];
}

/** What a shard measures, sent every REPORT_MS. */
export interface ShardReport {
  readonly stats: readonly (readonly [string, CallStats])[];
  readonly ingestLagMs: number;
  readonly loop: LoopLoad;
  readonly workerPids: readonly number[];
}

export type ShardEvents = Omit<PlaneEvents, 'calls-lost'> & { report: [ShardReport] };

/** The plane events a shard sends on as its LocalPlane emits them, and the daemon's plane passes on as they come. */
export const FORWARDED_EVENTS: readonly (keyof Omit<PlaneEvents, 'calls-lost'>)[] = [
  'lag',
  'end-due',
  'write-failed',
  'write-recovered',
  'refused-source',
  'foreign-packet',
];

export const REPORT_MS = 500;

export interface WireError {
  readonly name: string;
  readonly code: string | undefined;
  readonly message: string;
  readonly context: Readonly<Record<string, unknown>>;
}

export type ToShard =
  | { readonly kind: 'request'; readonly id: number; readonly method: keyof ShardRequests; readonly args: unknown[] }
  | { readonly kind: 'notice'; readonly method: keyof ShardNotices; readonly args: unknown[] };

export type FromShard =
  | { readonly kind: 'result'; readonly id: number; readonly value: unknown }
  | { readonly kind: 'failure'; readonly id: number; readonly error: WireError }
  | { readonly kind: 'event'; readonly name: keyof ShardEvents; readonly args: unknown[] };

export function toWire(err: unknown): WireError {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    name: e.name,
    code: e instanceof CallvaultError ? e.code : (e as NodeJS.ErrnoException).code,
    message: e.message,
    context: e instanceof CallvaultError ? e.context : {},
  };
}

const REVIVED = { IngestError, RecordingError, ShardError } as const;

/** The error as the shard raised it, as far as its class and code go (callers test `IngestError` with `NO_PORT`). */
export function fromWire(w: WireError, shard: number): Error {
  const Kind = REVIVED[w.name as keyof typeof REVIVED];
  if (Kind) return new Kind(w.code ?? 'SHARD', w.message, { ...w.context, shard });
  const err = new ShardError(w.code ?? 'SHARD', w.message, { shard, name: w.name });
  return err;
}
