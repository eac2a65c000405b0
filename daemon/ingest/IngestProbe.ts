import { createSocket, type Socket } from 'node:dgram';
import type { types as ms } from 'mediasoup';
import { buildRtp, parseRtp } from '../media/rtp.js';

/** How often a probe packet is sent through each worker. */
export const PROBE_INTERVAL_MS = 100;
const PROBE_SSRC = 0x0ca11fa1;
/** Probes remembered by number; one not back after this many intervals counts by its age alone. */
const RING = 256;
/** The probes sent in the last 5 s give the median lag: a queue that builds moves it, one burst does not. */
const RECENT_MS = 5000;

/**
 * Measures a worker's ingest lag: how long a packet the worker has received
 * waits before Node handles it. That wait is the queue in front of the one
 * thread that handles every packet (the worker's channel to Node and the
 * socket buffers), which nothing else shows until packets are already late.
 *
 * Every PROBE_INTERVAL_MS a small RTP packet goes from a loopback socket to a
 * transport of the worker's own, through the same DirectTransport as every
 * call's packets; its payload carries its number, and the time from sending
 * to its 'rtp' event is the lag. A probe not back yet counts by its age, so a
 * channel that stopped moving shows a lag that grows, not the last one seen.
 */
export class IngestProbe {
  readonly #sentAt = new Float64Array(RING);
  #next = 0;
  /** Number of the newest probe handled. */
  #back = -1;
  #lastLagMs = 0;
  /** Each probe's lag by number; NaN while it is not back. */
  readonly #lagOf = new Float64Array(RING).fill(Number.NaN);
  #timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly transport: ms.PlainTransport,
    private readonly onSample: (lagMs: number) => void,
  ) {}

  /** A probe through `router` into `direct`, consumed as the legs are (`consumeCaps`), listening on `port` (loopback; the port is the caller's to give back after close). */
  static async start(
    router: ms.Router,
    direct: ms.DirectTransport,
    consumeCaps: ms.RtpCapabilities,
    port: number,
    onSample: (lagMs: number) => void,
  ): Promise<IngestProbe> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => resolve());
    });
    let transport: ms.PlainTransport | undefined;
    try {
      transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1', port }, rtcpMux: true, comedia: false });
      await transport.connect({ ip: '127.0.0.1', port: socket.address().port });
      const producer = await transport.produce({
        kind: 'audio',
        rtpParameters: { codecs: [{ mimeType: 'audio/PCMU', payloadType: 0, clockRate: 8000 }], encodings: [{ ssrc: PROBE_SSRC }] },
      });
      const consumer = await direct.consume({ producerId: producer.id, rtpCapabilities: consumeCaps });
      const probe = new IngestProbe(socket, transport, onSample);
      consumer.on('rtp', (packet: Buffer) => probe.#received(packet));
      socket.on('error', () => undefined); // loopback sends do not fail but for a closing socket
      probe.#timer = setInterval(() => probe.#tick(), PROBE_INTERVAL_MS).unref();
      return probe;
    } catch (err) {
      transport?.close();
      socket.close();
      throw err;
    }
  }

  /** The lag now: the last probe's, or the age of the oldest one not back if that is more. */
  get lagMs(): number {
    const waiting = this.#back + 1;
    if (waiting >= this.#next || this.#next - waiting > RING) return this.#lastLagMs;
    return Math.max(this.#lastLagMs, performance.now() - (this.#sentAt[waiting % RING] as number));
  }

  /** The median lag of the probes sent in the last 5 s, those not back yet counted by their age (a channel that stopped moving counts as it is). */
  get recentMedianMs(): number {
    const now = performance.now();
    const lags: number[] = [];
    for (let n = this.#next - 1; n >= 0 && n > this.#next - RING; n--) {
      const sent = this.#sentAt[n % RING] as number;
      if (now - sent > RECENT_MS) break;
      const lag = this.#lagOf[n % RING] as number;
      lags.push(Number.isNaN(lag) ? now - sent : lag);
    }
    if (lags.length === 0) return this.lagMs;
    lags.sort((a, b) => a - b);
    return lags[Math.floor(lags.length / 2)] as number;
  }

  close(): void {
    clearInterval(this.#timer);
    this.transport.close();
    this.socket.close();
  }

  #tick(): void {
    this.onSample(this.lagMs);
    const n = this.#next++;
    this.#sentAt[n % RING] = performance.now();
    this.#lagOf[n % RING] = Number.NaN;
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(n >>> 0, 0);
    const packet = buildRtp({ marker: false, payloadType: 0, sequence: n, timestamp: n * 800, ssrc: PROBE_SSRC }, payload);
    this.socket.send(packet, this.transport.tuple.localPort, '127.0.0.1');
  }

  #received(packet: Buffer): void {
    // mediasoup may add header extensions: the parser finds the payload after them.
    const r = parseRtp(packet);
    if (!r.ok || r.packet.payload.length < 4) return;
    const n = r.packet.payload.readUInt32BE(0);
    if (n <= this.#back || n >= this.#next || this.#next - n > RING) return;
    this.#back = n;
    this.#lastLagMs = performance.now() - (this.#sentAt[n % RING] as number);
    this.#lagOf[n % RING] = this.#lastLagMs;
  }
}
