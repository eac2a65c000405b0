import { EventEmitter } from 'node:events';
import type { types as ms } from 'mediasoup';
import type { G711Law } from '../media/g711.js';

export type LegRole = 'caller' | 'callee';

export interface LegSourceOptions {
  readonly callId: string;
  readonly role: LegRole;
  readonly codec: G711Law;
  /** Payload type the PBX sends audio with (0 for PCMU, 8 for PCMA by default). */
  readonly payloadType: number;
  readonly dtmfPayloadType: number;
  /** SSRC announced by the PBX (from SDP a=ssrc), if any. */
  readonly ssrc?: number | undefined;
}

export interface LegSourceEvents {
  /** A whole RTP packet as mediasoup forwarded it (SSRC and sequence rewritten per Producer). */
  packet: [Buffer];
  /** The first packet of a bound SSRC arrived: the binding is right. */
  confirmed: [number];
}

/** What is known about a leg's traffic when it closes. */
export interface LegTransportReport {
  readonly ssrcs: number[];
  /** Bytes on the leg's port that were not media of a bound SSRC: RTCP, malformed packets, unknown SSRCs. */
  readonly nonMediaBytes: number;
  readonly bytesReceived: number;
}

const MAX_PRODUCERS = 4;

/*
 * mediasoup consumers forward only "media" codecs: telephone-event and CN are
 * "complementary" (RtpCodecMimeType::IsMediaCodec) and are dropped, with the
 * gap hidden by the consumer's sequence renumbering. So a leg's Producer
 * declares the PBX's DTMF payload type as the other G.711 law, which the leg
 * does not use for audio, and the timeline reads that payload type back as
 * RFC 4733 events. CN stays declared as CN: dropping it is what we want, and
 * declared it never looks like loss.
 */
export function dtmfCarrier(codec: G711Law): G711Law {
  return codec === 'PCMU' ? 'PCMA' : 'PCMU';
}

interface Binding {
  readonly producer: ms.Producer;
  confirmed: boolean;
}

/**
 * One leg of one call: a comedia PlainTransport (rtcp-mux) in a mediasoup
 * router, and one Producer per SSRC seen on it, each consumed by the router's
 * DirectTransport so packets reach Node as 'packet' events.
 */
export class LegSource extends EventEmitter<LegSourceEvents> {
  /** Worker-clock ms of the last packet, for SSRC attribution. */
  lastPacketAt = 0;
  closed = false;
  private readonly bindings = new Map<number, Binding>();
  /** Wire bytes of producers already closed (evicted by later SSRCs). */
  private retiredMediaBytes = 0;

  constructor(
    readonly options: LegSourceOptions,
    readonly transport: ms.PlainTransport,
    private readonly direct: ms.DirectTransport,
    private readonly routerCaps: ms.RtpCapabilities,
  ) {
    super();
  }

  get port(): number {
    return this.transport.tuple.localPort;
  }

  /** SSRCs whose packets this leg has received. */
  get ssrcs(): number[] {
    return [...this.bindings].filter(([, b]) => b.confirmed).map(([ssrc]) => ssrc);
  }

  /** Bound (confirmed or still on trial). */
  hasSsrc(ssrc: number): boolean {
    return this.bindings.has(ssrc);
  }

  /** Start receiving packets carrying `ssrc` on this leg. */
  async bind(ssrc: number): Promise<void> {
    if (this.closed || this.bindings.has(ssrc)) return;
    const { codec, payloadType, dtmfPayloadType } = this.options;
    const producer = await this.transport.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: [
          { mimeType: `audio/${codec}`, payloadType, clockRate: 8000 },
          { mimeType: `audio/${dtmfCarrier(codec)}`, payloadType: dtmfPayloadType, clockRate: 8000 },
          { mimeType: 'audio/CN', payloadType: 13, clockRate: 8000 },
        ],
        encodings: [{ ssrc }],
      },
      appData: { callId: this.options.callId, role: this.options.role },
    });
    const binding: Binding = { producer, confirmed: false };
    this.bindings.set(ssrc, binding);
    const consumer = await this.direct.consume({ producerId: producer.id, rtpCapabilities: this.routerCaps });
    consumer.on('rtp', (packet: Buffer) => {
      this.lastPacketAt = performance.now();
      if (!binding.confirmed) {
        binding.confirmed = true;
        this.emit('confirmed', ssrc);
      }
      this.emit('packet', packet);
    });
    if (this.closed) return;
    // An SBC that keeps changing SSRC must not grow the leg without bound.
    if (this.bindings.size > MAX_PRODUCERS) {
      const [oldest] = this.bindings.keys();
      await this.unbind(oldest as number);
    }
  }

  /** Stop receiving `ssrc` here (a wrong guess, or an SSRC long gone). */
  async unbind(ssrc: number): Promise<void> {
    const b = this.bindings.get(ssrc);
    if (!b) return;
    this.bindings.delete(ssrc);
    this.retiredMediaBytes += await mediaBytes(b.producer);
    b.producer.close();
  }

  /** Counters from the worker; call before close(). */
  async report(): Promise<LegTransportReport> {
    const [s] = await this.transport.getStats();
    const bytesReceived = s?.bytesReceived ?? 0;
    // Producer byte counts are wire sizes; the transport's rtpBytesReceived is
    // not (it includes header extensions the worker adds), so it is not used.
    let media = this.retiredMediaBytes;
    for (const b of this.bindings.values()) media += await mediaBytes(b.producer);
    return { ssrcs: this.ssrcs, bytesReceived, nonMediaBytes: Math.max(0, bytesReceived - media) };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.transport.close();
    this.removeAllListeners();
  }
}

async function mediaBytes(p: ms.Producer): Promise<number> {
  const stats = await p.getStats().catch(() => []);
  return stats.reduce((sum, st) => sum + st.byteCount, 0);
}
