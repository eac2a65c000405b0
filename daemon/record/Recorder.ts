import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/Config.js';
import { ApiError, IngestError } from '../errors.js';
import {
  legPayloadTypes,
  type LawPayloadTypes,
  type LegRole,
  type LegSource,
  type LegStreamChange,
  type LegTransportReport,
  type MediaAddress,
  type SrtpKey,
} from '../ingest/LegSource.js';
import { sourceFilter } from '../ingest/sourceFilter.js';
import type { MediaIngest } from '../ingest/MediaIngest.js';
import type { WrappingKey } from '../seal/envelope.js';
import type { Logger } from '../log.js';
import { legacyState, startedEntry } from '../archive/lifecycle.js';
import { newJob } from '../archive/JobTypes.js';
import type { IndexEntry, LegacyState, Stage } from '../archive/RecordingTypes.js';
import { SafeEmitter } from '../events/SafeEmitter.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';
import { readMetadata, recordingFileNames, type EndReason, type RecordingMetadata, type SiprecUpdate, type StreamChangeNote } from './metadata.js';
import { normalizeNumber } from '../store/numbers.js';
import { activeDir, activeMarker } from './recovery.js';
import { DiskGuard } from './DiskGuard.js';
import { STALLED } from './StreamingWriter.js';
import { retryTransient } from '../retry.js';
import { isRecordingId, newRecordingId } from './recordingId.js';
import type { AdmissionVerdict } from '../capacity/CapacityTypes.js';
import { LoadShedder, type SheddableCall } from '../capacity/LoadShedder.js';
import { ProfileSet, type CallParties, type PartyInfo } from './profiles.js';
import { Recording, ROLES, type CallInfo } from './Recording.js';

export interface LegRequest extends PartyInfo {
  readonly ssrc?: number | undefined;
  /** Where the PBX sends this leg's RTP from; when given, RTP from anywhere else is dropped. */
  readonly media?: MediaAddress | undefined;
  /** SDES-SRTP: the sender's suite and key (SIPREC offers with a=crypto). */
  readonly srtp?: SrtpKey | undefined;
}

export interface StartCallRequest extends CallInfo, CallParties {
  readonly caller: LegRequest;
  readonly callee: LegRequest;
  readonly payloadType?: number | undefined;
  readonly dtmfPayloadType?: number | undefined;
}

/** Who asked for the call to be recorded. */
export interface CallSource {
  /** The control client's (or SIP peer's) IP address: by default the only source RTP is taken from. */
  readonly address?: string | undefined;
}

/** What a SIPREC SRC changed mid-call. */
export interface CallUpdate {
  readonly paused?: Partial<Record<LegRole, boolean>>;
  /** Legs whose sender may come from a new address now (resumed, or moved), with what else changed about its stream. */
  readonly relearn?: Partial<Record<LegRole, LegStreamChange>>;
  readonly siprec?: {
    readonly method: string;
    readonly participants: SiprecUpdate['participants'];
    readonly numbers: Partial<Record<LegRole, string>>;
  };
  /** Streams the SRC changed (codec, another stream for a leg, a new key, one declined), for the metadata. */
  readonly streamChanges?: readonly StreamChangeNote[];
}

export interface LegAnswer {
  readonly ip: string;
  readonly port: number;
  readonly payloadType: number;
  /** The payload type the leg takes each G.711 law in (the other law's static one too, for a sender that switches). */
  readonly payloadTypes: LawPayloadTypes;
  /** The payload type the leg reads RFC 4733 events in. */
  readonly dtmfPayloadType: number;
  /** Our SRTP key for the leg, when the request asked for SRTP. */
  readonly srtp?: SrtpKey | undefined;
}

/** `recorded: false` when no profile matches or the matching one excludes the call. */
export type StartCallAnswer =
  | {
      readonly callId: string;
      readonly recorded: true;
      readonly profile: string;
      readonly recordingId: string;
      readonly legs: Record<LegRole, LegAnswer>;
    }
  | { readonly callId: string; readonly recorded: false; readonly profile: string | null };

