import { putBit, testBit } from './bits.js';
import { DECODE_TABLES, type G711Law } from './g711.js';
import { parseTelephoneEvent } from './dtmf.js';
import { seqDelta, tsDelta, type RtpPacket } from './rtp.js';

/** What a payload type carries on this leg: audio in one G.711 law (an SRC may switch laws mid-call), RFC 4733 events, comfort noise. */
export type PayloadKind = G711Law | 'dtmf' | 'cn';

export interface LegStats {
  /** Unique packets received (including late ones). */
  received: number;
  /** Expected from sequence numbers but never received. */
  lost: number;
  /** Arrived after their place in the file was written; not in the audio. */
  late: number;
  duplicate: number;
  /** Payload types the leg was not set up for. */
  unknownPayload: number;
  /** Not parseable as RTP (mediasoup drops most of these before us; see nonMediaBytes). */
  malformed: number;
  /** New SSRC, sequence restart or timestamp jump: the leg was re-placed on the call clock. */
  resyncs: number;
  /**
   * Sequence numbers far from the stream's (more than MAX_MISORDER away)
   * that the next packet did not confirm: spoofed or corrupt, dropped,
   * counted neither as received nor as making others lost.
   */
  outOfSequence: number;
  /** RFC 3550 interarrival jitter, in samples. */
  jitter: number;
}

/**
 * That a key was pressed, when and for how long — never which key: digits
 * keyed during a call are card numbers and security codes often enough
 * (PCI DSS 3.3.1 forbids keeping the latter at all), so the value is read
 * only to tell events apart. Only a profile that keeps digits encrypted
 * (`dtmfDigits: encrypted`) has them collected, apart (`keyed`), for its
 * envelope and nothing else.
 */
export interface DtmfEvent {
  /** Offset from the start of the recording. */
  readonly atMs: number;
  durationMs: number;
}

export interface LegTimelineOptions {
  readonly payloadKinds: ReadonlyMap<number, PayloadKind>;
  /** How far behind the call clock the file is written (the jitter window). */
  readonly delaySamples: number;
  /** The ring's largest capacity in samples; a power of two (default: sized to the jitter window, ringSamplesFor). */
  readonly ringSamples?: number;
  /** Collect the keys pressed, for a profile that keeps them encrypted. */
  readonly keepDigits?: boolean;
}

/** RFC 4733 events 0–15 as keys. */
const KEYS = '0123456789*#ABCD';

/** A key pressed: for the digits envelope only, never the metadata. */
export interface KeyedDigit {
  readonly atMs: number;
  readonly key: string;
}

/** Sequence numbers behind the highest whose duplicates are recognised (20 s at 20 ms). */
const SEQ_WINDOW = 1024;
/** A cleared ring slot: the μ-law code for 0, with its law bit clear. */
const SILENT_CODE = 0xff;
const ULAW = DECODE_TABLES.PCMU;
const ALAW = DECODE_TABLES.PCMA;
const LARGEST_PACKET = 1280;
/** Room in the ring beyond the jitter window: the largest packet, and how far a timestamp may disagree with the clock before the leg is re-anchored. */
const RING_SLACK = LARGEST_PACKET + 6000;
/**
 * The ring a leg starts with leaves 250 ms for a timestamp ahead of the clock; a sender whose clock
 * drifts further (≈ 40 min at 100 ppm) grows it, up to RING_SLACK, instead of being re-anchored.
 */
const START_SLACK = LARGEST_PACKET + 2000;

function powerOfTwoAtLeast(n: number): number {
  let size = 1024;
  while (size < n) size *= 2;
  return size;
}

/** The smallest power-of-two ring that holds the jitter window plus RING_SLACK (8192 samples, 9 KB, for 80 ms): the most a leg's ring grows to. */
export function ringSamplesFor(delaySamples: number): number {
  return powerOfTwoAtLeast(delaySamples + RING_SLACK);
}
const MAX_SEQ_JUMP = 3000;
/**
 * A packet further than this (2 s at 20 ms) ahead of or behind the highest
 * sequence number is taken only if the next packet follows it (RFC 3550
 * A.1's probation): one stray packet with the right SSRC must not inflate
 * `lost` by thousands or restart the stream.
 */
