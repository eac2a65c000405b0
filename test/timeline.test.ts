import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DECODE_TABLES, encode } from '../daemon/media/g711.js';
import { LegTimeline, type PayloadKind } from '../daemon/media/LegTimeline.js';
import type { RtpPacket } from '../daemon/media/rtp.js';

const KINDS = new Map<number, PayloadKind>([
  [0, 'PCMU'],
  [8, 'PCMA'],
  [13, 'cn'],
  [101, 'dtmf'],
]);
const DELAY = 640; // 80 ms

/** A frame whose every sample encodes its frame number, so placement can be read back. */
function frame(n: number): Buffer {
  return encode('PCMU', new Int16Array(160).fill(1000 + n * 100));
}

function pkt(seq: number, ts: number, payload: Buffer, o: Partial<RtpPacket> = {}): RtpPacket {
  return { marker: false, payloadType: 0, sequence: seq & 0xffff, timestamp: ts >>> 0, ssrc: 42, payload, ...o };
}

function drainAll(t: LegTimeline, to: number): Int16Array {
  const out = new Int16Array(to - t.written);
  t.drain(to, out, 0, 1, out.length);
  return out;
}

/** Push a packet after draining up to its arrival minus the window, as the daemon's 20 ms tick does. */
function pushLive(t: LegTimeline, p: RtpPacket, arrival: number, sink: Int16Array[]): void {
  if (arrival - DELAY > t.written) sink.push(drainAll(t, arrival - DELAY));
  t.push(p, arrival);
}