export interface RecordingStatus {
  readonly recordingId: string;
  readonly callId: string;
  readonly profile: string;
  /** Where it is in its life (lifecycle.ts). */
  readonly stage: Stage;
  /** The one-word state of earlier versions: the stage, with `encrypted`, `finalizing`, `uploaded` (legacyState). */
  readonly state: LegacyState;
  readonly encrypted: boolean;
  readonly dir: string;
  readonly files: string[];
  readonly sealedAt: string | null;
  /** The KEK the audio is encrypted under, or null. */
  readonly kekId: string | null;
  readonly uploads: IndexEntry['uploads'];
  readonly error: string | null;
  readonly metadata?: RecordingMetadata | undefined;
}

export interface RecorderEvents {
  started: [RecordingMetadata];
  /** A call-start request refused: the error's code (CALL_LIMIT, LOW_DISK, …). */
  rejected: [string];
  /** A call the profiles say not to record: the excluding profile, or null when none matched. */
  unrecorded: [string | null];
  /** A call stopped being recorded (it takes no more packets; closing follows): its call id and why. */
  ending: [callId: string, reason: EndReason];
  /** Files are closed, metadata final, index says `finalizing`: ready to seal. */
  closed: [RecordingMetadata];
  /** A recording's audio stopped reaching the disk (errno code); the call goes on. */
  'write-suspended': [string];
  /** Calls shed under overload (positive) or taken again (negative), on one worker. */
  shed: [calls: number];
}

/** Counters of the calls being recorded now, read at scrape time. */
export interface LiveTotals {
  readonly bytesWritten: number;
  /** Audio handed to the file system and not written yet. */
  readonly writeBacklogBytes: number;
  readonly legs: Record<LegRole, { received: number; late: number; duplicate: number; out_of_sequence: number }>;
}

interface ActiveCall extends SheddableCall {
  readonly recording: Recording;
  readonly legs: Record<LegRole, LegSource>;
}

const TICK_MS = 20;
const SWEEP_MS = 500;
const MB = 1024 * 1024;
/** Closing a recording on a full disk or without descriptors: tried for about a minute, then left to crash recovery. */
const CLOSE_RETRY = { attempts: 14, baseMs: 250, maxMs: 8000 } as const;
/** A writer that failed with something else than a full disk tries again after this long. */
const RETRY_WRITE_MS = 5000;

/**
 * Owns the calls being recorded: admits them (limits, disk), wires each leg's
 * packets into its Recording, drains all recordings on one timer, and ends
 * them on request, on RTP timeout, at the maximum duration or at shutdown.
 */
export class Recorder extends SafeEmitter<RecorderEvents> {
  private readonly active = new Map<string, ActiveCall>();
  private readonly finishing = new Map<string, Promise<RecordingMetadata>>();
  /** Calls between admission and `active`, by call id: a call id is in at most one of the two maps. */
  private readonly starting = new Map<string, Promise<unknown>>();
  private tickTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private accepting = true;
  private profiles: ProfileSet;
  private readonly disk: DiskGuard;
  /** Recordings whose writers are suspended: since when (monotonic ms). */
  private readonly suspended = new Map<Recording, number>();
  private watchingDisk = false;

  private admission: { admit(): AdmissionVerdict } | undefined;
  private readonly shedder: LoadShedder;

