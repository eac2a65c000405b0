import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Direction } from '../config/Config.js';
import type { LegRole, LegTransportReport } from '../ingest/LegSource.js';
import type { G711Law } from '../media/g711.js';
import { emptyLegStats, LegTimeline, type PayloadKind } from '../media/LegTimeline.js';
import { parseRtp } from '../media/rtp.js';
import { retryTransient, type RetryOptions } from '../retry.js';
import {
  dtmfDigitsFileName,
  envelopeName,
  METADATA_FORMAT,
  writeMetadata,
  type DtmfDigitsFile,
  type SiprecMetadata,
  type SiprecUpdate,
  type StreamChangeNote,
  type EndReason,
  type GapMetadata,
  type LegMetadata,
  type RecordingMetadata,
} from './metadata.js';
import { outputsFor, type OutputSpec } from './outputs.js';
import type { RecordingPolicy } from './profiles.js';
import { recordingDir } from './recordingId.js';
import type { AudioWriter, WriteGap } from './AudioWriterTypes.js';
import { EnvelopeWriter } from './EnvelopeWriter.js';
import { WavWriter } from './WavWriter.js';
import { sealBuffer, type WrappingKey } from '../seal/envelope.js';
import { writeFileDurably } from '../fsutil.js';
import { pcmMs } from './wavFormat.js';

export interface CallInfo {
  readonly callId: string;
  readonly direction: Direction;
  readonly caller: { readonly number: string };
  readonly callee: { readonly number: string };
  readonly codec: G711Law;
  /** Set when the call came as a SIPREC recording session. */
  readonly siprec?: SiprecMetadata | undefined;
}

export interface RecordingOptions {
  readonly dataDir: string;
  readonly recordingId: string;
  readonly instanceId: string;
  readonly info: CallInfo;
  readonly policy: RecordingPolicy;
  readonly payloadKinds: ReadonlyMap<number, PayloadKind>;
  readonly jitterBufferMs: number;
  /** For a profile that encrypts: the KEK the audio is encrypted under as it is written. */
  readonly encryptTo: WrappingKey | null;
  /** Per file: audio waiting for the disk past this is dropped as a STALLED gap (recording.maxWriteBacklogKiB). */
  readonly maxWriteBacklogBytes: number;
}

export const ROLES: readonly LegRole[] = ['caller', 'callee'];
/** Closing a recording on a full disk or without descriptors: tried for about a minute, then left to crash recovery. */
export const CLOSE_RETRY = { attempts: 14, baseMs: 250, maxMs: 8000 } as const;
/** The gap code of media shed under overload. */
export const OVERLOAD = 'OVERLOAD';
/** A call shed and restored again and again keeps this many stretches (the metadata stays bounded). */
const MAX_HELD_NOTED = 1000;
/** Entries kept per list of pauses, SIPREC updates and stream changes. */
const MAX_NOTES = 1000;
const CHUNK = 1600;
// Shared by all recordings: the event loop drains one recording at a time.
const scratch: Record<LegRole, Int16Array> = { caller: new Int16Array(CHUNK), callee: new Int16Array(CHUNK) };
const interleaved = new Int16Array(CHUNK * 2);

interface Output extends OutputSpec {
  readonly writer: AudioWriter;
}

/** A WAV file, or, when the profile encrypts, its envelope written as the call runs. */
function openWriter(dir: string, spec: OutputSpec, opts: RecordingOptions): Promise<AudioWriter> {
  const channels = spec.legs.length;
  const { encryptTo, maxWriteBacklogBytes } = opts;
  return encryptTo
    ? EnvelopeWriter.create(path.join(dir, envelopeName(spec.name)), channels, encryptTo, maxWriteBacklogBytes)
    : WavWriter.create(path.join(dir, spec.name), channels, maxWriteBacklogBytes);
}

function failureOf(w: AudioWriter): WriteGap | undefined {
  return w.suspended ?? w.stalled;
}

/**
 * One call being recorded: both legs' timelines on one clock (sample 0 = the
 * moment the call was announced), drained into the configured WAV files a
 * jitter window behind real time.
 */
export class Recording {
  readonly legs: Record<LegRole, LegTimeline>;
  private readonly delaySamples: number;
  /** The KEK the keys pressed are sealed under at the end, when the profile keeps them. */
  private readonly digitsKek: WrappingKey | null;

