/** An RTP packet header (RFC 3550 §5.1) with a view of its payload. */
export interface RtpPacket {
  readonly marker: boolean;
  readonly payloadType: number;
  readonly sequence: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly payload: Buffer;
}

export type RtpParseResult = { ok: true; packet: RtpPacket } | { ok: false; reason: RtpRejectReason };

export type RtpRejectReason = 'truncated' | 'version' | 'csrc-overrun' | 'extension-overrun' | 'bad-padding';

/**
 * Parse without copying. Every length field is checked against the buffer so
 * a hostile packet can only be rejected, never read out of bounds.
 */
export function parseRtp(buf: Buffer): RtpParseResult {
  if (buf.length < 12) return { ok: false, reason: 'truncated' };
  const b0 = buf[0] as number;
  if (b0 >> 6 !== 2) return { ok: false, reason: 'version' };
  let offset = 12 + (b0 & 0x0f) * 4;
  if (offset > buf.length) return { ok: false, reason: 'csrc-overrun' };
  if (b0 & 0x10) {
    if (offset + 4 > buf.length) return { ok: false, reason: 'extension-overrun' };
    offset += 4 + buf.readUInt16BE(offset + 2) * 4;
    if (offset > buf.length) return { ok: false, reason: 'extension-overrun' };
  }
  let end = buf.length;
  if (b0 & 0x20) {
    const pad = buf[buf.length - 1] as number;
    if (pad === 0 || offset + pad > buf.length) return { ok: false, reason: 'bad-padding' };
    end -= pad;
  }
  const b1 = buf[1] as number;
  return {
    ok: true,
    packet: {
      marker: (b1 & 0x80) !== 0,
      payloadType: b1 & 0x7f,
      sequence: buf.readUInt16BE(2),
      timestamp: buf.readUInt32BE(4),
      ssrc: buf.readUInt32BE(8),
      payload: buf.subarray(offset, end),
    },
  };
}

/** Build a minimal RTP packet (no CSRC, extension or padding). Used by senders and tests. */
export function buildRtp(h: Omit<RtpPacket, 'payload'>, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(12 + payload.length);
  out[0] = 0x80;
  out[1] = (h.marker ? 0x80 : 0) | (h.payloadType & 0x7f);
  out.writeUInt16BE(h.sequence & 0xffff, 2);
  out.writeUInt32BE(h.timestamp >>> 0, 4);
  out.writeUInt32BE(h.ssrc >>> 0, 8);
  out.set(payload, 12);
  return out;
}

/** Signed distance a→b for 16-bit sequence numbers. */
export function seqDelta(a: number, b: number): number {
  return (((b - a) & 0xffff) << 16) >> 16;
}

/** Signed distance a→b for 32-bit RTP timestamps. */
export function tsDelta(a: number, b: number): number {
  return (b - a) | 0;
}