  constructor(
    private config: Config,
    private readonly ingest: MediaIngest,
    private readonly index: RecordingIndex,
    /** Written into every recording's signed metadata: where it was made. */
    private readonly instanceId: string,
    /** The KEK a recording whose profile encrypts is encrypted under, as it is written. */
    private readonly keks: { current(): WrappingKey | undefined },
    private readonly log: Logger,
  ) {
    super((err, event) => log.error({ err, event }, 'a recorder listener failed; the call goes on'));
    this.profiles = ProfileSet.compile(config).profiles;
    this.disk = new DiskGuard(config.dataDir, config.calls.minFreeDiskMB * MB, config.calls.diskReserveMB * MB);
    this.shedder = new LoadShedder(config.media.maxIngestLagMs, () => this.active.values());
    ingest.on('lag', (workerPid, lagMs) => this.onLag(workerPid, lagMs));
    ingest.on('legs-lost', (legs) => {
      const calls = new Set(legs.map((l) => l.options.callId));
      for (const callId of calls) void this.endCall(callId, 'ingest-failure').catch(() => undefined);
    });
  }

  async open(): Promise<void> {
    await mkdir(activeDir(this.config.dataDir), { recursive: true, mode: 0o750 });
    await this.disk.keepReserve();
    this.tickTimer = setInterval(() => this.tick(), TICK_MS);
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
  }

  /** The longest a call is recorded (calls.maxDurationSeconds). */
  get maxCallMs(): number {
    return this.config.calls.maxDurationSeconds * 1000;
  }

  get activeCalls(): number {
    return this.active.size + this.starting.size;
  }

  /** Recordings whose audio cannot be written now. */
  get suspendedRecordings(): number {
    return this.suspended.size;
  }

  /** Bytes of free space left before new calls are refused with LOW_DISK (negative: they are). */
  get diskHeadroom(): number {
    return this.disk.headroom(this.active.size);
  }

  /** New calls use the new settings; running calls keep theirs. */
  reconfigure(config: Config): void {
    this.config = config;
    this.profiles = ProfileSet.compile(config).profiles;
    this.disk.setMinFree(config.calls.minFreeDiskMB * MB);
    this.shedder.configure(config.media.maxIngestLagMs);
  }

  /** Calls shed under overload now. */
  get shedCalls(): number {
    return this.shedder.shedCalls;
  }

  private onLag(workerPid: number, lagMs: number): void {
    const changed = this.shedder.onLag(workerPid, lagMs);
    if (changed === 0) return;
    this.safeEmit('shed', changed);
    const fields = { workerPid, lagMs: Math.round(lagMs), maxIngestLagMs: this.config.media.maxIngestLagMs, shedNow: this.shedder.shedCalls };
    if (changed > 0)
      this.log.error(
        { ...fields, calls: changed },
        'overload: packets wait too long for callvault; the newest calls are shed (their recordings mark the gap)',
      );
    else this.log.warn({ ...fields, calls: -changed }, 'load down again: shed calls are recorded again');
  }

  async startCall(req: StartCallRequest, from: CallSource = {}): Promise<StartCallAnswer> {
    try {
      // The duplicate check and the claim on the call id happen in one
      // synchronous step: two requests with one call id can never both pass.
      if (!this.accepting) throw new ApiError(503, 'SHUTTING_DOWN', 'callvault is shutting down', {}, 5);
      if (this.active.has(req.callId) || this.starting.has(req.callId)) {
        throw new ApiError(409, 'DUPLICATE_CALL', `call ${req.callId} is already being recorded`, { callId: req.callId });
      }
      const started = this.admitAndStart(req, from);
      this.starting.set(req.callId, started);
      try {
        return await started;
      } finally {
        this.starting.delete(req.callId);
      }
    } catch (err) {
      this.safeEmit('rejected', err instanceof ApiError ? err.code : 'INTERNAL');
      throw err;
    }
  }

