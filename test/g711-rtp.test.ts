import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DECODE_TABLES, encode, linearToAlaw, linearToUlaw } from '../daemon/media/g711.js';
import { buildRtp, parseRtp, seqDelta, tsDelta } from '../daemon/media/rtp.js';
import { parseTelephoneEvent } from '../daemon/media/dtmf.js';

test('G.711 reference points (ITU-T G.711 tables)', () => {
  assert.equal(DECODE_TABLES.PCMU[0xff], 0);
  assert.equal(DECODE_TABLES.PCMU[0x00], -32124);
  assert.equal(DECODE_TABLES.PCMU[0x80], 32124);
  assert.equal(DECODE_TABLES.PCMA[0xd5], 8);
  assert.equal(DECODE_TABLES.PCMA[0x55], -8);
  assert.equal(DECODE_TABLES.PCMA[0xaa], 32256);
});

test('G.711 encode(decode(code)) is the identity for every code', () => {
  for (let c = 0; c < 256; c++) {
    // μ-law has two zeros (0x7f, 0xff); both decode to 0 and encode back to 0xff.
    const u = linearToUlaw(DECODE_TABLES.PCMU[c] as number);
    assert.equal(u, c === 0x7f ? 0xff : c, `PCMU code ${c}`);
    assert.equal(linearToAlaw(DECODE_TABLES.PCMA[c] as number), c, `PCMA code ${c}`);
  }
});

test('G.711 quantisation error stays within the segment step', () => {
  for (const law of ['PCMU', 'PCMA'] as const) {
    const pcm = Int16Array.from({ length: 2000 }, (_, i) => Math.round(30000 * Math.sin(i / 7)));
    const back = Array.from(encode(law, pcm), (c) => DECODE_TABLES[law][c] as number);
    for (const [i, x] of pcm.entries()) assert.ok(Math.abs(x - (back[i] as number)) <= Math.max(16, Math.abs(x) / 16), `${law} ${x} -> ${back[i]}`);
  }
});

test('RTP parser accepts a well-formed packet and exposes the payload', () => {
  const p = buildRtp({ marker: true, payloadType: 8, sequence: 65535, timestamp: 0xfffffff0, ssrc: 0xdeadbeef }, Buffer.from([1, 2, 3]));
  const r = parseRtp(p);
  assert.ok(r.ok);
  assert.deepEqual(
    { ...r.packet, payload: [...r.packet.payload] },
    { marker: true, payloadType: 8, sequence: 65535, timestamp: 0xfffffff0, ssrc: 0xdeadbeef, payload: [1, 2, 3] },
  );
});

test('RTP parser rejects malformed packets with a reason, never reading out of bounds', () => {
  const good = buildRtp({ marker: false, payloadType: 0, sequence: 1, timestamp: 1, ssrc: 1 }, Buffer.alloc(4));
  const cases: [string, Buffer][] = [
    ['truncated', good.subarray(0, 11)],
    ['version', Buffer.from([0x40, ...good.subarray(1)])],
    ['csrc-overrun', Buffer.from([0x8f, ...good.subarray(1)])],
    ['extension-overrun', Buffer.from([0x90, ...good.subarray(1, 12), 0xbe, 0xde, 0x00, 0x09])],
    ['bad-padding', Buffer.from([0xa0, ...good.subarray(1, 15), 200])],
    ['bad-padding', Buffer.from([0xa0, ...good.subarray(1, 15), 0])],
  ];
  for (const [reason, buf] of cases) assert.deepEqual(parseRtp(buf), { ok: false, reason }, reason);
  const padded = parseRtp(Buffer.from([0xa0, ...good.subarray(1, 14), 0, 2]));
  assert.ok(padded.ok && padded.packet.payload.length === 2);
});

test('sequence and timestamp distances wrap', () => {
  assert.equal(seqDelta(65535, 0), 1);
  assert.equal(seqDelta(0, 65535), -1);
  assert.equal(tsDelta(0xffffff00, 0x100), 0x200);
  assert.equal(tsDelta(0x100, 0xffffff00), -0x200);
});

test('RFC 4733 telephone-event payloads', () => {
  assert.deepEqual(parseTelephoneEvent(Buffer.from([11, 0x8a, 0x03, 0x20])), { event: 11, end: true, volume: 10, duration: 800 });
  assert.equal(parseTelephoneEvent(Buffer.from([1, 2])), undefined);
});
