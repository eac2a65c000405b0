import { mkdir } from 'node:fs/promises';
import { mallocInUse } from './capacity/allocator.js';
import { parseListen, type Config } from './config/Config.js';
import { loadConfig, type ConfigOverrides } from './config/load.js';
import { planReload } from './config/reloadPlan.js';
import { ControlServer } from './control/ControlServer.js';
import { SipTransport } from './sip/SipTransport.js';
import { SrsServer } from './sip/SrsServer.js';
import { readTlsIdentity } from './sip/tlsIdentity.js';
import { DigestAuth } from './sip/DigestAuth.js';
import { resolveControlToken } from './control/token.js';
import { openDaemonIdentity } from './keys/daemonIdentity.js';
import type { SigningIdentity } from './keys/SigningIdentity.js';
import { KekMonitor } from './keys/kek/KekMonitor.js';
import { KekStore } from './keys/kek/KekStore.js';
import { ensureEncryptionReady } from './keys/kek/encryptionPolicy.js';
import type { Logger } from './log.js';
import type { ConnectionLimits } from './net/httpLimits.js';
import { CapacityMonitor } from './capacity/CapacityMonitor.js';
import { Metrics } from './metrics/Metrics.js';
import { MetricsServer } from './metrics/MetricsServer.js';
import { Recorder } from './record/Recorder.js';
import { openMediaPlane } from './shard/openMediaPlane.js';
import type { MediaPlane } from './shard/MediaPlaneTypes.js';
import { recoverInterrupted } from './record/recovery.js';
import { Archive } from './archive/Archive.js';
import { Notifier } from './notify/Notifier.js';
import { WorkerPool } from './seal/WorkerPool.js';
import { AuditHeadWatch } from './store/AuditHeadWatch.js';
import { AuditLog } from './store/AuditLog.js';
import { RecordingIndex } from './store/RecordingIndex.js';
import { VERSION } from './version.js';

function connectionLimits(c: { maxConnections: number; idleTimeoutSeconds: number }): ConnectionLimits {
  return { maxConnections: c.maxConnections, idleTimeoutMs: c.idleTimeoutSeconds * 1000 };
}

/** SIGHUPs closer together than this are one reload. */
const RELOAD_COALESCE_MS = 200;
const DAY_MS = 86_400_000;
/** The first retention sweep waits until start-up work (resealing, uploads) has had its turn. */
const FIRST_SWEEP_MS = 60_000;
const ACTOR = 'daemon';
const KEK_WATCH_MS = 60_000;
const AUDIT_WATCH_MS = 60_000;

export interface DaemonOptions {
  readonly configFile: string;
  readonly overrides: ConfigOverrides;
  readonly log: Logger;
  /** Quick start: with no passphrase configured, generate one into the data dir (0600). */
  readonly generatePassphrase?: boolean;
}

/**
 * The long-running process, assembled: signing identity, index, crash
 * recovery, then mediasoup ingest, the recorder, the archive pipeline and
 * the control API. Data flows ingest → recorder → files → archive (seal,
 * upload, retention) → index.
 */
export class Daemon {
  private config!: Config;
  private index: RecordingIndex | undefined;
  private pool: WorkerPool | undefined;
  private archive: Archive | undefined;
  private notifier: Notifier | undefined;
  private audit: AuditLog | undefined;
  private auditWatch: AuditHeadWatch | undefined;
  private identity: SigningIdentity | undefined;
  private keks: KekStore | undefined;
  private kekMonitor: KekMonitor | undefined;
  private sweeping: Promise<unknown> | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private plane: MediaPlane | undefined;
  private recorder: Recorder | undefined;
  private control: ControlServer | undefined;
  private sipTransport: SipTransport | undefined;
  private srs: SrsServer | undefined;
  private metrics: Metrics | undefined;
  private capacity: CapacityMonitor | undefined;
  private metricsServer: MetricsServer | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
  private reloadRequests = 0;