  private async admitAndStart(req: StartCallRequest, from: CallSource): Promise<StartCallAnswer> {
    const decision = this.profiles.decide(req);
    if (!decision.record) {
      this.safeEmit('unrecorded', decision.profile);
      this.log.info(
        { callId: req.callId, direction: req.direction, profile: decision.profile },
        decision.profile ? 'call not recorded: excluded by its profile' : 'call not recorded: no profile matches',
      );
      return { callId: req.callId, recorded: false, profile: decision.profile };
    }
    const { policy } = decision;
    const { calls, media, dataDir } = this.config;
    if (this.activeCalls >= calls.maxConcurrent) {
      throw new ApiError(503, 'CALL_LIMIT', `at the limit of ${calls.maxConcurrent} concurrent calls`, {}, 5);
    }
    const verdict = this.admission?.admit();
    if (verdict && !verdict.admit) {
      // The running calls come first: a call that would push a measured signal past its limit goes to another recorder.
      throw new ApiError(
        503,
        'CAPACITY',
        `at capacity: ${verdict.over.map((o, i) => `${o.signal} would be ${round(o.value)}${i === 0 ? ' with this call' : ''}, over ${i === 0 ? "calls.admission's " : ''}${o.limit}`).join('; ')}`,
        { signal: verdict.signal },
        verdict.retryAfterSeconds,
      );
    }
    const free = await this.disk.sample();
    const needed = this.disk.needed(this.active.size);
    if (free < needed) {
      throw new ApiError(
        503,
        'LOW_DISK',
        `only ${Math.floor(free / MB)} MB free in the data directory; a new call needs ${Math.ceil(needed / MB)} MB (calls.minFreeDiskMB ${calls.minFreeDiskMB} plus a minute of audio for each of the ${this.active.size} running calls)`,
        {},
        30,
      );
    }

    const encryptTo = policy.profile.encryption ? (this.keks.current() ?? null) : null;
    if (policy.profile.encryption && !encryptTo) {
      // Fail closed: a call of an encrypting profile is never recorded in the clear.
      throw new ApiError(
        503,
        'NO_KEK',
        `profile ${policy.profile.name} encrypts, but there is no trusted key-encryption key to encrypt under (see callvault keys status)`,
        { callId: req.callId },
        60,
      );
    }
    const opened: LegSource[] = [];
    try {
      const payloadType = req.payloadType ?? (req.codec === 'PCMU' ? 0 : 8);
      const dtmfPayloadType = req.dtmfPayloadType ?? 101;
      const legs = {} as Record<LegRole, LegSource>;
      const allowSource = sourceFilter(media.allowedSources, from.address);
      for (const role of ROLES) {
        const { ssrc, media: remote, srtp } = req[role];
        legs[role] = await this.ingest.openLeg({
          callId: req.callId,
          role,
          payloadTypes: legPayloadTypes(req.codec, payloadType, dtmfPayloadType),
          dtmfPayloadType,
          ssrc,
          remote,
          allowSource,
          srtp,
        });
        opened.push(legs[role]);
      }
      const recordingId = newRecordingId();
      await writeFile(activeMarker(dataDir, recordingId), '', { mode: 0o640 });
      const recording = await Recording.start({
        dataDir,
        recordingId,
        instanceId: this.instanceId,
        info: req,
        policy,
        payloadKinds: this.ingest.payloadKinds,
        jitterBufferMs: media.jitterBufferMs,
        encryptTo,
        maxWriteBacklogBytes: this.config.recording.maxWriteBacklogKiB * 1024,
      });
      // Acknowledged only once the index holds it durably; a failed write leaves
      // no half-started call behind (the active marker lets the next start close the files).
      await this.index.create(startedEntry(recording.meta, dataDir));
      for (const role of ROLES) legs[role].on('packet', (p) => recording.push(role, p));
      this.active.set(req.callId, activeCall(recording, legs));
      this.safeEmit('started', recording.meta);
      this.log.info(
        {
          callId: req.callId,
          recordingId,
          profile: policy.profile.name,
          direction: req.direction,
          codec: req.codec,
          ports: [legs.caller.port, legs.callee.port],
        },
        'call recording started',
      );
      const ip = this.ingest.announcedIp;
      return {
        callId: req.callId,
        recorded: true,
        profile: policy.profile.name,
        recordingId,
        legs: { caller: legAnswer(ip, legs.caller, payloadType), callee: legAnswer(ip, legs.callee, payloadType) },
      };
    } catch (err) {
      for (const l of opened) l.close();
      if (err instanceof IngestError && err.code === 'NO_PORT') throw new ApiError(503, 'NO_PORT', err.message, { callId: req.callId }, 5);
      throw err;
    }
  }

