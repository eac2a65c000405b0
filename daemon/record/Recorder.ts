import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/Config.js';
import { ApiError, IngestError, ShardError } from '../errors.js';
import type { LawPayloadTypes, LegRole, MediaAddress, SrtpKey } from '../ingest/LegSource.js';
import type { WrappingKey } from '../seal/envelope.js';
import type { MediaPlane, MediaUpdate, OpenedCall, OpenedLeg, PlaneSettings, WriteFailure } from '../shard/MediaPlaneTypes.js';
import type { Logger } from '../log.js';
import { legacyState, startedEntry } from '../archive/lifecycle.js';
import { newJob } from '../archive/JobTypes.js';
import type { IndexEntry, LegacyState, Stage } from '../archive/RecordingTypes.js';
import { SafeEmitter } from '../events/SafeEmitter.js';
import type { RecordingIndex } from '../store/RecordingIndex.js';
import { readMetadata, recordingFileNames, type EndReason, type RecordingMetadata } from './metadata.js';
import { normalizeNumber } from '../store/numbers.js';
import { activeDir, activeMarker, recoverRecording } from './recovery.js';
import { DiskGuard } from './DiskGuard.js';
import { STALLED } from './StreamingWriter.js';
import { retryTransient } from '../retry.js';
import { isRecordingId, newRecordingId } from './recordingId.js';
import type { AdmissionVerdict } from '../capacity/CapacityTypes.js';
import { LoadShedder, type SheddableCall } from '../capacity/LoadShedder.js';
import { ProfileSet, type CallParties, type PartyInfo } from './profiles.js';
import { CLOSE_RETRY, ROLES, type CallInfo } from './Recording.js';

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
export type CallUpdate = MediaUpdate;

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

/** Counters of the calls being recorded now, read at scrape time (from a shard: as of its last report). */
export interface LiveTotals {
  readonly bytesWritten: number;
  /** Audio handed to the file system and not written yet. */
  readonly writeBacklogBytes: number;
  readonly legs: Record<LegRole, { received: number; late: number; duplicate: number; out_of_sequence: number }>;
}

interface ActiveCall extends SheddableCall {
  readonly callId: string;
  readonly recordingId: string;
  /** The metadata as the recording started (the plane has the current one). */
  readonly meta: RecordingMetadata;
}

const SWEEP_MS = 500;
const MB = 1024 * 1024;
/** A writer that failed with something else than a full disk tries again after this long. */
const RETRY_WRITE_MS = 5000;

/**
 * Owns the calls being recorded: admits them (limits, measured load, disk),
 * has the media plane set up their legs and files, keeps the index and the
 * crash markers, and ends them on request, when the plane says so (RTP
 * timeout, maximum duration, a lost worker or shard) or at shutdown. The
 * packets never pass here: they go from the plane's legs to its recordings.
 */
export class Recorder extends SafeEmitter<RecorderEvents> {
  private readonly active = new Map<string, ActiveCall>();
  private readonly finishing = new Map<string, Promise<RecordingMetadata>>();
  /** Calls between admission and `active`, by call id: a call id is in at most one of the two maps. */
  private readonly starting = new Map<string, Promise<unknown>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private accepting = true;
  private profiles: ProfileSet;
  private readonly disk: DiskGuard;
  /** Calls whose writers are suspended: since when (monotonic ms), and why. */
  private readonly suspended = new Map<string, { since: number; failure: WriteFailure }>();
  private watchingDisk = false;

  private admission: { admit(): AdmissionVerdict } | undefined;
  private readonly shedder: LoadShedder;

  constructor(
    private config: Config,
    private readonly plane: MediaPlane,
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
    plane.on('lag', (workerPid, lagMs) => this.onLag(workerPid, lagMs));
    plane.on('end-due', (callId, reason) => void this.endCall(callId, reason).catch(() => undefined));
    plane.on('write-failed', (callId, failure) => void this.onWriteFailed(callId, failure));
    plane.on('write-recovered', (callId) => this.suspended.delete(callId));
    plane.on('calls-lost', (callIds) => {
      // Their shard is gone: each is closed from what reached the disk, as after a crash (finish finds no plane to ask).
      for (const callId of callIds) void this.endCall(callId, 'ingest-failure').catch(() => undefined);
    });
  }

