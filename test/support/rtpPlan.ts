import { randomInt } from 'node:crypto';
import type { G711Law } from '../../daemon/media/g711.js';

/** What one RTP stream (one leg) sends; all times are from the sender's start. */
export interface StreamPlan {
  readonly port: number;
  readonly host?: string;
  /** Send from this local address/port (default: one shared ephemeral socket on 127.0.0.1). */
  readonly fromHost?: string;
  readonly fromPort?: number;
  readonly law: G711Law;
  readonly payloadType: number;
  readonly ssrc: number;
  readonly seqStart: number;
  readonly tsStart: number;
  /** Tone frequency in Hz. */
  readonly freq: number;
  readonly amplitude?: number;
  readonly startMs?: number;
  readonly durationMs: number;
  /** Fraction of frames not sent (deterministic pattern). */
  readonly loss?: number;
  /** Fraction of frames swapped with their successor. */
  readonly reorder?: number;
  /** Frames sent twice. */
  readonly duplicate?: number;
  /** [fromMs, toMs): nothing is sent (a hold); the RTP clock keeps running. */
  readonly hold?: readonly [number, number];
  /** At this time switch to a new SSRC with fresh sequence and timestamp bases. */
  readonly ssrcChange?: { readonly atMs: number; readonly ssrc: number; readonly seqStart: number; readonly tsStart: number };
  /** Raw datagrams to send at the given time (malformed RTP and the like), base64. */
  readonly raw?: readonly { readonly atMs: number; readonly base64: string }[];
  /** RFC 4733 digit events: start time, digit code, duration. */
  readonly dtmf?: readonly { readonly atMs: number; readonly event: number; readonly durationMs: number }[];
  readonly dtmfPayloadType?: number;
}

export interface SendPlan {
  readonly streams: readonly StreamPlan[];
}

export interface StreamResult {
  readonly port: number;
  readonly sent: number;
  readonly rawSent: number;
  readonly rawBytes: number;
}

/** A PCMU tone to `port` from a random SSRC, sequence and timestamp start; `o` overrides any of it. */
export function toneStream(port: number, freq: number, o: Partial<StreamPlan> = {}): StreamPlan {
  return {
    port,
    law: 'PCMU',
    payloadType: 0,
    ssrc: randomInt(1, 2 ** 31),
    seqStart: randomInt(0, 65536),
    tsStart: randomInt(0, 2 ** 32),
    freq,
    durationMs: 1500,
    ...o,
  };
}
