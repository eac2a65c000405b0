import type { Config } from '../config/Config.js';
import type { LoopLoad } from '../capacity/EventLoopGauge.js';
import type { LawPayloadTypes, LegRole, LegStreamChange, MediaAddress, SrtpKey } from '../ingest/LegSource.js';
import type { EndReason, RecordingMetadata, SiprecUpdate, StreamChangeNote } from '../record/metadata.js';
import type { RecordingPolicy } from '../record/profiles.js';
import type { CallInfo } from '../record/Recording.js';

/*
 * The media plane is where a call's packets go: its legs (mediasoup
 * transports), its timelines and its writers. It runs on the main thread
 * (`media.shards: 0`, LocalPlane) or in media shards, child processes that
 * each own a LocalPlane (ShardedPlane). Everything that crosses between the
 * two is here, and is plain data: it goes over the shards' IPC channel as is.
 */

/** What the plane needs to know about one leg of a new call. */
export interface PlaneLegRequest {
  readonly ssrc?: number | undefined;
  readonly media?: MediaAddress | undefined;
  readonly srtp?: SrtpKey | undefined;
}

/** A KEK's public half, as it crosses to a shard (a KeyObject does not): SPKI PEM. */
export interface PublicKek {
  readonly id: string;
  readonly publicKeyPem: string;
}

export interface OpenCallRequest {
  readonly recordingId: string;
  readonly info: CallInfo;
  readonly policy: RecordingPolicy;
  readonly legs: Readonly<Record<LegRole, PlaneLegRequest>>;
  readonly payloadType: number;
  readonly dtmfPayloadType: number;
  /** Who asked for the call: the only source RTP is taken from when media.allowedSources is not set. */
  readonly fromAddress: string | undefined;
  readonly encryptTo: PublicKek | null;
}

export interface OpenedLeg {
  readonly port: number;
  readonly payloadTypes: LawPayloadTypes;
  readonly dtmfPayloadType: number;
  readonly srtp?: SrtpKey | undefined;
}

export interface OpenedCall {
  /** The metadata as written when the recording started. */
  readonly meta: RecordingMetadata;
  readonly legs: Readonly<Record<LegRole, OpenedLeg>>;
  /** The mediasoup workers its legs are on (what the load shedder groups calls by). */
  readonly workerPids: readonly number[];
}

/** What a SIPREC SRC changed mid-call, as far as the media is concerned. */
export interface MediaUpdate {
  readonly paused?: Partial<Record<LegRole, boolean>>;
  readonly relearn?: Partial<Record<LegRole, LegStreamChange>>;
  readonly streamChanges?: readonly StreamChangeNote[];
  readonly siprec?: {
    readonly method: string;
    readonly participants: SiprecUpdate['participants'];
    readonly numbers: Partial<Record<LegRole, string>>;
  };
}

export interface LegCounters {
  readonly received: number;
  readonly late: number;
  readonly duplicate: number;
  readonly outOfSequence: number;
}

/** One running call's counters (monotonic while it runs). */
export interface CallStats {
  readonly legs: Readonly<Record<LegRole, LegCounters>>;
  readonly bytesWritten: number;
  /** Audio handed to the file system and not written yet. */
  readonly writeBacklogBytes: number;
}

/** What keeps a recording's audio off the disk now. */
export interface WriteFailure {
  readonly code: string;
  readonly message: string;
  /** Call-clock ms at which it began. */
  readonly atMs: number | undefined;
}

/** The settings a plane works with; new calls take a reconfigured plane's new ones. */
export interface PlaneSettings {
  readonly dataDir: string;
  readonly instanceId: string;
  readonly media: Config['media'];
  readonly calls: Pick<Config['calls'], 'rtpTimeoutSeconds' | 'maxDurationSeconds'>;
  readonly maxWriteBacklogBytes: number;
}

export interface PlaneEvents {
  /** A mediasoup worker's ingest lag now, every probe interval. */
  lag: [workerPid: number, lagMs: number];
  /** The plane says a call must end: its RTP stopped, it reached its maximum length, its worker died. */
  'end-due': [callId: string, reason: EndReason];
  /** A recording's audio stopped reaching the disk; the call goes on. */
  'write-failed': [callId: string, failure: WriteFailure];
  /** It reaches the disk again (a stall that caught up, a resumed writer that works). */
  'write-recovered': [callId: string];
  /** A sender outside the allowed sources reached a leg's port first. */
  'refused-source': [LegRole];
  /** A packet from a second source to a leg that has its source was dropped. */
  'foreign-packet': [];
  /** A media shard died: these calls are gone from it, their files are as the crash left them. */
  'calls-lost': [callIds: readonly string[], err: Error];
}

/** The media plane, on this thread or in shards: one interface, so the recorder does not care which. */
export interface MediaPlane {
  readonly announcedIp: string;
  /** The worst worker's ingest lag (median of its last 5 s). */
  readonly ingestLagMs: number;
  readonly workerPids: readonly number[];
  /** Media shards running now (0 with `media.shards: 0`). */
  readonly runningShards: number;
  /** The busiest shard's event loop; null when the packets are handled on this thread. */
  readonly mediaLoop: LoopLoad | null;
  open(req: OpenCallRequest): Promise<OpenedCall>;
  /** False when the plane has no such call. */
  update(callId: string, change: MediaUpdate): Promise<boolean>;
  /** Shed (held) or take again a call's media under overload. */
  hold(callId: string, held: boolean): void;
  /** Let a call's suspended writers try again. */
  resumeWriting(callId: string): void;
  /** Close a call's legs and files: its final metadata. */
  finish(callId: string, reason: EndReason): Promise<RecordingMetadata>;
  /**
   * Undo a call whose open was given up on (SHARD_BUSY: refused with 503, never acknowledged): once the
   * open settles, its legs are closed and recording `recordingId`'s directory removed. True when nothing
   * of it is left on disk; false when that cannot be known (its shard died), so the caller leaves its
   * marker for the next start's recovery.
   */
  discard(callId: string, recordingId: string): Promise<boolean>;
  /** A running call's metadata as it stands. */
  meta(callId: string): Promise<RecordingMetadata | undefined>;
  /** Counters of the running calls, by recording id. */
  stats(): ReadonlyMap<string, CallStats>;
  configure(settings: PlaneSettings): void;
  close(): Promise<void>;
  on<K extends keyof PlaneEvents>(event: K, listener: (...args: PlaneEvents[K]) => void): unknown;
}
