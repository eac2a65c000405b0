import { SafeEmitter } from '../events/SafeEmitter.js';
import os from 'node:os';
import * as mediasoup from 'mediasoup';
import type { types as ms } from 'mediasoup';
import type { Config } from '../config/Config.js';
import { IngestError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PayloadKind } from '../media/LegTimeline.js';
import type { G711Law } from '../media/g711.js';
import { DTMF_CARRIER, LegSource, type LegSourceOptions, type MediaAddress } from './LegSource.js';
import { IngestProbe } from './IngestProbe.js';
import { PortAllocator } from './PortAllocator.js';
import { SsrcDiscovery } from './SsrcDiscovery.js';
import { WorkerLog } from './WorkerLog.js';

/** The `media` config section, less what only the recorder uses. */
export type MediaIngestOptions = Omit<Config['media'], 'jitterBufferMs' | 'allowedSources'>;

export interface MediaIngestEvents {
  /** A worker died; its legs are gone and their calls must end. */
  'legs-lost': [LegSource[], Error];
  /** A sender outside the allowed sources reached a leg's port first. */
  'refused-source': [LegSource, MediaAddress];
  /** A packet from a second source to a leg that has its source was dropped (per worker: the worker does not say which leg). */
  'foreign-packet': [];
  /** A worker's ingest lag now (IngestProbe), every PROBE_INTERVAL_MS. */
  lag: [workerPid: number, lagMs: number];
}

/** Dropped second-source packets are logged at most this often per worker, with their count. */
const FOREIGN_LOG_MS = 10_000;

/** Ports tried per leg before NO_PORT (a port may be held by another process). */
const PORT_ATTEMPTS = 16;

const ROUTER_CODECS: ms.RtpCodecCapability[] = [
  { kind: 'audio', mimeType: 'audio/PCMU', clockRate: 8000, preferredPayloadType: 0 },
  { kind: 'audio', mimeType: 'audio/PCMA', clockRate: 8000, preferredPayloadType: 8 },
  { kind: 'audio', mimeType: 'audio/CN', clockRate: 8000, preferredPayloadType: 13 },
  { kind: 'audio', mimeType: DTMF_CARRIER, clockRate: 8000, preferredPayloadType: 101 },
];

/** Payload type → meaning, as every leg's packets leave its consumer (the router's payload types). */
const PAYLOAD_KINDS: ReadonlyMap<number, PayloadKind> = new Map(
  ROUTER_CODECS.map((c) => [
    c.preferredPayloadType as number,
    c.mimeType === DTMF_CARRIER ? 'dtmf' : c.mimeType === 'audio/CN' ? 'cn' : (c.mimeType.slice('audio/'.length) as G711Law),
  ]),
);

/** One mediasoup worker process with its router and the DirectTransport that brings packets to Node. */
export interface WorkerSlot {
  readonly worker: ms.Worker;
  readonly router: ms.Router;
  readonly direct: ms.DirectTransport;
  /**
   * What the DirectTransport consumers ask for: the router's codecs and no RTP header extension. Nothing
   * reads the worker's extensions (mid, audio level, …) on the way to Node, and five of them per consumer
   * were 1.4 KB of Node memory a leg and per-packet rewriting in the worker.
   */
  readonly consumeCaps: ms.RtpCapabilities;
  readonly legs: Set<LegSource>;
  readonly probe: IngestProbe;
  /** The probe's port, taken from the RTP range. */
  readonly probePort: number;
}

/**
 * The mediasoup side of callvault: worker processes (one per core by
 * default), a router each, and a PlainTransport per call leg on the least
 * loaded worker.
 */
export class MediaIngest extends SafeEmitter<MediaIngestEvents> {
  private readonly slots: WorkerSlot[] = [];
  private readonly discovery: SsrcDiscovery;
  private readonly ports: PortAllocator;
  private readonly workerLog: WorkerLog;
  /** Per worker pid: second-source packets not yet logged, and when they were last logged. */
  private readonly foreign = new Map<number, { count: number; loggedAt: number }>();
  private closing = false;