const MAX_MISORDER = 100;
const MAX_DTMF_EVENTS = 10_000;

/** A leg's counters before its first packet. */
export function emptyLegStats(): LegStats {
  return { received: 0, lost: 0, late: 0, duplicate: 0, unknownPayload: 0, malformed: 0, resyncs: 0, outOfSequence: 0, jitter: 0 };
}

/**
 * One leg's audio placed on the call clock (sample 0 = call start, 8 kHz).
 *
 * Packets are placed by RTP timestamp relative to an anchor taken from their
 * arrival time, so reordering and jitter are absorbed, silence suppression and
 * holds leave silence of the right length, and the file never shrinks when
 * packets are lost. When the timestamp stops agreeing with the clock (new
 * SSRC, restarted stream, skewed sender) the leg is re-anchored to arrival
 * time. Memory is one ring, whatever the call length: it keeps the G.711
 * codes as they came (a byte a sample, and a bit for the law, since an SRC
 * may switch laws mid-call) and decodes them as they are drained, half the
 * memory of a ring of decoded samples for the same window. It starts sized for
 * the jitter window and a sender on time (4.5 KB for 80 ms) and grows, at most
 * to ringSamplesFor, when a sender's timestamps run ahead of the clock.
 */
export class LegTimeline {
  readonly stats: LegStats = emptyLegStats();
  readonly dtmf: DtmfEvent[] = [];
  /** The keys behind `dtmf`, in the same order; empty unless the options keep digits. */
  readonly keyed: KeyedDigit[] = [];

  /** Samples before this position have been handed to the writer. */
  written = 0;
  /** Call-clock time (ms) of the last packet, or undefined before the first. */
  lastPacketMs: number | undefined;
  firstPacketMs: number | undefined;

  private ring: Uint8Array;
  /** Bit i set: ring slot i holds an A-law code (clear: μ-law). */
  private alaw: Uint32Array;
  private mask: number;
  private readonly maxRing: number;
  private readonly reanchorSamples: number;

  private anchor: { ssrc: number; ts: number; pos: number } | undefined;
  // Sequence tracking for the current source; counts of earlier sources are folded into priorExpected.
  private seqBase = 0;
  private seqMax = -1;
  private lastSeq16 = 0;
  private priorExpected = 0;
  /** Bit (n mod SEQ_WINDOW) set: extended sequence number n, within the window below seqMax, was received. */
  private readonly seen = new Uint32Array(SEQ_WINDOW / 32);
  private prevTransit: number | undefined;
  /** The sequence number that would confirm the last far-off packet; -1 when none is pending. */
  private probation = -1;
  private lastDtmfTs: number | undefined;

  constructor(private readonly opts: LegTimelineOptions) {
    const max = opts.ringSamples ?? ringSamplesFor(opts.delaySamples);
    if (max & (max - 1)) throw new RangeError(`ringSamples must be a power of two, got ${max}`);
    this.maxRing = max;
    this.reanchorSamples = Math.min(8000, max - opts.delaySamples - LARGEST_PACKET);
    if (this.reanchorSamples < 800) throw new RangeError('ring too small for the jitter window');
    const size = Math.min(max, powerOfTwoAtLeast(opts.delaySamples + START_SLACK));
    this.ring = new Uint8Array(size).fill(SILENT_CODE);
    this.alaw = new Uint32Array(size >> 5);
    this.mask = size - 1;
  }

  /** Samples the ring holds now (it grows as a sender's timestamps run ahead). */
  get ringSamples(): number {
    return this.ring.length;
  }