  /**
   * A call's sender changed it mid-call (a SIPREC re-INVITE or UPDATE):
   * streams paused or resumed, metadata naming the parties. False when no
   * such call is being recorded.
   */
  async updateCall(callId: string, change: CallUpdate): Promise<boolean> {
    const call = this.active.get(callId);
    if (!call) return false;
    const { recording } = call;
    for (const [role, paused] of Object.entries(change.paused ?? {}) as [LegRole, boolean][]) recording.setPaused(role, paused);
    for (const [role, next] of Object.entries(change.relearn ?? {}) as [LegRole, LegStreamChange][]) await call.legs[role].relearnSource(next);
    if (change.streamChanges?.length) recording.noteStreamChanges(change.streamChanges);
    if (change.siprec) {
      recording.noteSiprecUpdate(change.siprec.method, change.siprec.participants, change.siprec.numbers);
      const { caller, callee } = change.siprec.numbers;
      if (caller || callee) {
        const n = (x: string) => ({ number: x, normalized: normalizeNumber(x) });
        await this.index.update(recording.id, { ...(caller ? { caller: n(caller) } : {}), ...(callee ? { callee: n(callee) } : {}) });
      }
      this.log.info(
        {
          callId,
          recordingId: recording.id,
          method: change.siprec.method,
          participants: change.siprec.participants.length,
          numbers: change.siprec.numbers,
        },
        'SIPREC metadata updated',
      );
    }
    return true;
  }

  /** End a call; resolves with its recording id once the end is under way. */
  endCall(callId: string, reason: EndReason): Promise<string> {
    const call = this.active.get(callId);
    if (!call) return Promise.reject(new ApiError(404, 'NO_SUCH_CALL', `no call ${callId} is being recorded`, { callId }));
    this.active.delete(callId);
    this.safeEmit('ending', callId, reason);
    const id = call.recording.id;
    const done = this.finish(call, reason);
    this.finishing.set(id, done);
    void done.finally(() => this.finishing.delete(id)).catch(() => undefined);
    return Promise.resolve(id);
  }

  async status(recordingId: string): Promise<RecordingStatus | undefined> {
    if (!isRecordingId(recordingId)) return undefined;
    const entry = this.index.get(recordingId);
    if (!entry) return undefined;
    const live = [...this.active.values()].find((c) => c.recording.id === recordingId);
    const dir = path.join(this.config.dataDir, entry.dir);
    const meta = live?.recording.meta ?? (await readMetadata(dir, recordingId).catch(() => undefined));
    const stage: Stage = live ? 'recording' : this.finishing.has(recordingId) ? 'closed' : entry.stage;
    return {
      recordingId,
      callId: entry.callId,
      stage,
      profile: entry.profile,
      state: legacyState({ stage, kekId: entry.kekId }),
      encrypted: entry.kekId !== null,
      dir,
      // As stored: after sealing, envelopes (`.enc`) where the profile encrypts.
      files: live ? recordingFileNames(live.recording.meta) : [...entry.files],
      sealedAt: entry.sealedAt,
      kekId: entry.kekId,
      uploads: entry.uploads,
      error: live ? writeProblem(live.recording) : entry.error,
      metadata: meta,
    };
  }

  /** Packet counts of each running call, by recording (monotonic while it runs): what admission measures the packet rate by. */
  liveCounters(): Map<string, { received: number; late: number }> {
    const out = new Map<string, { received: number; late: number }>();
    for (const { recording } of this.active.values()) {
      let received = 0;
      let late = 0;
      for (const role of ROLES) {
        received += recording.legs[role].stats.received;
        late += recording.legs[role].stats.late;
      }
      out.set(recording.id, { received, late });
    }
    return out;
  }