  private constructor(
    readonly dir: string,
    readonly meta: RecordingMetadata,
    private readonly outputs: Output[],
    private readonly startMono: number,
    opts: RecordingOptions,
  ) {
    this.delaySamples = opts.jitterBufferMs * 8;
    this.digitsKek = opts.policy.profile.dtmfDigits === 'encrypted' ? opts.encryptTo : null;
    const keepDigits = this.digitsKek !== null;
    const make = () => new LegTimeline({ payloadKinds: opts.payloadKinds, delaySamples: this.delaySamples, keepDigits });
    this.legs = { caller: make(), callee: make() };
  }

  static async start(opts: RecordingOptions, startMono: number = performance.now()): Promise<Recording> {
    const id = opts.recordingId;
    const dir = recordingDir(opts.dataDir, id);
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const specs = outputsFor(opts.policy.channelMode, id);
    const leg = (role: LegRole): LegMetadata => ({
      number: opts.info[role].number,
      ssrcs: [],
      firstPacketMs: null,
      nonMediaBytes: 0,
      source: null,
      refusedSources: [],
      ...emptyLegStats(),
    });
    const meta: RecordingMetadata = {
      format: METADATA_FORMAT,
      recordingId: id,
      instanceId: opts.instanceId,
      callId: opts.info.callId,
      state: 'recording',
      recovered: false,
      direction: opts.info.direction,
      codec: opts.info.codec,
      channelMode: opts.policy.channelMode,
      profile: opts.policy.profile,
      startedAt: new Date().toISOString(),
      endedAt: null,
      durationMs: null,
      endReason: null,
      legs: { caller: leg('caller'), callee: leg('callee') },
      dtmf: [],
      gaps: [],
      files: specs.map((s) => ({ name: s.name, legs: [...s.legs], channels: s.legs.length, dataBytes: 0, durationMs: 0 })),
      ...(opts.info.siprec ? { siprec: opts.info.siprec } : {}),
    };
    // Metadata first: crash recovery starts from it and repairs whatever audio exists.
    await writeMetadata(dir, meta);
    const outputs: Output[] = [];
    for (const spec of specs) outputs.push({ ...spec, writer: await openWriter(dir, spec, opts) });
    return new Recording(dir, meta, outputs, startMono, opts);
  }

  get id(): string {
    return this.meta.recordingId;
  }

  /** Shed under overload: since when (call-clock ms), and the stretches already over. */
  #heldSinceMs: number | undefined;
  readonly #held: { fromMs: number; toMs: number }[] = [];

