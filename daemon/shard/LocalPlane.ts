import { createPublicKey } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { LoopLoad } from '../capacity/EventLoopGauge.js';
import { ShardError } from '../errors.js';
import { legPayloadTypes, type LegRole, type LegSource, type LegStreamChange, type LegTransportReport } from '../ingest/LegSource.js';
import { MediaIngest } from '../ingest/MediaIngest.js';
import { sourceFilter } from '../ingest/sourceFilter.js';
import type { Logger } from '../log.js';
import type { EndReason, RecordingMetadata } from '../record/metadata.js';
import { CLOSE_RETRY, Recording, ROLES } from '../record/Recording.js';
import { SafeEmitter } from '../events/SafeEmitter.js';
import type { WrappingKey } from '../seal/envelope.js';
import type { CallStats, MediaPlane, MediaUpdate, OpenCallRequest, OpenedCall, PlaneEvents, PlaneSettings, PublicKek } from './MediaPlaneTypes.js';

interface PlaneCall {
  readonly recording: Recording;
  readonly legs: Record<LegRole, LegSource>;
  /** A write failure announced ('write-failed') and not yet over. */
  failing: boolean;
}

const TICK_MS = 20;
const SWEEP_MS = 500;

/**
 * The media of the calls on this thread: each call's legs on the mediasoup
 * ingest, its Recording (timelines and writers), all drained on one timer;
 * it tells its owner when a call must end (RTP timeout, maximum length, a
 * dead worker) and when a recording's audio stops or starts reaching the disk.
 * The daemon's own thread runs one with `media.shards: 0`; each media shard runs one.
 */
export class LocalPlane extends SafeEmitter<PlaneEvents> implements MediaPlane {
  readonly #calls = new Map<string, PlaneCall>();
  readonly #tick: NodeJS.Timeout;
  readonly #sweep: NodeJS.Timeout;

  private constructor(
    private settings: PlaneSettings,
    private readonly ingest: MediaIngest,
    private readonly log: Logger,
  ) {
    super((err, event) => log.error({ err, event }, 'a media plane listener failed; the call goes on'));
    ingest.on('lag', (pid, lagMs) => this.safeEmit('lag', pid, lagMs));
    ingest.on('refused-source', (leg) => this.safeEmit('refused-source', leg.options.role));
    ingest.on('foreign-packet', () => this.safeEmit('foreign-packet'));
    ingest.on('legs-lost', (legs) => {
      for (const callId of new Set(legs.map((l) => l.options.callId))) this.safeEmit('end-due', callId, 'ingest-failure');
    });
    this.#tick = setInterval(() => this.#drain(), TICK_MS);
    this.#sweep = setInterval(() => this.#check(), SWEEP_MS);
  }

  static async create(settings: PlaneSettings, log: Logger): Promise<LocalPlane> {
    return new LocalPlane(settings, await MediaIngest.create(settings.media, log), log);
  }

  get announcedIp(): string {
    return this.ingest.announcedIp;
  }

  get ingestLagMs(): number {
    return this.ingest.ingestLagMs;
  }

  get workerPids(): readonly number[] {
    return this.ingest.workerPids;
  }

  get runningShards(): number {
    return 0;
  }

  get mediaLoop(): LoopLoad | null {
    return null;
  }

  /** Calls on this plane now. */
  get calls(): number {
    return this.#calls.size;
  }

  configure(settings: PlaneSettings): void {
    this.settings = settings;
  }

  async open(req: OpenCallRequest): Promise<OpenedCall> {
    const { callId } = req.info;
    const { media, dataDir, instanceId, maxWriteBacklogBytes } = this.settings;
    const opened: LegSource[] = [];
    try {
      const legs = {} as Record<LegRole, LegSource>;
      const allowSource = sourceFilter(media.allowedSources, req.fromAddress);
      for (const role of ROLES) {
        const { ssrc, media: remote, srtp } = req.legs[role];
        legs[role] = await this.ingest.openLeg({
          callId,
          role,
          payloadTypes: legPayloadTypes(req.info.codec, req.payloadType, req.dtmfPayloadType),
          dtmfPayloadType: req.dtmfPayloadType,
          ssrc,
          remote,
          allowSource,
          srtp,
        });
        opened.push(legs[role]);
      }
      const recording = await Recording.start({
        dataDir,
        recordingId: req.recordingId,
        instanceId,
        info: req.info,
        policy: req.policy,
        payloadKinds: this.ingest.payloadKinds,
        jitterBufferMs: media.jitterBufferMs,
        encryptTo: req.encryptTo && wrappingKey(req.encryptTo),
        maxWriteBacklogBytes,
      });
      for (const role of ROLES) legs[role].on('packet', (p) => recording.push(role, p));
      this.#calls.set(callId, { recording, legs, failing: false });
      const leg = (l: LegSource) => ({
        port: l.port,
        payloadTypes: l.options.payloadTypes,
        dtmfPayloadType: l.options.dtmfPayloadType,
        srtp: l.localSrtp,
      });
      return {
        meta: recording.meta,
        legs: { caller: leg(legs.caller), callee: leg(legs.callee) },
        workerPids: [...new Set(ROLES.map((r) => legs[r].workerPid))],
      };
    } catch (err) {
      for (const l of opened) l.close();
      throw err;
    }
  }