  private constructor(
    private readonly opts: MediaIngestOptions,
    private readonly log: Logger,
  ) {
    super((err, event) => log.error({ err, event }, 'an ingest listener failed'));
    this.discovery = new SsrcDiscovery(log);
    this.workerLog = new WorkerLog(log, { unrouted: (pid, ssrc) => this.discovery.unrouted(pid, ssrc), foreign: (pid) => this.onForeign(pid) });
    this.ports = new PortAllocator(opts.portMin, opts.portMax, opts.portQuarantineSeconds * 1000);
  }

  static async create(opts: MediaIngestOptions, log: Logger): Promise<MediaIngest> {
    const ingest = new MediaIngest(opts, log);
    const n = opts.workers === 'auto' ? os.availableParallelism() : opts.workers;
    try {
      for (let i = 0; i < n; i++) ingest.slots.push(await ingest.startSlot());
    } catch (err) {
      await ingest.close();
      throw new IngestError(
        'MEDIASOUP_START',
        `cannot start mediasoup worker: ${(err as Error).message}`,
        { workerBin: mediasoup.workerBin },
        { cause: err },
      );
    }
    log.info({ workers: n, mediasoup: mediasoup.version }, 'mediasoup ingest ready');
    return ingest;
  }

  /** Payload type → meaning of the packets legs emit. */
  get payloadKinds(): ReadonlyMap<number, PayloadKind> {
    return PAYLOAD_KINDS;
  }

  get announcedIp(): string {
    return this.opts.announcedAddress ?? this.opts.listenIp;
  }

  get workerPids(): number[] {
    return this.slots.map((s) => s.worker.pid);
  }

  /** The ingest lag of the worker that lags most: its probes' median over the last 5 s (the capacity signal). */
  get ingestLagMs(): number {
    return this.slots.reduce((worst, s) => Math.max(worst, s.probe.recentMedianMs), 0);
  }

  async openLeg(options: LegSourceOptions): Promise<LegSource> {
    const slot = this.slots.reduce((a, b) => (b.legs.size < a.legs.size ? b : a));
    const { port, leg } = await this.openOnFreePort(slot, options);
    slot.legs.add(leg);
    leg.once('closed', () => {
      slot.legs.delete(leg);
      this.ports.release(port);
      this.discovery.forget(slot, leg);
    });
    leg.on('refused-source', (from) => {
      this.safeEmit('refused-source', leg, from);
      this.log.warn(
        { callId: options.callId, leg: options.role, port, from: `${from.ip}:${from.port}` },
        'RTP from a source outside media.allowedSources dropped; port re-armed',
      );
    });
    leg.on('rearmed', () => this.discovery.sourceRefused(slot));
    leg.on('rearm-failed', (err) =>
      this.log.error({ err, callId: options.callId, leg: options.role, port }, 'cannot re-arm the RTP port after a refused source'),
    );
    if (options.ssrc !== undefined) await leg.bind(options.ssrc);
    else this.discovery.expect(slot, leg);
    return leg;
  }

  /** A leg on a random, unquarantined port; a port another process holds is skipped. */
  private openOnFreePort(slot: WorkerSlot, options: LegSourceOptions): Promise<{ port: number; leg: LegSource }> {
    return this.onFreePort(
      (port) =>
        LegSource.open(
          options,
          () => this.createTransport(slot, port, !options.remote, options.srtp?.cryptoSuite),
          slot.direct,
          slot.consumeCaps,
          slot.worker.pid,
        ),
      (err, port) =>
        new IngestError(
          'LEG_OPEN',
          `cannot set up the ${options.role} leg: ${(err as Error).message}`,
          { callId: options.callId, port },
          { cause: err },
        ),
      { callId: options.callId },
    ).then(([port, leg]) => ({ port, leg }));
  }