  /** Accept one packet that arrived at call-clock sample `arrival`. */
  push(p: RtpPacket, arrival: number): void {
    const kind = this.opts.payloadKinds.get(p.payloadType);
    if (!kind) {
      this.stats.unknownPayload++;
      return;
    }
    if (!this.anchor || this.anchor.ssrc !== p.ssrc) this.resync(p, arrival);
    else if (this.isFarOff(p.sequence)) {
      if (p.sequence !== this.probation) {
        this.probation = (p.sequence + 1) & 0xffff;
        this.stats.outOfSequence++;
        return;
      }
      // Two in a row: the sender really jumped (a long gap) or restarted.
      this.probation = -1;
      if (this.isSequenceRestart(p.sequence)) this.resync(p, arrival);
    }
    if (!this.trackSequence(p)) return;

    const ms = arrival / 8;
    this.firstPacketMs ??= ms;
    this.lastPacketMs = ms;

    if (kind === 'dtmf') return this.noteDtmf(p);
    if (kind === 'cn') return; // comfort noise stays out of the file: silence is written instead

    this.updateJitter(p.timestamp, arrival);
    let pos = this.position(p.timestamp);
    const inOrder = this.seqMax === this.extended(p.sequence);
    const drift = pos - arrival;
    // A timestamp that disagrees with the clock by more than the ring can
    // hold, or a stream that as a whole arrives too late, is re-anchored.
    if (Math.abs(drift) > this.reanchorSamples || (inOrder && pos < this.written)) {
      this.anchor = { ssrc: p.ssrc, ts: p.timestamp, pos: arrival };
      this.stats.resyncs++;
      pos = arrival;
    }
    const len = p.payload.length;
    const ahead = pos + len - this.written;
    if (ahead > this.ring.length && ahead <= this.maxRing) this.grow(ahead);
    if (pos + len <= this.written || ahead > this.ring.length) {
      this.stats.late++;
      return;
    }
    const skip = Math.max(0, this.written - pos);
    this.place(kind, p.payload, skip, pos + skip);
  }

  /**
   * Hand samples [written, target) to `out` at `offset`, every `stride`
   * elements (stride 2 interleaves stereo). Returns how many were written;
   * at most `max`.
   */
  drain(target: number, out: Int16Array, offset: number, stride: number, max: number): number {
    const n = Math.max(0, Math.min(target - this.written, max));
    const { ring, alaw, mask } = this;
    let w = this.written;
    for (let i = 0, o = offset; i < n; i++, o += stride, w++) {
      const j = w & mask;
      const code = ring[j] as number;
      if (testBit(alaw, j)) {
        out[o] = ALAW[code] as number;
        putBit(alaw, j, false);
      } else out[o] = ULAW[code] as number;
      ring[j] = SILENT_CODE;
    }
    this.written = w;
    return n;
  }

  /** Double the ring until it holds `samples` from `written` on, moving what it holds to the same positions. */
  private grow(samples: number): void {
    const { ring, alaw, mask } = this;
    const size = Math.min(this.maxRing, powerOfTwoAtLeast(samples));
    const next = new Uint8Array(size).fill(SILENT_CODE);
    const nextAlaw = new Uint32Array(size >> 5);
    const nextMask = size - 1;
    for (let w = this.written, end = this.written + ring.length; w < end; w++) {
      const j = w & mask;
      const k = w & nextMask;
      next[k] = ring[j] as number;
      if (testBit(alaw, j)) putBit(nextAlaw, k, true);
    }
    this.ring = next;
    this.alaw = nextAlaw;
    this.mask = nextMask;
  }

  /** Copy `payload` from `from` into the ring at `pos`, marking each slot's law. */
  private place(law: G711Law, payload: Uint8Array, from: number, pos: number): void {
    const { ring, alaw, mask } = this;
    const isAlaw = law === 'PCMA';
    for (let i = from, j = pos & mask; i < payload.length; i++, j = (j + 1) & mask) {
      ring[j] = payload[i] as number;
      putBit(alaw, j, isAlaw);
    }
  }

