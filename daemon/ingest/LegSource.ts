import { EventEmitter } from 'node:events';
import type { types as ms } from 'mediasoup';
import type { G711Law } from '../media/g711.js';

export type LegRole = 'caller' | 'callee';

export interface LegSourceOptions {
  readonly callId: string;
  readonly role: LegRole;
  /** The payload type the PBX sends each G.711 law with (see legPayloadTypes). */
  readonly payloadTypes: LawPayloadTypes;
  readonly dtmfPayloadType: number;
  /** SSRC announced by the PBX (from SDP a=ssrc), if any. */
  readonly ssrc?: number | undefined;
  /** The PBX's media address when known: the transport is connected to it and takes RTP from nowhere else. */
  readonly remote?: MediaAddress | undefined;
  /** Without `remote`: whether a first sender at this IP may become the leg's source. */
  readonly allowSource: (ip: string) => boolean;
  /** SDES-SRTP (RFC 4568): the suite and the sender's key its RTP is encrypted with. */
  readonly srtp?: SrtpKey | undefined;
}

export type LawPayloadTypes = Readonly<Partial<Record<G711Law, number>>>;

/** What a leg's sender may change about its stream mid-call (a SIPREC re-offer): another stream takes the leg, or a new key. */
export interface LegStreamChange {
  readonly ssrc?: number | undefined;
  readonly srtp?: SrtpKey | undefined;
}

/** One side's SRTP master key and salt (base64) and its crypto suite. */
export interface SrtpKey {
  readonly cryptoSuite: ms.SrtpCryptoSuite;
  readonly keyBase64: string;
}

export interface MediaAddress {
  readonly ip: string;
  readonly port: number;
}

/** Makes the leg's PlainTransport (again, on the same port, after a refused source). */
export type TransportFactory = () => Promise<ms.PlainTransport>;

export interface LegSourceEvents {
  /** A whole RTP packet as mediasoup forwarded it (SSRC and sequence rewritten per Producer). */
  packet: [Buffer];
  /** The first packet of a bound SSRC arrived: the binding is right. */
  confirmed: [number];
  /** The leg took its source (the first allowed sender, on a leg without a known remote). */
  source: [MediaAddress];
  /** A sender outside the allowed sources reached the port first; its packets were dropped and the port re-armed. */
  'refused-source': [MediaAddress];
  /** A fresh transport is listening on the port after a refused source. */
  rearmed: [];
  /** The port could not be re-armed after a refused source: the leg receives nothing more. */
  'rearm-failed': [Error];
  closed: [];
}

/** What is known about a leg's traffic when it closes. */
export interface LegTransportReport {
  readonly ssrcs: number[];
  /** Bytes on the leg's port that were not media of a bound SSRC: RTCP, malformed packets, unknown SSRCs. */
  readonly nonMediaBytes: number;
  readonly bytesReceived: number;
  /** Where the leg took RTP from (connected remote or first allowed sender), null if nobody sent. */
  readonly source: MediaAddress | null;
  /** Distinct senders refused as the leg's source (outside `media.allowedSources`), in order, at most a few. */
  readonly refusedSources: MediaAddress[];
}

const MAX_PRODUCERS = 4;
const MAX_REFUSED_KEPT = 8;
/** An attacker that keeps sending cannot make the leg rebuild its transport in a tight loop. */
const REARM_DELAY_MS = 50;

/*
 * mediasoup consumers forward only "media" codecs: telephone-event and CN are
 * "complementary" (RtpCodecMimeType::IsMediaCodec) and are dropped, with the
 * gap hidden by the consumer's sequence renumbering. So a leg's Producer
 * declares the PBX's DTMF payload type as iLBC, a media codec callvault never
 * records, and the timeline reads that payload type back as RFC 4733 events.
 * (Both G.711 laws are taken as audio: an SRC may switch between them
 * mid-call.) CN stays declared as CN: dropping it is what we want, and
 * declared it never looks like loss.
 */
export const DTMF_CARRIER = 'audio/iLBC';

/** RFC 3551's static payload types of the laws. */
const STATIC_PT: Readonly<Record<G711Law, number>> = { PCMU: 0, PCMA: 8 };

/**
 * The payload types a leg takes audio in: the law it was set up with at the
 * PBX's payload type, and the other law at its static one unless that number
 * is taken — so a sender that switches laws mid-call needs no new Producer.
 * The SRS checks a re-offer against the same map.
 */
export function legPayloadTypes(law: G711Law, payloadType: number, dtmfPayloadType: number): LawPayloadTypes {
  const other: G711Law = law === 'PCMU' ? 'PCMA' : 'PCMU';
  const free = STATIC_PT[other] !== payloadType && STATIC_PT[other] !== dtmfPayloadType;
  return { [law]: payloadType, ...(free ? { [other]: STATIC_PT[other] } : {}) };
}

interface Binding {
  readonly producer: ms.Producer;
  consumer?: ms.Consumer;
  confirmed: boolean;
}