  /** What the media plane works with, from a config. */
  static planeSettings(config: Config, instanceId: string): PlaneSettings {
    return {
      dataDir: config.dataDir,
      instanceId,
      media: config.media,
      calls: { rtpTimeoutSeconds: config.calls.rtpTimeoutSeconds, maxDurationSeconds: config.calls.maxDurationSeconds },
      maxWriteBacklogBytes: config.recording.maxWriteBacklogKiB * 1024,
    };
  }

  async open(): Promise<void> {
    await mkdir(activeDir(this.config.dataDir), { recursive: true, mode: 0o750 });
    await this.disk.keepReserve();
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
    this.plane.configure(Recorder.planeSettings(config, this.instanceId));
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
    const { calls, dataDir } = this.config;
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
    const payloadType = req.payloadType ?? (req.codec === 'PCMU' ? 0 : 8);
    const recordingId = newRecordingId();
    const marker = activeMarker(dataDir, recordingId);
    // Before the first byte: a crash from here on leaves a marker that the next start repairs and seals from.
    await writeFile(marker, '', { mode: 0o640 });
    let opened: OpenedCall;
    try {
      opened = await this.plane.open({
        recordingId,
        info: req,
        policy,
        legs: { caller: legRequest(req.caller), callee: legRequest(req.callee) },
        payloadType,
        dtmfPayloadType: req.dtmfPayloadType ?? 101,
        fromAddress: from.address,
        encryptTo: encryptTo && { id: encryptTo.id, publicKeyPem: encryptTo.publicKey.export({ type: 'spki', format: 'pem' }) as string },
      });
    } catch (err) {
      // No leg, no shard: nothing reached the disk.
      if (err instanceof IngestError || (err instanceof ShardError && err.code === 'NO_SHARD')) await rm(marker, { force: true });
      if (err instanceof IngestError && err.code === 'NO_PORT') throw new ApiError(503, 'NO_PORT', err.message, { callId: req.callId }, 5);
      if (err instanceof ShardError && err.code === 'NO_SHARD') throw new ApiError(503, 'NO_SHARD', err.message, { callId: req.callId }, 5);
      if (err instanceof ShardError && err.code === 'SHARD_BUSY') {
        // Refused now, though the stalled shard may still open it: undone when it does, the marker kept until nothing is left.
        void this.plane
          .discard(req.callId, recordingId)
          .then((gone) => (gone ? rm(marker, { force: true }) : undefined))
          .catch((e: unknown) => this.log.warn({ err: e, recordingId }, 'a call given up on could not be undone; the next start recovers it'));
        throw new ApiError(503, 'SHARD_BUSY', err.message, { callId: req.callId }, 5);
      }
      throw err;
    }
    const { meta } = opened;
    try {
      // Acknowledged only once the index holds it durably.
      await this.index.create(startedEntry(meta, dataDir));
    } catch (err) {
      // Its files are closed; the marker stays, so the next start puts it into the index and seals it.
      void this.plane.finish(req.callId, 'ingest-failure').catch(() => undefined);
      throw err;
    }
    this.active.set(req.callId, activeCall(req.callId, meta, opened.workerPids, this.plane));
    this.safeEmit('started', meta);
    this.log.info(
      {
        callId: req.callId,
        recordingId,
        profile: policy.profile.name,
        direction: req.direction,
        codec: req.codec,
        ports: [opened.legs.caller.port, opened.legs.callee.port],
      },
      'call recording started',
    );
    const ip = this.plane.announcedIp;
    return {
      callId: req.callId,
      recorded: true,
      profile: policy.profile.name,
      recordingId,
      legs: { caller: legAnswer(ip, opened.legs.caller, payloadType), callee: legAnswer(ip, opened.legs.callee, payloadType) },
    };
  }