  constructor(private readonly opts: DaemonOptions) {}

  get controlAddress(): string {
    return this.config.control.listen;
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    this.config = this.load();
    const { dataDir } = this.config;
    this.keks = new KekStore(dataDir, this.config.encryption.trustedKeks);
    await this.checkEncryption(this.config);
    log.level = this.config.logging.level;
    await mkdir(dataDir, { recursive: true, mode: 0o750 });
    log.info(
      { version: VERSION, node: process.version, allocator: mallocInUse(), pid: process.pid, config: this.opts.configFile, dataDir },
      'callvault starting',
    );
    this.metrics = new Metrics(dataDir, VERSION);

    const identity = await this.openIdentity();
    this.identity = identity;
    this.index = RecordingIndex.open(dataDir);
    this.audit = AuditLog.open(dataDir);
    // Before anything is appended: is the chain still as long as when this daemon last looked?
    this.auditWatch = await AuditHeadWatch.open(dataDir, this.audit, log);
    await this.auditWatch.check();
    this.metrics.observeAudit(this.auditWatch);
    await this.audit.append(ACTOR, 'daemon.start', null, { version: VERSION, config: this.opts.configFile });
    if (identity.created)
      await this.audit.append(ACTOR, 'key.created', identity.instanceId, { kind: 'signing', fingerprintSha256: identity.info.fingerprintSha256 });
    await this.checkpoint();
    await this.auditWatch.check();
    this.pool = new WorkerPool(this.config.pool.threads, log);
    this.archive = new Archive({ dataDir, index: this.index, audit: this.audit, pool: this.pool, identity, keks: this.keks, log });
    const audit = this.audit;
    this.kekMonitor = new KekMonitor(this.keks, this.config.encryption, log);
    this.kekMonitor.onChange((change) => {
      void audit
        .append(ACTOR, 'key.set-changed', null, {
          added: change.added.map((k) => ({ kekId: k.id, fingerprintSha256: k.fingerprintSha256, trusted: this.keks?.isTrusted(k) ?? false })),
          removed: change.removed,
        })
        .catch((err: unknown) => log.error({ err }, 'cannot audit a change of the KEK set'));
    });
    this.metrics.observeKeks(this.kekMonitor, this.keks);
    const current = this.kekMonitor.check();
    if (current)
      log.info(
        {
          kekId: current.kek.id,
          provider: current.kek.provider,
          fingerprintSha256: current.kek.fingerprintSha256,
          expiresAt: current.expiresAt.toISOString(),
        },
        'key-encryption key',
      );
    const archive = this.archive;
    archive.configure(this.config.storage);
    this.notifier = new Notifier(this.config.notifications, log);
    this.notifier.observe(archive.runner);
    this.metrics.observeNotifier(this.notifier.mailer);
    const notifier = this.notifier;
    this.kekMonitor.onExpiryWarning((s) => notifier.kekExpiry(s));
    this.metrics.observePool(this.pool);
    this.metrics.observeArchive(archive);

    const recovered = await recoverInterrupted(dataDir, log);
    await archive.adoptRecovered(recovered);
    if (recovered.length) log.warn({ count: recovered.length }, 'recordings recovered after a crash');
    await archive.start();

    const { token, source, file } = await resolveControlToken(this.config);
    const plane = await openMediaPlane(Recorder.planeSettings(this.config, identity.instanceId), this.config.logging.level, log);
    this.plane = plane;
    this.recorder = new Recorder(this.config, plane, this.index, identity.instanceId, this.keks, log);
    const recorder = this.recorder;
    const pool = this.pool;
    this.capacity = new CapacityMonitor(
      this.config.calls.admission,
      () => recorder.liveCounters(),
      () => pool.queueSize,
      () => plane.ingestLagMs,
      () => plane.mediaLoop,
    );
    this.capacity.start();
    this.recorder.admitBy(this.capacity);
    this.metrics.observeCapacity(this.capacity);
    this.metrics.observeRecorder(this.recorder);
    this.metrics.observeMedia(plane);
    // A closed recording's seal job is in the journal by now: the runner takes it up.
    this.recorder.on('closed', () => archive.runner.poke());
    await this.recorder.open();
    this.control = new ControlServer(
      {
        listen: parseListen(this.config.control.listen),
        token,
        maxBodyBytes: this.config.control.maxBodyBytes,
        limits: connectionLimits(this.config.control),
      },
      this.recorder,
      this.index,
      log,
    );
    this.metricsServer = new MetricsServer(this.metrics, log, connectionLimits(this.config.metrics));
    const maddr = await this.metricsServer.listen(parseListen(this.config.metrics.listen));
    log.info({ metrics: `${maddr.address}:${maddr.port}` }, 'metrics listening');
    const addr = await this.control.listen();
    this.control.setReady(true);
    log.info({ control: `${addr.address}:${addr.port}`, tokenSource: source, tokenFile: file }, 'control API listening');
    await this.openSip(this.config.sip);
    this.timers.push(setTimeout(() => this.sweep(), FIRST_SWEEP_MS).unref());
    this.timers.push(setInterval(() => this.sweep(), DAY_MS).unref());
    this.timers.push(setInterval(() => this.dailyKeyCheck(), DAY_MS).unref());
    // A KEK planted (or forgotten unpinned) is reported within a minute.
    this.timers.push(setInterval(() => this.kekMonitor?.check(), KEK_WATCH_MS).unref());
    // Entries appended by CLI commands reach the log (and journald) within a minute; a cut chain is found as fast.
    this.timers.push(
      setInterval(() => void this.auditWatch?.check().catch((err: unknown) => log.error({ err }, 'audit head check failed')), AUDIT_WATCH_MS).unref(),
    );
    this.timers.push(
      setInterval(() => void this.checkpoint().catch((err: unknown) => log.error({ err }, 'audit checkpoint failed')), DAY_MS).unref(),
    );
  }