  /** `open` on a port of the range that nobody holds: a port in use by another process is skipped, any other failure is `fail`'s. */
  private async onFreePort<T>(
    open: (port: number) => Promise<T>,
    fail: (err: unknown, port: number) => Error,
    context: Record<string, unknown>,
  ): Promise<[number, T]> {
    let lastError: unknown;
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      const port = this.ports.take();
      if (port === undefined) break;
      try {
        return [port, await open(port)];
      } catch (err) {
        lastError = err;
        this.ports.release(port);
        // Only a port in use is worth another try; a bad remote address or a dead worker is not.
        if (!/address already in use|EADDRINUSE/i.test((err as Error).message)) throw fail(err, port);
      }
    }
    const detail = lastError ? ` (last: ${(lastError as Error).message})` : '';
    throw new IngestError(
      'NO_PORT',
      `no RTP port free in ${this.opts.portMin}-${this.opts.portMax}: ${this.ports.free} neither in use nor quarantined${detail}`,
      context,
    );
  }

  private createTransport(slot: WorkerSlot, port: number, comedia: boolean, srtpSuite: ms.SrtpCryptoSuite | undefined): Promise<ms.PlainTransport> {
    return slot.router.createPlainTransport({
      listenInfo: {
        protocol: 'udp',
        ip: this.opts.listenIp,
        ...(this.opts.announcedAddress ? { announcedAddress: this.opts.announcedAddress } : {}),
        port,
        recvBufferSize: this.opts.recvBufferSize,
      },
      rtcpMux: true,
      comedia,
      ...(srtpSuite ? { enableSrtp: true, srtpCryptoSuite: srtpSuite } : {}),
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.discovery.stop();
    this.workerLog.stop();
    for (const s of this.slots) {
      s.probe.close();
      s.worker.close();
    }
    this.slots.length = 0;
  }

  private onForeign(pid: number): void {
    this.safeEmit('foreign-packet');
    const f = this.foreign.get(pid) ?? { count: 0, loggedAt: -Infinity };
    f.count++;
    this.foreign.set(pid, f);
    const now = performance.now();
    if (now - f.loggedAt < FOREIGN_LOG_MS) return;
    this.log.warn({ workerPid: pid, packets: f.count }, 'RTP from a second source dropped: a leg takes RTP only from the source it started with');
    f.count = 0;
    f.loggedAt = now;
  }

  private async startSlot(): Promise<WorkerSlot> {
    // The 'rtp' tag is what WorkerLog reads: unknown SSRCs (warn) and second-source packets (debug).
    // No other tag is enabled, so debug level adds no line for packets that are routed.
    const worker = await mediasoup.createWorker({ logLevel: 'debug', logTags: ['rtp'] });
    const router = await worker.createRouter({ mediaCodecs: ROUTER_CODECS });
    const direct = await router.createDirectTransport();
    const consumeCaps: ms.RtpCapabilities = { codecs: router.rtpCapabilities.codecs ?? [] };
    let probed: [number, IngestProbe];
    try {
      probed = await this.onFreePort(
        (port) => IngestProbe.start(router, direct, consumeCaps, port, (lagMs) => this.safeEmit('lag', worker.pid, lagMs)),
        (err) => err as Error,
        { workerPid: worker.pid },
      );
    } catch (err) {
      worker.close();
      throw err;
    }
    const [probePort, probe] = probed;
    const slot: WorkerSlot = { worker, router, direct, consumeCaps, legs: new Set(), probe, probePort };
    this.discovery.attach(slot);
    worker.on('died', (err) => void this.onWorkerDied(slot, err));
    return slot;
  }

  private async onWorkerDied(slot: WorkerSlot, err: Error): Promise<void> {
    this.discovery.detach(slot);
    slot.probe.close();
    this.ports.release(slot.probePort);
    const lost = [...slot.legs];
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    this.log.error({ pid: slot.worker.pid, legs: lost.length, err }, 'mediasoup worker died');
    this.safeEmit('legs-lost', lost, err);
    if (this.closing) return;
    try {
      this.slots.push(await this.startSlot());
    } catch (e) {
      this.log.fatal({ err: e }, 'cannot replace mediasoup worker');
    }
  }
}