  async update(callId: string, change: MediaUpdate): Promise<boolean> {
    const call = this.#calls.get(callId);
    if (!call) return false;
    const { recording } = call;
    for (const [role, paused] of Object.entries(change.paused ?? {}) as [LegRole, boolean][]) recording.setPaused(role, paused);
    for (const [role, next] of Object.entries(change.relearn ?? {}) as [LegRole, LegStreamChange][]) await call.legs[role].relearnSource(next);
    if (change.streamChanges?.length) recording.noteStreamChanges(change.streamChanges);
    if (change.siprec) recording.noteSiprecUpdate(change.siprec.method, change.siprec.participants, change.siprec.numbers);
    return true;
  }

  hold(callId: string, held: boolean): void {
    const call = this.#calls.get(callId);
    if (!call) return;
    call.recording.noteHeld(held);
    for (const role of ROLES) void call.legs[role].hold(held);
  }

  resumeWriting(callId: string): void {
    const call = this.#calls.get(callId);
    if (!call) return;
    call.failing = false;
    call.recording.resumeWriting();
  }

  async finish(callId: string, reason: EndReason): Promise<RecordingMetadata> {
    const call = this.#calls.get(callId);
    if (!call) throw new ShardError('NO_SUCH_CALL', `no call ${callId} on this media plane`, { callId });
    this.#calls.delete(callId);
    const { recording, legs } = call;
    const end = performance.now();
    const reports: Partial<Record<LegRole, LegTransportReport>> = {};
    for (const role of ROLES) {
      reports[role] = await legs[role].report().catch(() => undefined);
      legs[role].close();
    }
    const onRetry = (err: unknown, attempt: number, waitMs: number) =>
      this.log.warn({ err, recordingId: recording.id, attempt, waitMs }, 'cannot close the recording yet; retrying');
    return recording.finish(reason, reports, end, { ...CLOSE_RETRY, onRetry });
  }

  async meta(callId: string): Promise<RecordingMetadata | undefined> {
    return this.#calls.get(callId)?.recording.meta;
  }

  /** On this thread an open is never given up on; in a shard, the daemon's ShardedPlane asks for this after a late open. */
  async discard(callId: string, recordingId: string): Promise<boolean> {
    const call = this.#calls.get(callId);
    // Another call under the same id (the SRC's retry) is not the one given up on.
    if (!call || call.recording.id !== recordingId) return true;
    await this.finish(callId, 'ingest-failure');
    await rm(call.recording.dir, { recursive: true, force: true });
    this.log.info({ callId, recordingId }, 'a call opened after the daemon gave up on it was undone');
    return true;
  }

  stats(): ReadonlyMap<string, CallStats> {
    const out = new Map<string, CallStats>();
    for (const { recording } of this.#calls.values()) {
      const leg = (role: LegRole) => {
        const st = recording.legs[role].stats;
        return { received: st.received, late: st.late, duplicate: st.duplicate, outOfSequence: st.outOfSequence };
      };
      out.set(recording.id, {
        legs: { caller: leg('caller'), callee: leg('callee') },
        bytesWritten: recording.bytesWritten,
        writeBacklogBytes: recording.writeBacklogBytes,
      });
    }
    return out;
  }

  /** Calls still open are the owner's to finish first; this stops the timers and mediasoup. */
  async close(): Promise<void> {
    clearInterval(this.#tick);
    clearInterval(this.#sweep);
    await this.ingest.close();
  }

  #drain(): void {
    const now = performance.now();
    for (const call of this.#calls.values()) call.recording.tick(now);
  }

  /** Calls that must end, and recordings whose audio stopped or started reaching the disk. */
  #check(): void {
    const { rtpTimeoutSeconds, maxDurationSeconds } = this.settings.calls;
    const now = performance.now();
    for (const [callId, call] of this.#calls) {
      const { recording } = call;
      const nowMs = recording.clock(now) / 8;
      if (nowMs >= maxDurationSeconds * 1000) this.safeEmit('end-due', callId, 'max-duration');
      // Paused streams send nothing by design: only silence while something should be sending ends a call.
      else if (!recording.allPaused && nowMs - recording.lastActivityMs >= rtpTimeoutSeconds * 1000) this.safeEmit('end-due', callId, 'rtp-timeout');
      const gap = recording.writeFailure;
      if (gap && !call.failing) {
        call.failing = true;
        this.safeEmit('write-failed', callId, { code: gap.code, message: gap.message, atMs: recording.writeFailureMs });
      } else if (!gap && call.failing) {
        call.failing = false;
        this.safeEmit('write-recovered', callId);
      }
    }
  }
}

function wrappingKey(kek: PublicKek): WrappingKey {
  return { id: kek.id, publicKey: createPublicKey(kek.publicKeyPem) };
}