  /**
   * A call's sender changed it mid-call (a SIPREC re-INVITE or UPDATE):
   * streams paused or resumed, metadata naming the parties. False when no
   * such call is being recorded.
   */
  async updateCall(callId: string, change: CallUpdate): Promise<boolean> {
    const call = this.active.get(callId);
    if (!call || !(await this.plane.update(callId, change))) return false;
    if (change.siprec) {
      const { caller, callee } = change.siprec.numbers;
      if (caller || callee) {
        const n = (x: string) => ({ number: x, normalized: normalizeNumber(x) });
        await this.index.update(call.recordingId, { ...(caller ? { caller: n(caller) } : {}), ...(callee ? { callee: n(callee) } : {}) });
      }
      this.log.info(
        {
          callId,
          recordingId: call.recordingId,
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
    const id = call.recordingId;
    const done = this.finish(call, reason);
    this.finishing.set(id, done);
    void done.finally(() => this.finishing.delete(id)).catch(() => undefined);
    return Promise.resolve(id);
  }

  async status(recordingId: string): Promise<RecordingStatus | undefined> {
    if (!isRecordingId(recordingId)) return undefined;
    const entry = this.index.get(recordingId);
    if (!entry) return undefined;
    const live = [...this.active.values()].find((c) => c.recordingId === recordingId);
    const dir = path.join(this.config.dataDir, entry.dir);
    const liveMeta = live && ((await this.plane.meta(live.callId)) ?? live.meta);
    const meta = liveMeta ?? (await readMetadata(dir, recordingId).catch(() => undefined));
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
      files: liveMeta ? recordingFileNames(liveMeta) : [...entry.files],
      sealedAt: entry.sealedAt,
      kekId: entry.kekId,
      uploads: entry.uploads,
      error: live ? writeProblem(this.suspended.get(live.callId)?.failure) : entry.error,
      metadata: meta,
    };
  }

  /** Packet counts of each running call, by recording (monotonic while it runs): what admission measures the packet rate by. */
  liveCounters(): Map<string, { received: number; late: number }> {
    const out = new Map<string, { received: number; late: number }>();
    for (const [id, st] of this.plane.stats()) {
      out.set(id, { received: st.legs.caller.received + st.legs.callee.received, late: st.legs.caller.late + st.legs.callee.late });
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
    for (const st of this.plane.stats().values()) {
      bytesWritten += st.bytesWritten;
      writeBacklogBytes += st.writeBacklogBytes;
      for (const role of ROLES) {
        const l = st.legs[role];
        legs[role].received += l.received;
        legs[role].late += l.late;
        legs[role].duplicate += l.duplicate;
        legs[role].out_of_sequence += l.outOfSequence;
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
    clearInterval(this.sweepTimer);
  }

  private async finish(call: ActiveCall, reason: EndReason): Promise<RecordingMetadata> {
    const { recordingId, callId } = call;
    this.suspended.delete(callId);
    let meta: RecordingMetadata;
    try {
      meta = await this.closeFiles(call, reason);
      // Closed and its seal owed, in one transaction; only then may the next start forget the crash marker.
      const closed = { type: 'closed', endedAt: meta.endedAt, durationMs: meta.durationMs } as const;
      await retryTransient(() => this.index.commit(recordingId, closed, [{ put: newJob('seal', recordingId, '', null) }]), CLOSE_RETRY);
      await rm(activeMarker(this.config.dataDir, recordingId), { force: true });
    } catch (err) {
      // The active marker stays: the next start repairs this recording and seals it.
      this.log.error({ err, callId, recordingId }, 'cannot close recording');
      await this.index.commit(recordingId, { type: 'failed', error: `cannot close: ${(err as Error).message}` }).catch(() => undefined);
      throw err;
    }
    this.log.info(
      {
        callId: meta.callId,
        recordingId: meta.recordingId,
        reason,
        durationMs: meta.durationMs,
        recovered: meta.recovered,
        caller: pickStats(meta, 'caller'),
        callee: pickStats(meta, 'callee'),
      },
      'call recording closed',
    );
    this.safeEmit('closed', meta);
    return meta;
  }

  /** The plane closes the files; when the shard that had them died, they are repaired from disk as after a crash. */
  private async closeFiles(call: ActiveCall, reason: EndReason): Promise<RecordingMetadata> {
    try {
      return await this.plane.finish(call.callId, reason);
    } catch (err) {
      if (!(err instanceof ShardError && err.code === 'SHARD_LOST')) throw err;
      const meta = await recoverRecording(this.config.dataDir, call.recordingId, this.log);
      if (!meta) throw err;
      this.log.warn(
        { callId: call.callId, recordingId: call.recordingId, durationMs: meta.durationMs },
        'recording recovered from disk: its media shard died',
      );
      return meta;
    }
  }

  /** A recording's audio stopped reaching the disk: say so once; on a full disk free the space reserve so closes and seals still fit. */
  private async onWriteFailed(callId: string, failure: WriteFailure): Promise<void> {
    const call = this.active.get(callId);
    if (!call || this.suspended.has(callId)) return;
    this.suspended.set(callId, { since: performance.now(), failure });
    this.safeEmit('write-suspended', failure.code);
    this.log.error(
      { recordingId: call.recordingId, callId, code: failure.code, error: failure.message, atMs: failure.atMs },
      failure.code === STALLED
        ? 'the disk is too far behind; the call goes on, its audio is dropped (and marked as a gap) until the writes waiting have caught up'
        : 'audio cannot be written; the call goes on, its audio is dropped (and marked as a gap) until writing works again',
    );
    if (isDiskFull(failure.code) && (await this.disk.release()))
      this.log.warn(
        { file: this.disk.reserveFile, bytes: this.disk.reserveBytes },
        'disk full: space reserve released so recordings can still be closed and sealed',
      );
  }

  /** Suspended writers write again once the disk has room (ENOSPC) or after a pause; the reserve is made again once none is. */
  private async watchDisk(): Promise<void> {
    const now = performance.now();
    await this.disk.sample();
    for (const [callId, { since, failure }] of this.suspended) {
      // A stall ends by itself, when the disk has taken what was waiting.
      if (failure.code === STALLED) continue;
      if (isDiskFull(failure.code) ? !this.disk.roomToResume : now - since < RETRY_WRITE_MS) continue;
      this.suspended.delete(callId);
      this.plane.resumeWriting(callId);
      this.log.info(
        { recordingId: this.active.get(callId)?.recordingId, callId, code: failure.code, freeBytes: this.disk.free },
        'trying to write audio again',
      );
    }
    if (this.suspended.size === 0) await this.disk.keepReserve();
  }

  private sweep(): void {
    if (this.watchingDisk) return;
    this.watchingDisk = true;
    void this.watchDisk()
      .catch((err: unknown) => this.log.error({ err }, 'cannot check the data directory'))
      .finally(() => (this.watchingDisk = false));
  }
}

function activeCall(callId: string, meta: RecordingMetadata, workerPids: readonly number[], plane: MediaPlane): ActiveCall {
  let held = false;
  return {
    callId,
    recordingId: meta.recordingId,
    meta,
    startedMono: performance.now(),
    workerPids,
    get held() {
      return held;
    },
    hold(next) {
      held = next;
      plane.hold(callId, next);
    },
  };
}

function legRequest(leg: LegRequest): { ssrc?: number | undefined; media?: MediaAddress | undefined; srtp?: SrtpKey | undefined } {
  return { ssrc: leg.ssrc, media: leg.media, srtp: leg.srtp };
}

function isDiskFull(code: string): boolean {
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** What a running recording's status says while its audio cannot be written. */
function writeProblem(failure: WriteFailure | undefined): string | null {
  return failure
    ? `audio not written since ${failure.atMs} ms into the call: ${failure.code} (${failure.message}); the call goes on, the gap is marked`
    : null;
}

function pickStats(meta: RecordingMetadata, role: LegRole) {
  const l = meta.legs[role];
  return { received: l.received, lost: l.lost, late: l.late, duplicate: l.duplicate };
}

function legAnswer(ip: string, leg: OpenedLeg, payloadType: number): LegAnswer {
  return { ip, port: leg.port, payloadType, payloadTypes: leg.payloadTypes, dtmfPayloadType: leg.dtmfPayloadType, srtp: leg.srtp };
}

function round(v: number): string {
  return v >= 10 ? v.toFixed(0) : v.toPrecision(2);
}