  /** The SIPREC recording server, when `sip.listen` is set. */
  private async openSip(sip: Config['sip']): Promise<void> {
    if (!sip.listen) return;
    const listen = parseListen(sip.listen);
    const tls = sip.tls.listen ? { listen: parseListen(sip.tls.listen), ...(await readTlsIdentity(sip.tls.certFile!, sip.tls.keyFile!)) } : undefined;
    this.sipTransport = await SipTransport.open(
      { listen, transports: sip.transports, tls, maxConnections: sip.maxConnections, idleTimeoutMs: sip.idleTimeoutSeconds * 1000 },
      this.opts.log,
    );
    const wildcard = listen.host === '0.0.0.0' || listen.host === '::';
    this.srs = new SrsServer(
      this.sipTransport,
      this.recorder!,
      sip.allowedSources,
      this.opts.log,
      wildcard ? this.plane!.announcedIp : listen.host,
      await DigestAuth.load(sip.digest),
    );
    this.metrics?.observeSip(this.srs, this.sipTransport);
    const tlsPort = this.sipTransport.tlsPort;
    this.opts.log.info(
      {
        sip: `${listen.host}:${this.sipTransport.port}`,
        transports: sip.transports,
        tls: tls && tlsPort !== null ? `${tls.listen.host}:${tlsPort}` : null,
        allowedSources: sip.allowedSources,
      },
      'SIP listening',
    );
  }

  /** A signed audit checkpoint: at start, daily, at stop. */
  private async checkpoint(): Promise<void> {
    if (this.audit && this.identity) await this.audit.checkpoint(ACTOR, this.identity.privateKey, this.identity.info.fingerprintSha256);
  }

  /** The daily retention sweep; never two at once. */
  private sweep(): void {
    const { log } = this.opts;
    if (!this.archive || this.sweeping) return;
    this.sweeping = this.archive
      .sweep(new Date(), ACTOR)
      .then((r) => {
        if (r.queued.length || r.unfinished.length)
          log.info({ queued: r.queued.length, unfinished: r.unfinished.length }, 'retention sweep: deletions journaled');
      })
      .catch((err: unknown) => log.error({ err }, 'retention sweep failed'))
      .finally(() => (this.sweeping = undefined));
  }