  /** Admission by measured load (CapacityMonitor), consulted for every new call after the hard cap. */
  admitBy(admission: { admit(): AdmissionVerdict }): void {
    this.admission = admission;
  }

  liveTotals(): LiveTotals {
    const legs = {
      caller: { received: 0, late: 0, duplicate: 0, out_of_sequence: 0 },
      callee: { received: 0, late: 0, duplicate: 0, out_of_sequence: 0 },
    };
    let bytesWritten = 0;
    let writeBacklogBytes = 0;
    for (const { recording } of this.active.values()) {
      bytesWritten += recording.bytesWritten;
      writeBacklogBytes += recording.writeBacklogBytes;
      for (const role of ROLES) {
        const st = recording.legs[role].stats;
        legs[role].received += st.received;
        legs[role].late += st.late;
        legs[role].duplicate += st.duplicate;
        legs[role].out_of_sequence += st.outOfSequence;
      }
    }
    return { bytesWritten, writeBacklogBytes, legs };
  }

  /** Refuse new calls, end every active one, wait until all files are closed. */
  async shutdown(): Promise<void> {
    this.accepting = false;
    // A call still being set up becomes active (or fails) first, so it is ended like the others.
    await Promise.allSettled([...this.starting.values()]);
    for (const callId of [...this.active.keys()]) await this.endCall(callId, 'shutdown');
    await Promise.allSettled([...this.finishing.values()]);
    clearInterval(this.tickTimer);
    clearInterval(this.sweepTimer);
  }

  private async finish(call: ActiveCall, reason: EndReason): Promise<RecordingMetadata> {
    const { recording, legs } = call;
    const end = performance.now();
    const reports: Partial<Record<LegRole, LegTransportReport>> = {};
    for (const role of ROLES) {
      reports[role] = await legs[role].report().catch(() => undefined);
      legs[role].close();
    }
    this.suspended.delete(recording);
    let meta: RecordingMetadata;
    try {
      const onRetry = (err: unknown, attempt: number, waitMs: number) =>
        this.log.warn({ err, recordingId: recording.id, attempt, waitMs }, 'cannot close the recording yet; retrying');
      meta = await recording.finish(reason, reports, end, { ...CLOSE_RETRY, onRetry });
      // Closed and its seal owed, in one transaction; only then may the next start forget the crash marker.
      const closed = { type: 'closed', endedAt: meta.endedAt, durationMs: meta.durationMs } as const;
      await retryTransient(() => this.index.commit(recording.id, closed, [{ put: newJob('seal', recording.id, '', null) }]), CLOSE_RETRY);
      await rm(activeMarker(this.config.dataDir, recording.id), { force: true });
    } catch (err) {
      // The active marker stays: the next start repairs this recording and seals it.
      this.log.error({ err, callId: recording.meta.callId, recordingId: recording.id }, 'cannot close recording');
      await this.index.commit(recording.id, { type: 'failed', error: `cannot close: ${(err as Error).message}` }).catch(() => undefined);
      throw err;
    }
    this.log.info(
      {
        callId: meta.callId,
        recordingId: meta.recordingId,
        reason,
        durationMs: meta.durationMs,
        caller: pickStats(meta, 'caller'),
        callee: pickStats(meta, 'callee'),
      },
      'call recording closed',
    );
    this.safeEmit('closed', meta);
    return meta;
  }

  private tick(): void {
    const now = performance.now();
    for (const call of this.active.values()) call.recording.tick(now);
  }