  private position(ts: number): number {
    const a = this.anchor as { ts: number; pos: number };
    return a.pos + tsDelta(a.ts, ts);
  }

  private resync(p: RtpPacket, arrival: number): void {
    if (this.anchor) this.stats.resyncs++;
    this.anchor = { ssrc: p.ssrc, ts: p.timestamp, pos: arrival };
    this.restartSequence(p.sequence);
    this.prevTransit = undefined;
  }

  private restartSequence(seq: number): void {
    if (this.seqMax >= 0) this.priorExpected += this.seqMax - this.seqBase + 1;
    this.seqBase = seq;
    this.seqMax = seq - 1;
    this.lastSeq16 = (seq - 1) & 0xffff;
    this.seen.fill(0);
  }

  private extended(seq: number): number {
    return this.seqMax + seqDelta(this.lastSeq16, seq);
  }

  private isFarOff(seq: number): boolean {
    return Math.abs(this.extended(seq) - this.seqMax) > MAX_MISORDER;
  }

  /** The sender restarted its sequence numbers without a new SSRC. */
  private isSequenceRestart(seq: number): boolean {
    return Math.abs(this.extended(seq) - this.seqMax) > MAX_SEQ_JUMP;
  }

  /** Returns false for duplicates. Keeps loss accounting current. */
  private trackSequence(p: RtpPacket): boolean {
    const ext = this.extended(p.sequence);
    if (ext < this.seqBase) {
      // Older than the first packet we saw: it extends the expected range.
      this.seqBase = ext;
    }
    if (ext > this.seqMax) {
      // The slots between stood for numbers a window older; they stand for these now, none received yet.
      if (ext - this.seqMax >= SEQ_WINDOW) this.seen.fill(0);
      else for (let n = this.seqMax + 1; n < ext; n++) this.markSeen(n, false);
      this.seqMax = ext;
      this.lastSeq16 = p.sequence;
      this.markSeen(ext, true);
    } else if (ext > this.seqMax - SEQ_WINDOW) {
      if (this.wasSeen(ext)) {
        this.stats.duplicate++;
        return false;
      }
      this.markSeen(ext, true);
    } // else older than the window: not told from a duplicate, and its slot is a newer number's (it is late for the file anyway)
    this.stats.received++;
    this.stats.lost = Math.max(0, this.priorExpected + (this.seqMax - this.seqBase + 1) - this.stats.received);
    return true;
  }

  private wasSeen(ext: number): boolean {
    return testBit(this.seen, ext & (SEQ_WINDOW - 1));
  }

  private markSeen(ext: number, received: boolean): void {
    putBit(this.seen, ext & (SEQ_WINDOW - 1), received);
  }

  private updateJitter(ts: number, arrival: number): void {
    const transit = arrival - ts;
    if (this.prevTransit !== undefined) {
      const d = Math.abs(tsDelta(this.prevTransit | 0, transit | 0));
      if (d < 80000) this.stats.jitter += (d - this.stats.jitter) / 16;
    }
    this.prevTransit = transit;
  }

  private noteDtmf(p: RtpPacket): void {
    if (!this.anchor) return;
    const ev = parseTelephoneEvent(p.payload);
    if (!ev) return;
    const last = this.dtmf[this.dtmf.length - 1];
    if (this.lastDtmfTs === p.timestamp && last) {
      last.durationMs = Math.max(last.durationMs, ev.duration / 8);
      return;
    }
    if (this.dtmf.length >= MAX_DTMF_EVENTS) return;
    this.lastDtmfTs = p.timestamp;
    const atMs = Math.round(this.position(p.timestamp) / 8);
    this.dtmf.push({ atMs, durationMs: ev.duration / 8 });
    if (this.opts.keepDigits) this.keyed.push({ atMs, key: KEYS[ev.event] ?? `event ${ev.event}` });
  }
}