  /**
   * The call's media was shed under overload (its legs held: the worker
   * drops their packets) or is taken again: each stretch becomes an OVERLOAD
   * gap of every file.
   */
  noteHeld(held: boolean, mono: number = performance.now()): void {
    const nowMs = Math.round(this.clock(mono) / 8);
    if (held && this.#heldSinceMs === undefined) this.#heldSinceMs = nowMs;
    else if (!held && this.#heldSinceMs !== undefined) {
      if (this.#held.length < MAX_HELD_NOTED) this.#held.push({ fromMs: this.#heldSinceMs, toMs: nowMs });
      this.#heldSinceMs = undefined;
    }
  }

  /** Paused legs, since when (call-clock ms). */
  readonly #pausedSince = new Map<LegRole, number>();
  /** Call-clock ms of the last pause or resume: RTP silence is not a vanished SRC before it. */
  #lastPauseChangeMs = 0;

  /**
   * The SRC paused or resumed a stream (SIPREC a=inactive / port 0): the
   * audio keeps its place on the call clock (silence), the pause goes to
   * the metadata with its start and end.
   */
  setPaused(role: LegRole, paused: boolean, mono: number = performance.now()): void {
    const nowMs = Math.round(this.clock(mono) / 8);
    const since = this.#pausedSince.get(role);
    if (paused && since === undefined) this.#pausedSince.set(role, nowMs);
    else if (!paused && since !== undefined) {
      this.#pausedSince.delete(role);
      this.#note((this.meta.pauses ??= []), [{ leg: role, fromMs: since, toMs: nowMs }]);
    } else return;
    this.#lastPauseChangeMs = nowMs;
  }

  /** Every leg paused: no RTP is expected, so none is no sign of a vanished SRC. */
  get allPaused(): boolean {
    return this.#pausedSince.size === ROLES.length;
  }

  /** Call-clock ms since which RTP was last expected: the latest packet, pause or resume. */
  get lastActivityMs(): number {
    return Math.max(this.lastPacketMs ?? 0, this.#lastPauseChangeMs);
  }

  /** A SIPREC metadata update: kept with its time; a leg's party named in it replaces a placeholder. */
  noteSiprecUpdate(
    method: string,
    participants: SiprecUpdate['participants'],
    numbers: Partial<Record<LegRole, string>>,
    mono: number = performance.now(),
  ): void {
    const siprec = this.meta.siprec;
    if (!siprec) return;
    this.#note((siprec.updates ??= []), [{ atMs: Math.round(this.clock(mono) / 8), at: new Date().toISOString(), method, participants }]);
    for (const role of ROLES) {
      const n = numbers[role];
      if (n) this.meta.legs[role].number = n;
    }
  }

  /** Keep `items` in a list of the metadata, up to MAX_NOTES: an SRC that re-offers forever cannot grow a recording's memory or metadata without bound. */
  #note<T>(list: T[], items: readonly T[]): void {
    const room = Math.max(0, MAX_NOTES - list.length);
    list.push(...items.slice(0, room));
    if (items.length > room) this.meta.notesOmitted = (this.meta.notesOmitted ?? 0) + items.length - room;
  }

  /** Stream changes in a SIPREC dialog, kept with their time. */
  noteStreamChanges(changes: readonly StreamChangeNote[], mono: number = performance.now()): void {
    const siprec = this.meta.siprec;
    if (!siprec) return;
    const stamp = { atMs: Math.round(this.clock(mono) / 8), at: new Date().toISOString() };
    this.#note(
      (siprec.streamChanges ??= []),
      changes.map((c) => ({ ...c, ...stamp })),
    );
  }

  /** Audio bytes handed to the writers so far, all files together. */
  get bytesWritten(): number {
    return this.outputs.reduce((sum, o) => sum + o.writer.dataBytes, 0);
  }

  /** Bytes handed to the file system and not written yet, all files together. */
  get writeBacklogBytes(): number {
    return this.outputs.reduce((sum, o) => sum + o.writer.backlogBytes, 0);
  }

  /** What is keeping audio off the disk now (the first writer's failed write, or a disk too far behind), or undefined. */
  get writeFailure(): WriteGap | undefined {
    const o = this.failingOutput();
    return o && failureOf(o.writer);
  }

  /** Call-clock ms at which the current write failure began, or undefined. */
  get writeFailureMs(): number | undefined {
    const o = this.failingOutput();
    const gap = o && failureOf(o.writer);
    return o && gap ? pcmMs(gap.fromByte, o.legs.length) : undefined;
  }

  private failingOutput(): Output | undefined {
    return this.outputs.find((o) => failureOf(o.writer));
  }

  /** Let suspended writers try again from their next flush. */
  resumeWriting(): void {
    for (const o of this.outputs) if (o.writer.suspended) o.writer.resume();
  }

  /** Call-clock position of `mono` (a performance.now() value), in samples. */
  clock(mono: number = performance.now()): number {
    return Math.floor((mono - this.startMono) * 8);
  }

  /** Call-clock ms of the latest packet on either leg (undefined before any). */
  get lastPacketMs(): number | undefined {
    const a = this.legs.caller.lastPacketMs;
    const b = this.legs.callee.lastPacketMs;
    return a === undefined ? b : b === undefined ? a : Math.max(a, b);
  }

  push(role: LegRole, packet: Buffer, mono: number = performance.now()): void {
    const r = parseRtp(packet);
    const leg = this.legs[role];
    if (r.ok) leg.push(r.packet, this.clock(mono));
    else leg.stats.malformed++;
  }

  /** Write everything that is now older than the jitter window. */
  tick(mono: number = performance.now()): void {
    this.drainTo(this.clock(mono) - this.delaySamples);
  }

  /** Drain all buffered audio up to now, close the files, write final metadata. */
  async finish(
    reason: EndReason,
    reports: Partial<Record<LegRole, LegTransportReport>>,
    mono: number = performance.now(),
    retry: RetryOptions = { attempts: 1, baseMs: 0, maxMs: 0 },
  ): Promise<RecordingMetadata> {
    this.meta.state = 'finalizing';
    this.drainTo(this.clock(mono));
    const durationSamples = this.legs.caller.written;
    const gaps: GapMetadata[] = [];
    for (const o of this.outputs) {
      const closed = await o.writer.close();
      const frameMs = (bytes: number) => pcmMs(bytes, o.legs.length);
      const f = this.meta.files.find((x) => x.name === o.name);
      if (f) Object.assign(f, { dataBytes: closed.dataBytes, durationMs: frameMs(closed.dataBytes) });
      for (const g of closed.gaps)
        gaps.push({
          file: o.name,
          fromMs: frameMs(g.fromByte),
          toMs: frameMs(g.toByte),
          code: g.code,
          message: g.message,
          ...(g.chunks ? { chunks: g.chunks } : {}),
        });
    }
    this.noteHeld(false, mono);
    for (const o of this.outputs)
      for (const h of this.#held)
        gaps.push({ file: o.name, ...h, code: OVERLOAD, message: 'media shed under overload: ingest lag past media.maxIngestLagMs' });
    this.meta.gaps = gaps.sort((a, b) => a.fromMs - b.fromMs);
    for (const role of [...this.#pausedSince.keys()]) this.setPaused(role, false, mono);
    for (const role of ROLES) {
      const t = this.legs[role];
      const rep = reports[role];
      Object.assign(this.meta.legs[role], {
        ...t.stats,
        jitter: Math.round(t.stats.jitter),
        firstPacketMs: t.firstPacketMs === undefined ? null : Math.round(t.firstPacketMs),
        ssrcs: rep?.ssrcs ?? [],
        nonMediaBytes: rep?.nonMediaBytes ?? 0,
        source: rep?.source ? `${rep.source.ip}:${rep.source.port}` : null,
        refusedSources: (rep?.refusedSources ?? []).map((a) => `${a.ip}:${a.port}`),
      });
    }
    this.meta.dtmf = ROLES.flatMap((leg) => this.legs[leg].dtmf.map((d) => ({ leg, ...d }))).sort((a, b) => a.atMs - b.atMs);
    if (this.digitsKek) {
      const kek = this.digitsKek;
      const name = dtmfDigitsFileName(this.id);
      const file: DtmfDigitsFile = {
        format: 'callvault-dtmf/1',
        recordingId: this.id,
        digits: ROLES.flatMap((leg) => this.legs[leg].keyed.map((d) => ({ leg, ...d }))).sort((a, b) => a.atMs - b.atMs),
      };
      const plain = Buffer.from(JSON.stringify(file));
      try {
        await retryTransient(() => writeFileDurably(path.join(this.dir, name), sealBuffer(kek, plain), 0o640), retry);
      } finally {
        plain.fill(0);
      }
      this.meta.dtmfDigitsFile = name;
    }
    this.meta.endedAt = new Date().toISOString();
    this.meta.durationMs = Math.round(durationSamples / 8);
    this.meta.endReason = reason;
    this.meta.state = 'closed';
    // The audio is safe on disk by now; out of descriptors or space for a moment must not lose the metadata.
    await retryTransient(() => writeMetadata(this.dir, this.meta), retry);
    return this.meta;
  }

  private drainTo(target: number): void {
    const { caller, callee } = this.legs;
    while (caller.written < target) {
      const n = caller.drain(target, scratch.caller, 0, 1, CHUNK);
      callee.drain(caller.written, scratch.callee, 0, 1, CHUNK);
      for (const o of this.outputs) {
        if (o.legs.length === 1) {
          o.writer.write(scratch[o.legs[0] as LegRole], n);
          continue;
        }
        const l = scratch[o.legs[0] as LegRole];
        const r = scratch[o.legs[1] as LegRole];
        for (let i = 0, j = 0; i < n; i++, j += 2) {
          interleaved[j] = l[i] as number;
          interleaved[j + 1] = r[i] as number;
        }
        o.writer.write(interleaved, n);
      }
    }
  }
}