function concat(parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Which frame number each 160-sample slot holds (-1 = silence). */
function slots(pcm: Int16Array): number[] {
  const r: number[] = [];
  for (let i = 0; i + 160 <= pcm.length; i += 160) {
    const v = pcm[i + 80] as number;
    r.push(v === 0 ? -1 : Math.round((v - 1000) / 100) + 0);
  }
  return r;
}

describe('LegTimeline', () => {
  test('in-order packets land back to back from their arrival position', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    for (let n = 0; n < 5; n++) t.push(pkt(100 + n, 5000 + n * 160, frame(n)), 1600 + n * 160);
    const s = slots(drainAll(t, 1600 + 6 * 160));
    assert.deepEqual(s, [...Array(10).fill(-1), 0, 1, 2, 3, 4, -1]);
    assert.equal(t.stats.received, 5);
    assert.equal(t.stats.lost, 0);
  });

  test('reordering within the window is undone; duplicates are dropped and counted', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    const order = [0, 2, 1, 3, 3, 5, 4];
    for (const n of order) t.push(pkt(10 + n, n * 160, frame(n)), n * 160 + 40);
    assert.deepEqual(slots(drainAll(t, 6 * 160)), [0, 1, 2, 3, 4, 5]);
    assert.equal(t.stats.duplicate, 1);
    assert.equal(t.stats.received, 6);
    assert.equal(t.stats.lost, 0);
  });

  test('a lost packet becomes silence of its length and is counted; the timeline does not shrink', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    for (const n of [0, 1, 3, 4]) t.push(pkt(n, n * 160, frame(n)), n * 160);
    assert.deepEqual(slots(drainAll(t, 5 * 160)), [0, 1, -1, 3, 4]);
    assert.equal(t.stats.lost, 1);
  });

  test('a packet later than the window is counted late and kept out of the audio', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    for (const n of [0, 1, 3]) t.push(pkt(n, n * 160, frame(n)), n * 160);
    drainAll(t, 4 * 160); // frame 2's slot is written as silence
    t.push(pkt(2, 2 * 160, frame(2)), 4 * 160 + 700);
    assert.equal(t.stats.late, 1);
    assert.equal(t.stats.lost, 0, 'a late packet is received, not lost');
  });

  test('16-bit sequence and 32-bit timestamp wrap-around are seamless', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    for (let n = 0; n < 10; n++) t.push(pkt(65530 + n, 0xfffffd00 + n * 160, frame(n)), n * 160);
    assert.deepEqual(slots(drainAll(t, 10 * 160)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(t.stats.resyncs, 0);
    assert.equal(t.stats.lost, 0);
  });

  test('a new SSRC mid-stream is re-placed at its arrival time, loss accounting continues', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    for (let n = 0; n < 3; n++) t.push(pkt(n, n * 160, frame(n)), n * 160);
    for (let n = 3; n < 6; n++) t.push(pkt(9000 + n, 777777 + n * 160, frame(n), { ssrc: 7 }), n * 160);
    assert.deepEqual(slots(drainAll(t, 6 * 160)), [0, 1, 2, 3, 4, 5]);
    assert.equal(t.stats.resyncs, 1);
    assert.equal(t.stats.lost, 0);
    assert.equal(t.stats.received, 6);
  });

  test('silence suppression / hold: a timestamp jump that matches the clock leaves silence of that length', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    const parts: Int16Array[] = [];
    t.push(pkt(1, 0, frame(1)), 0);
    // 20 s later: the RTP clock ran on, as it does for most PBXs on hold
    pushLive(t, pkt(2, 160 * 1000, frame(2), { marker: true }), 160 * 1000 + 30, parts);
    parts.push(drainAll(t, 160 * 1001));
    const s = slots(concat(parts));
    assert.equal(s[0], 1);
    assert.equal(s[1000], 2);
    assert.ok(s.slice(1, 1000).every((x) => x === -1));
    assert.equal(t.stats.resyncs, 0);
  });

  test('a hold where the RTP clock stopped is re-anchored to arrival time instead of being squeezed', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    for (let n = 0; n < 3; n++) t.push(pkt(n, n * 160, frame(n)), n * 160);
    const parts = [drainAll(t, 4 * 160)];
    // 20 s of hold, timestamp resumes where it stopped
    pushLive(t, pkt(3, 3 * 160, frame(3)), 160 * 1000, parts);
    parts.push(drainAll(t, 160 * 1001));
    const s = slots(concat(parts));
    assert.equal(s[1000], 3, 'resumed audio sits at its arrival time');
    assert.equal(t.stats.resyncs, 1);
    assert.equal(t.stats.late, 0);
  });

  test('DTMF and comfort noise stay out of the audio; DTMF goes to the event list once per event', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    t.push(pkt(1, 0, frame(1)), 0);
    const ev = (dur: number, end: boolean) => Buffer.from([5, (end ? 0x80 : 0) | 10, dur >> 8, dur & 0xff]);
    t.push(pkt(2, 160, ev(160, false), { payloadType: 101, marker: true }), 160);
    t.push(pkt(3, 160, ev(320, false), { payloadType: 101 }), 320);
    t.push(pkt(4, 160, ev(480, true), { payloadType: 101 }), 480);
    t.push(pkt(5, 160, ev(480, true), { payloadType: 101 }), 490);
    t.push(pkt(6, 640, Buffer.alloc(1), { payloadType: 13 }), 640);
    t.push(pkt(7, 800, frame(7)), 800);
    t.push(pkt(8, 960, frame(8), { payloadType: 18 }), 960);
    assert.deepEqual(slots(drainAll(t, 6 * 160)), [1, -1, -1, -1, -1, 7]);
    assert.deepEqual(t.dtmf, [{ atMs: 20, durationMs: 60 }], 'when and how long, never which digit');
    assert.equal(t.stats.lost, 0, 'event and CN packets share the sequence space');
    assert.equal(t.stats.unknownPayload, 1);
  });

  test('memory is one bounded ring: a long call allocates nothing per packet that is kept', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    const out = new Int16Array(160);
    const p = frame(1);
    for (let n = 0; n < 90_000; n++) {
      t.push(pkt(n, n * 160, p), n * 160);
      if (n > 10) t.drain((n - 5) * 160, out, 0, 1, 160);
    }
    assert.equal(t.stats.received, 90_000);
    assert.equal(t.stats.lost, 0);
    assert.ok(t.written > 89_000 * 160);
    assert.equal(t.ringSamples, 4096, 'a sender on time keeps the starting ring');
    assert.equal(DECODE_TABLES.PCMU.length, 256);
  });

  test("a sender whose clock runs ahead grows the ring instead of losing packets, and is re-anchored only past the largest ring's tolerance", () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    const sink: Int16Array[] = [];
    // 1 % fast: 160 samples of timestamp every 158.4 samples of our clock, 1.6 samples ahead a packet.
    const run = (from: number, to: number) => {
      for (let n = from; n < to; n++) pushLive(t, pkt(n, n * 160, frame(n % 50)), Math.round(n * 158.4), sink);
    };
    run(0, 2500); // 4,000 samples (500 ms) ahead: past the starting ring's room
    assert.equal(t.stats.late, 0);
    assert.equal(t.stats.resyncs, 0);
    assert.equal(t.ringSamples, 8192);
    run(2500, 4200); // 6,720 samples ahead: past the 6,272 the 8,192 ring tolerates
    assert.equal(t.stats.resyncs, 1);
    assert.equal(t.ringSamples, 8192, 'the ring never grows past ringSamplesFor');
    assert.equal(t.stats.received, 4200);
  });

  test('duplicates are recognised; a packet older than the window (taken on probation) does not pass for the newer number in its slot', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    const out = new Int16Array(160);
    for (let n = 0; n < 1100; n++) {
      if (n !== 1075) t.push(pkt(n, n * 160, frame(1)), n * 160);
      t.drain(n * 160 - DELAY, out, 0, 1, 160);
    }
    t.push(pkt(1010, 1010 * 160, frame(1)), 1100 * 160); // 89 behind
    assert.equal(t.stats.duplicate, 1);
    // 1,049 and 1,048 behind: the first is held on probation, the second confirms it and is older than the window.
    t.push(pkt(50, 50 * 160, frame(1)), 1100 * 160);
    t.push(pkt(51, 51 * 160, frame(1)), 1100 * 160);
    assert.equal(t.stats.outOfSequence, 1);
    assert.equal(t.stats.duplicate, 1, 'older than the window: not taken for a duplicate');
    // 1,075, lost so far, maps to the slot 51 did: it arrives now (late for the file) and is no duplicate.
    t.push(pkt(1075, 1075 * 160, frame(1)), 1100 * 160);
    assert.equal(t.stats.duplicate, 1, 'the old packet did not mark the newer number as received');
    t.push(pkt(1075, 1075 * 160, frame(1)), 1100 * 160);
    assert.equal(t.stats.duplicate, 2);
    assert.equal(t.stats.received, 1101);
  });

  test('packets with the right SSRC and random sequence numbers are dropped as out of sequence; loss stays truthful', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    const sink: Int16Array[] = [];
    let spoofed = 0;
    for (let n = 0; n < 400; n++) {
      pushLive(t, pkt(1000 + n, n * 160, frame(n % 10)), n * 160, sink);
      // An attacker's packet between every two real ones, far from the real sequence.
      const seq = (1000 + n + 500 + ((n * 7919) % 60000)) & 0xffff;
      pushLive(t, pkt(seq, (n * 1234567) >>> 0, frame(7)), n * 160 + 3, sink);
      spoofed++;
    }
    sink.push(drainAll(t, 401 * 160));
    assert.equal(t.stats.lost, 0, `lost ${t.stats.lost}`);
    assert.equal(t.stats.received, 400);
    assert.equal(t.stats.outOfSequence, spoofed);
    assert.equal(t.stats.resyncs, 0);
    assert.deepEqual(
      slots(concat(sink)).slice(0, 400),
      Array.from({ length: 400 }, (_, n) => n % 10),
    );
  });

  test('a genuine jump of the sequence is taken on its second packet and counted as loss', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    for (let n = 0; n < 10; n++) t.push(pkt(n, n * 160, frame(n)), n * 160);
    // 300 packets lost on the network (6 s): the first one after the gap is held on probation.
    for (let n = 310; n < 320; n++) t.push(pkt(n, n * 160, frame(n % 10)), n * 160);
    assert.equal(t.stats.outOfSequence, 1);
    assert.equal(t.stats.received, 19);
    assert.equal(t.stats.lost, 301, 'the gap and the probation packet');
  });
  test('a sender that switches from PCMU to PCMA mid-stream (a SIPREC re-offer) is decoded in the law of each packet', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY });
    const level = (n: number) => 1000 + n * 100;
    for (let n = 0; n < 10; n++) {
      const law = n < 5 ? 'PCMU' : 'PCMA';
      t.push(pkt(n, n * 160, encode(law, new Int16Array(160).fill(level(n))), { payloadType: law === 'PCMU' ? 0 : 8 }), n * 160);
    }
    const pcm = drainAll(t, 10 * 160);
    for (let n = 0; n < 10; n++) {
      const v = pcm[n * 160 + 80] as number;
      assert.ok(Math.abs(v - level(n)) <= level(n) / 16, `frame ${n} (${n < 5 ? 'PCMU' : 'PCMA'}) decoded to ${v}, sent ${level(n)}`);
    }
    assert.equal(t.stats.unknownPayload, 0);
  });
  test('a slot rewritten in the other law decodes in the later law, and a drained A-law slot is silence on the next lap of the ring', () => {
    const t = new LegTimeline({ payloadKinds: KINDS, delaySamples: DELAY, ringSamples: 4096 });
    // The same slots twice (a new SSRC re-anchored onto them): first A-law, then μ-law.
    t.push(pkt(0, 0, encode('PCMA', new Int16Array(160).fill(-3000)), { payloadType: 8 }), 0);
    t.push(pkt(0, 0, encode('PCMU', new Int16Array(160).fill(2000)), { ssrc: 7 }), 0);
    t.push(pkt(1, 160, encode('PCMA', new Int16Array(160).fill(-3000)), { payloadType: 8, ssrc: 7 }), 160);
    const first = drainAll(t, 320);
    assert.ok(Math.abs((first[80] as number) - 2000) <= 2000 / 16, `rewritten slot decoded to ${first[80]}`);
    assert.ok(Math.abs((first[240] as number) + 3000) <= 3000 / 16, `A-law slot decoded to ${first[240]}`);
    // One lap later, with no packets: the ring's slots read back as exact silence in both halves.
    const lap = drainAll(t, 320 + 4096);
    assert.equal(
      lap.findIndex((v) => v !== 0),
      -1,
    );
  });
});