  private load(): Config {
    return loadConfig(this.opts.configFile, this.opts.overrides);
  }

  private checkEncryption(config: Config): Promise<void> {
    return ensureEncryptionReady(config, this.keks!, this.opts.configFile, this.opts.log);
  }

  private dailyKeyCheck(): void {
    const run = this.config.encryption.provider === 'lkm' ? this.checkEncryption(this.config) : Promise.resolve();
    void run.catch((err: unknown) => this.opts.log.error({ err }, 'KEK check failed')).finally(() => this.kekMonitor?.check());
  }

  private openIdentity(): Promise<SigningIdentity> {
    return openDaemonIdentity(this.config.signing, this.config.dataDir, this.opts.generatePassphrase ?? false, this.opts.log);
  }

  /** SIGHUP: reload soon; a burst of signals is one reload. */
  requestReload(): void {
    this.reloadRequests++;
    this.reloadTimer ??= setTimeout(() => {
      this.reloadTimer = undefined;
      const signals = this.reloadRequests;
      this.reloadRequests = 0;
      void this.reload(signals);
    }, RELOAD_COALESCE_MS);
  }

  /** Re-read the config; keep the old one if the new one is invalid. */
  private async reload(signals: number): Promise<void> {
    const { log } = this.opts;
    let next: Config;
    try {
      next = this.load();
      // Checked with the running provider: a provider change waits for a restart.
      const { provider, lkm } = this.config.encryption;
      this.keks?.setPinned(next.encryption.trustedKeks);
      await this.checkEncryption({ ...next, encryption: { ...next.encryption, provider, lkm } });
    } catch (err) {
      this.keks?.setPinned(this.config.encryption.trustedKeks);
      this.metrics?.configLoaded(false);
      log.error({ err, signals }, 'config reload failed; keeping the running config');
      void this.audit?.append(ACTOR, 'config.reload', null, { ok: false, error: (err as Error).message }).catch(() => undefined);
      return;
    }
    const { config, needRestart } = planReload(this.config, next);
    this.config = config;
    this.srs?.setAllowedSources(config.sip.allowedSources);
    this.kekMonitor?.configure(this.config.encryption);
    this.kekMonitor?.check();
    log.level = this.config.logging.level;
    this.recorder?.reconfigure(this.config);
    this.capacity?.configure(this.config.calls.admission);
    this.archive?.configure(this.config.storage);
    this.notifier?.configure(this.config.notifications);
    this.metrics?.configLoaded(true);
    void this.audit?.append(ACTOR, 'config.reload', null, { ok: true, needRestart }).catch(() => undefined);
    if (needRestart.length) log.warn({ needRestart, signals }, 'config reloaded; these sections changed but keep their old values until a restart');
    else log.info({ signals }, 'config reloaded');
  }

  /** Stop taking calls, close and seal every recording, stop the pool and mediasoup. */
  async stop(): Promise<void> {
    this.control?.setReady(false);
    await this.srs?.close();
    await this.sipTransport?.close();
    await this.recorder?.shutdown();
    await this.archive?.drain();
    this.notifier?.close();
    for (const t of this.timers) clearTimeout(t);
    await this.sweeping;
    this.capacity?.stop();
    await this.pool?.close();
    await this.plane?.close();
    clearTimeout(this.reloadTimer);
    await this.control?.close();
    await this.metricsServer?.close();
    await this.index?.close();
    if (this.audit) {
      await this.audit.append(ACTOR, 'daemon.stop', null, {});
      await this.checkpoint();
      await this.auditWatch?.check().catch((err: unknown) => this.opts.log.error({ err }, 'audit head check failed'));
      await this.audit.close();
    }
  }
}