  /**
   * Writers that failed (full disk, I/O error) are suspended: say so once,
   * free the space reserve on ENOSPC so closes and seals still fit, and let
   * them write again once the disk has room (ENOSPC) or after a pause.
   */
  private async watchDisk(): Promise<void> {
    const now = performance.now();
    let enospc = false;
    for (const { recording } of this.active.values()) {
      const gap = recording.writeFailure;
      if (!gap || this.suspended.has(recording)) continue;
      this.suspended.set(recording, now);
      enospc ||= isDiskFull(gap.code);
      this.safeEmit('write-suspended', gap.code);
      this.log.error(
        { recordingId: recording.id, callId: recording.meta.callId, code: gap.code, error: gap.message, atMs: recording.writeFailureMs },
        gap.code === STALLED
          ? 'the disk is too far behind; the call goes on, its audio is dropped (and marked as a gap) until the writes waiting have caught up'
          : 'audio cannot be written; the call goes on, its audio is dropped (and marked as a gap) until writing works again',
      );
    }
    if (enospc && (await this.disk.release()))
      this.log.warn(
        { file: this.disk.reserveFile, bytes: this.disk.reserveBytes },
        'disk full: space reserve released so recordings can still be closed and sealed',
      );
    await this.disk.sample();
    for (const [recording, since] of this.suspended) {
      const gap = recording.writeFailure;
      if (!gap) {
        this.suspended.delete(recording);
        continue;
      }
      // A stall ends by itself, when the disk has taken what was waiting.
      if (gap.code === STALLED) continue;
      if (isDiskFull(gap.code) ? !this.disk.roomToResume : now - since < RETRY_WRITE_MS) continue;
      this.suspended.delete(recording);
      recording.resumeWriting();
      this.log.info(
        { recordingId: recording.id, callId: recording.meta.callId, code: gap.code, freeBytes: this.disk.free },
        'trying to write audio again',
      );
    }
    if (this.suspended.size === 0) await this.disk.keepReserve();
  }

  private sweep(): void {
    if (!this.watchingDisk) {
      this.watchingDisk = true;
      void this.watchDisk()
        .catch((err: unknown) => this.log.error({ err }, 'cannot check the data directory'))
        .finally(() => (this.watchingDisk = false));
    }
    const { rtpTimeoutSeconds, maxDurationSeconds } = this.config.calls;
    const now = performance.now();
    for (const [callId, { recording }] of this.active) {
      const nowMs = recording.clock(now) / 8;
      if (nowMs >= maxDurationSeconds * 1000) void this.endCall(callId, 'max-duration');
      // Paused streams send nothing by design: only silence while something should be sending ends a call.
      else if (!recording.allPaused && nowMs - recording.lastActivityMs >= rtpTimeoutSeconds * 1000) void this.endCall(callId, 'rtp-timeout');
    }
  }
}

function activeCall(recording: Recording, legs: Record<LegRole, LegSource>): ActiveCall {
  return {
    recording,
    legs,
    startedMono: performance.now(),
    workerPids: [...new Set(ROLES.map((r) => legs[r].workerPid))],
    get held() {
      return legs.caller.held;
    },
    hold(held) {
      recording.noteHeld(held);
      for (const role of ROLES) void legs[role].hold(held);
    },
  };
}

function isDiskFull(code: string): boolean {
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** What a running recording's status says while its audio cannot be written. */
function writeProblem(recording: Recording): string | null {
  const gap = recording.writeFailure;
  return gap
    ? `audio not written since ${recording.writeFailureMs} ms into the call: ${gap.code} (${gap.message}); the call goes on, the gap is marked`
    : null;
}

function pickStats(meta: RecordingMetadata, role: LegRole) {
  const l = meta.legs[role];
  return { received: l.received, lost: l.lost, late: l.late, duplicate: l.duplicate };
}

function legAnswer(ip: string, leg: LegSource, payloadType: number): LegAnswer {
  return {
    ip,
    port: leg.port,
    payloadType,
    payloadTypes: leg.options.payloadTypes,
    dtmfPayloadType: leg.options.dtmfPayloadType,
    srtp: leg.localSrtp,
  };
}

function round(v: number): string {
  return v >= 10 ? v.toFixed(0) : v.toPrecision(2);
}