/**
 * One leg of one call: a PlainTransport (rtcp-mux) in a mediasoup router,
 * and one Producer per SSRC seen on it, each consumed by the router's
 * DirectTransport so packets reach Node as 'packet' events.
 *
 * Who may send: with the PBX's media address known the transport is
 * connected to it and mediasoup drops everything else. Otherwise the
 * transport is comedia (it locks onto its first sender), and a first sender
 * outside the allowed sources is refused: its packets never reach the
 * recording, and the port is re-armed for the real sender.
 */
export class LegSource extends EventEmitter<LegSourceEvents> {
  /** Worker-clock ms of the last packet, for SSRC attribution. */
  lastPacketAt = 0;
  #closed = false;
  /** As opened, then as the sender last changed its stream (relearnSource). */
  #options: LegSourceOptions;
  #transport: ms.PlainTransport;
  /** False from a refused source's first packet until the port is re-armed. */
  #accepting = true;
  #source: MediaAddress | undefined;
  readonly #refused: MediaAddress[] = [];
  readonly #bindings = new Map<number, Binding>();
  /** Wire bytes of producers already closed (evicted by later SSRCs, or with a re-armed transport). */
  #retiredMediaBytes = 0;
  #retiredBytesReceived = 0;
  /** Shed under overload (LoadShedder): the worker forwards none of the leg's packets to Node. */
  #held = false;

  private constructor(
    options: LegSourceOptions,
    transport: ms.PlainTransport,
    private readonly makeTransport: TransportFactory,
    private readonly direct: ms.DirectTransport,
    private readonly consumeCaps: ms.RtpCapabilities,
    /** The mediasoup worker whose thread in Node handles this leg's packets. */
    readonly workerPid: number,
  ) {
    super();
    this.#options = options;
    this.#transport = transport;
    this.#watch(transport);
  }

  static async open(
    options: LegSourceOptions,
    makeTransport: TransportFactory,
    direct: ms.DirectTransport,
    consumeCaps: ms.RtpCapabilities,
    workerPid: number,
  ): Promise<LegSource> {
    const transport = await makeTransport();
    try {
      await connect(transport, options);
    } catch (err) {
      transport.close();
      throw err;
    }
    return new LegSource(options, transport, makeTransport, direct, consumeCaps, workerPid);
  }

  get options(): LegSourceOptions {
    return this.#options;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get port(): number {
    return this.#transport.tuple.localPort;
  }

  /** Our own SRTP key for this leg (what an SDES answer carries), when the leg is SRTP. */
  get localSrtp(): SrtpKey | undefined {
    return this.#options.srtp ? this.#transport.srtpParameters : undefined;
  }

  /** Where the leg takes RTP from: the connected remote, the comedia sender it locked onto, or undefined before one. */
  get source(): MediaAddress | undefined {
    return this.#options.remote ?? this.#source;
  }

  /** SSRCs whose packets this leg has received. */
  get ssrcs(): number[] {
    return [...this.#bindings].filter(([, b]) => b.confirmed).map(([ssrc]) => ssrc);
  }

  /** Bound (confirmed or still on trial). */
  hasSsrc(ssrc: number): boolean {
    return this.#bindings.has(ssrc);
  }

  /** Start receiving packets carrying `ssrc` on this leg. */
  async bind(ssrc: number): Promise<void> {
    if (this.#closed || this.#bindings.has(ssrc)) return;
    const { payloadTypes, dtmfPayloadType } = this.#options;
    const transport = this.#transport;
    const laws = Object.entries(payloadTypes) as [G711Law, number][];
    const producer = await transport.produce({
      kind: 'audio',
      rtpParameters: {
        codecs: [
          ...laws.map(([law, payloadType]) => ({ mimeType: `audio/${law}`, payloadType, clockRate: 8000 })),
          { mimeType: DTMF_CARRIER, payloadType: dtmfPayloadType, clockRate: 8000 },
          { mimeType: 'audio/CN', payloadType: 13, clockRate: 8000 },
        ],
        encodings: [{ ssrc }],
      },
      appData: { callId: this.#options.callId, role: this.#options.role },
    });
    if (transport !== this.#transport || this.#closed) {
      producer.close(); // re-armed or closed meanwhile
      return;
    }
    const binding: Binding = { producer, confirmed: false };
    this.#bindings.set(ssrc, binding);
    const consumer = await this.direct.consume({ producerId: producer.id, rtpCapabilities: this.consumeCaps, paused: this.#held });
    binding.consumer = consumer;
    consumer.on('rtp', (packet: Buffer) => {
      if (!this.#accepting) return;
      this.lastPacketAt = performance.now();
      if (!binding.confirmed) {
        binding.confirmed = true;
        this.emit('confirmed', ssrc);
      }
      this.emit('packet', packet);
    });
    if (this.#closed) return;
    // An SBC that keeps changing SSRC must not grow the leg without bound.
    if (this.#bindings.size > MAX_PRODUCERS) {
      const [oldest] = this.#bindings.keys();
      await this.unbind(oldest as number);
    }
  }

  /**
   * Under overload: have the worker drop this leg's packets instead of
   * queueing them for Node (held), or forward them again. The RTP timestamps
   * put what comes after at its place; the gap is the Recording's to mark.
   */
  async hold(held: boolean): Promise<void> {
    if (this.#held === held || this.#closed) return;
    this.#held = held;
    for (const b of this.#bindings.values()) await (held ? b.consumer?.pause() : b.consumer?.resume())?.catch(() => undefined);
  }

  get held(): boolean {
    return this.#held;
  }

  /** Stop receiving `ssrc` here (a wrong guess, or an SSRC long gone). */
  async unbind(ssrc: number): Promise<void> {
    const b = this.#bindings.get(ssrc);
    if (!b) return;
    this.#bindings.delete(ssrc);
    this.#retiredMediaBytes += await mediaBytes(b.producer);
    b.producer.close();
  }

  /** Counters from the worker; call before close(). */
  async report(): Promise<LegTransportReport> {
    const [s] = await this.#transport.getStats();
    const bytesReceived = this.#retiredBytesReceived + (s?.bytesReceived ?? 0);
    // Producer byte counts are wire sizes; the transport's rtpBytesReceived is
    // not (it includes header extensions the worker adds), so it is not used.
    let media = this.#retiredMediaBytes;
    for (const b of this.#bindings.values()) media += await mediaBytes(b.producer);
    return {
      ssrcs: this.ssrcs,
      bytesReceived,
      nonMediaBytes: Math.max(0, bytesReceived - media),
      source: this.source ?? null,
      refusedSources: [...this.#refused],
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#transport.close();
    this.emit('closed');
    this.removeAllListeners();
  }

  #watch(transport: ms.PlainTransport): void {
    if (this.#options.remote) return;
    // mediasoup announces the comedia tuple before it routes that sender's first packet.
    transport.on('tuple', (tuple) => {
      if (transport !== this.#transport || this.#closed) return;
      const from: MediaAddress = { ip: tuple.remoteIp ?? '', port: tuple.remotePort ?? 0 };
      if (this.#options.allowSource(from.ip)) {
        this.#source = from;
        this.emit('source', from);
        return;
      }
      this.#accepting = false;
      if (this.#refused.length < MAX_REFUSED_KEPT && !this.#refused.some((r) => r.ip === from.ip && r.port === from.port)) this.#refused.push(from);
      this.emit('refused-source', from);
      setTimeout(() => void this.#rearm(transport), REARM_DELAY_MS);
    });
  }

  /**
   * Take RTP from a new first sender (allowed, as ever): the SRC resumed a
   * paused stream, moved it to another address, gave the leg another stream
   * (its SSRC) or a new SRTP key. A connected leg keeps its remote.
   */
  async relearnSource(change: LegStreamChange = {}): Promise<void> {
    if (this.#options.remote && change.ssrc === undefined && !change.srtp) return;
    this.#options = { ...this.#options, ...(change.ssrc !== undefined ? { ssrc: change.ssrc } : {}), ...(change.srtp ? { srtp: change.srtp } : {}) };
    this.#accepting = false;
    await this.#rearm(this.#transport);
  }

  /** A fresh comedia transport on the same port, with the announced SSRC bound again; discovered ones are found again. */
  async #rearm(old: ms.PlainTransport): Promise<void> {
    if (this.#closed || old !== this.#transport) return;
    const [s] = await old.getStats().catch(() => []);
    this.#retiredBytesReceived += s?.bytesReceived ?? 0;
    for (const ssrc of [...this.#bindings.keys()]) await this.unbind(ssrc);
    old.close();
    if (this.#closed) return;
    try {
      this.#transport = await this.makeTransport();
      await connect(this.#transport, this.#options);
    } catch (err) {
      this.emit('rearm-failed', err as Error);
      return;
    }
    if (this.#closed) {
      this.#transport.close();
      return;
    }
    this.#watch(this.#transport);
    this.#accepting = true;
    this.emit('rearmed');
    if (this.#options.ssrc !== undefined) await this.bind(this.#options.ssrc);
  }
}

async function mediaBytes(p: ms.Producer): Promise<number> {
  const stats = await p.getStats().catch(() => []);
  return stats.reduce((sum, st) => sum + st.byteCount, 0);
}

/** Connect a new transport to what the options fix: the remote address, the sender's SRTP key (comedia keeps the address open). */
async function connect(transport: ms.PlainTransport, options: LegSourceOptions): Promise<void> {
  if (!options.remote && !options.srtp) return;
  await transport.connect({
    ...(options.remote ? { ip: options.remote.ip, port: options.remote.port } : {}),
    ...(options.srtp ? { srtpParameters: options.srtp } : {}),
  });
}
