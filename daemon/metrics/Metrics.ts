import { statfs } from 'node:fs/promises';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LegRole } from '../ingest/LegSource.js';
import type { KekMonitor } from '../keys/kek/KekMonitor.js';
import type { KekStore } from '../keys/kek/KekStore.js';
import type { MediaPlane } from '../shard/MediaPlaneTypes.js';
import type { AuditHeadWatch } from '../store/AuditHeadWatch.js';
import type { Recorder } from '../record/Recorder.js';
import type { Archive } from '../archive/Archive.js';
import type { CapacityMonitor } from '../capacity/CapacityMonitor.js';
import type { Mailer } from '../notify/Mailer.js';
import type { SipTransport } from '../sip/SipTransport.js';
import type { SrsServer } from '../sip/SrsServer.js';
import type { WorkerPool } from '../seal/WorkerPool.js';

const ROLES: readonly LegRole[] = ['caller', 'callee'];
type RtpCounter = 'received' | 'lost' | 'late' | 'duplicate' | 'out_of_sequence';

/**
 * Every metric callvault exports (README "Metrics" lists them). Prometheus
 * naming: `callvault_` prefix, base units, `_total` counters. Hot-path counts
 * (packets, bytes) are plain numbers read at scrape time, never per-packet
 * metric updates.
 */
export class Metrics {
  readonly registry = new Registry();
  /** Totals of finished calls; live calls are added at scrape time. */
  private readonly finished = {
    bytesWritten: 0,
    legs: Object.fromEntries(ROLES.map((r) => [r, { received: 0, lost: 0, late: 0, duplicate: 0, out_of_sequence: 0 }])) as Record<
      LegRole,
      Record<RtpCounter, number>
    >,
  };
  private readonly reloadOk: Gauge;
  private readonly reloadTime: Gauge;

  constructor(dataDir: string, version: string) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({ name: 'callvault_build_info', help: 'Always 1; the version is a label.', labelNames: ['version'], registers }).set({ version }, 1);
    new Gauge({
      name: 'callvault_data_dir_free_bytes',
      help: 'Free bytes for unprivileged users in the data directory file system.',
      registers,
      async collect() {
        const fs = await statfs(dataDir);
        this.set(fs.bavail * fs.bsize);
      },
    });
    this.reloadOk = new Gauge({
      name: 'callvault_config_last_reload_successful',
      help: 'Whether the last configuration reload (start or SIGHUP) succeeded.',
      registers,
    });
    this.reloadTime = new Gauge({
      name: 'callvault_config_last_reload_success_timestamp_seconds',
      help: 'Unix time of the last successful configuration load.',
      registers,
    });
    this.configLoaded(true);
  }

  configLoaded(ok: boolean): void {
    this.reloadOk.set(ok ? 1 : 0);
    if (ok) this.reloadTime.set(Date.now() / 1000);
  }

  observeRecorder(recorder: Recorder): void {
    const registers = [this.registry];
    const finished = this.finished;
    new Gauge({
      name: 'callvault_active_calls',
      help: 'Calls being recorded now.',
      registers,
      collect() {
        this.set(recorder.activeCalls);
      },
    });
    const started = new Counter({
      name: 'callvault_calls_started_total',
      help: 'Calls admitted for recording, by profile.',
      labelNames: ['profile'],
      registers,
    });
    const unrecorded = new Counter({
      name: 'callvault_calls_unrecorded_total',
      help: 'Calls not recorded by the profiles\' decision, by the excluding profile ("" = no profile matched).',
      labelNames: ['profile'],
      registers,
    });
    const rejected = new Counter({
      name: 'callvault_calls_rejected_total',
      help: 'Call-start requests refused, by reason (CALL_LIMIT, LOW_DISK, SHUTTING_DOWN, DUPLICATE_CALL, …).',
      labelNames: ['reason'],
      registers,
    });
    const recorded = new Counter({
      name: 'callvault_calls_recorded_total',
      help: 'Recordings closed, by end reason.',
      labelNames: ['end_reason'],
      registers,
    });
    const rtp = (what: RtpCounter, help: string, live: boolean) =>
      new Counter({
        name: `callvault_rtp_packets_${what}_total`,
        help,
        labelNames: ['leg'],
        registers,
        collect() {
          const now = live ? recorder.liveTotals().legs : undefined;
          this.reset();
          for (const leg of ROLES) this.inc({ leg }, finished.legs[leg][what] + (now ? now[leg][what as Exclude<RtpCounter, 'lost'>] : 0));
        },
      });
    rtp('received', 'RTP packets placed on a call timeline, by leg (caller, callee).', true);
    rtp('late', 'RTP packets that arrived after their place was written (beyond the jitter buffer).', true);
    rtp('duplicate', 'Duplicate RTP packets dropped.', true);
    rtp('lost', 'RTP packets never received (sequence gaps), counted when a call ends.', false);
    rtp(
      'out_of_sequence',
      'RTP packets dropped for a sequence number far from their stream (spoofed or corrupt), not counted as received or lost.',
      true,
    );
    new Gauge({
      name: 'callvault_recordings_write_suspended',
      help: 'Running recordings whose audio cannot be written now (disk full, I/O error); their gaps are marked.',
      registers,
      collect() {
        this.set(recorder.suspendedRecordings);
      },
    });
    new Gauge({
      name: 'callvault_data_dir_headroom_bytes',
      help: 'Free space left before new calls are refused with LOW_DISK (calls.minFreeDiskMB plus a minute of audio per running call); negative when they are.',
      registers,
      collect() {
        this.set(recorder.diskHeadroom);
      },
    });
    const writeErrors = new Counter({
      name: 'callvault_audio_write_errors_total',
      help: "Times a recording's audio writes started failing, by errno code (ENOSPC, EIO, …).",
      labelNames: ['code'],
      registers,
    });
    recorder.on('write-suspended', (code) => writeErrors.inc({ code }));
    new Gauge({
      name: 'callvault_calls_shed',
      help: 'Running calls shed under overload now (their media dropped by the worker, an OVERLOAD gap marked): media.maxIngestLagMs.',
      registers,
      collect() {
        this.set(recorder.shedCalls);
      },
    });
    const shed = new Counter({
      name: 'callvault_calls_shed_total',
      help: 'Times a running call was shed under overload.',
      registers,
    });
    recorder.on('shed', (n) => {
      if (n > 0) shed.inc(n);
    });
    new Gauge({
      name: 'callvault_audio_write_backlog_bytes',
      help: 'Audio of running recordings handed to the file system and not written yet (bounded per file by recording.maxWriteBacklogKiB).',
      registers,
      collect() {
        this.set(recorder.liveTotals().writeBacklogBytes);
      },
    });
    const gapSeconds = new Counter({
      name: 'callvault_audio_gap_seconds_total',
      help: 'Audio of closed recordings that is a gap (not written: ENOSPC, EIO, STALLED, …), in seconds of call time, by code.',
      labelNames: ['code'],
      registers,
    });
    new Counter({
      name: 'callvault_recording_bytes_written_total',
      help: 'Audio bytes written to recording files.',
      registers,
      collect() {
        this.reset();
        this.inc(finished.bytesWritten + recorder.liveTotals().bytesWritten);
      },
    });
    const jitter = new Histogram({
      name: 'callvault_rtp_jitter_seconds',
      help: 'Interarrival jitter (RFC 3550) of each leg at the end of its call.',
      labelNames: ['leg'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16],
      registers,
    });
    recorder.on('started', (meta) => started.inc({ profile: meta.profile.name }));
    recorder.on('unrecorded', (profile) => unrecorded.inc({ profile: profile ?? '' }));
    recorder.on('rejected', (reason) => rejected.inc({ reason }));
    recorder.on('closed', (meta) => {
      recorded.inc({ end_reason: meta.endReason ?? 'unknown' });
      for (const f of meta.files) finished.bytesWritten += f.dataBytes;
      for (const g of meta.gaps ?? []) gapSeconds.inc({ code: g.code }, (g.toMs - g.fromMs) / 1000);
      for (const leg of ROLES) {
        const l = meta.legs[leg];
        for (const what of ['received', 'lost', 'late', 'duplicate'] as const) finished.legs[leg][what] += l[what];
        finished.legs[leg].out_of_sequence += l.outOfSequence;
        if (l.received > 0) jitter.observe({ leg }, l.jitter / 8000);
      }
    });
  }

  observeAudit(watch: AuditHeadWatch): void {
    const registers = [this.registry];
    new Gauge({
      name: 'callvault_audit_chain_intact',
      help: 'Whether the audit chain still holds the head this daemon last saw (0: entries were removed from its end or it was rewritten).',
      registers,
      collect() {
        this.set(watch.intact ? 1 : 0);
      },
    });
    new Gauge({
      name: 'callvault_audit_head_seq',
      help: 'Sequence number of the newest audit entry this daemon has seen and logged.',
      registers,
      collect() {
        this.set(watch.head?.seq ?? 0);
      },
    });
  }

  /** The SIPREC recording server: requests by method and our answer, refusals by reason, unreadable messages, live sessions by SRC. */
  observeSip(srs: SrsServer, transport: SipTransport): void {
    const registers = [this.registry];
    const requests = new Counter({
      name: 'callvault_sip_requests_total',
      help: 'SIP requests answered, by method and final response code.',
      labelNames: ['method', 'response'],
      registers,
    });
    const rejected = new Counter({
      name: 'callvault_sip_rejected_total',
      help: 'SIP requests refused before a recording started, by reason (source, malformed, no-codec, call_limit, low_disk, …).',
      labelNames: ['reason'],
      registers,
    });
    const sent = new Counter({
      name: 'callvault_sip_sent_total',
      help: 'SIP requests callvault sent in a dialog (BYE when a recording ends on its side, UPDATE refreshing a session), by method and the final response they got (none: no answer).',
      labelNames: ['method', 'response'],
      registers,
    });
    const malformed = new Counter({
      name: 'callvault_sip_malformed_total',
      help: 'SIP datagrams or stream data dropped as unreadable, by transport.',
      labelNames: ['transport'],
      registers,
    });
    new Gauge({
      name: 'callvault_sip_sessions',
      help: 'SIPREC recording sessions open now, by SRC address.',
      labelNames: ['src'],
      registers,
      collect() {
        this.reset();
        for (const [src, n] of srs.sessionsBySource()) this.set({ src }, n);
      },
    });
    srs.on('request', (method, status) => requests.inc({ method, response: String(status) }));
    srs.on('rejected', (reason) => rejected.inc({ reason }));
    srs.on('sent', (method, status) => sent.inc({ method, response: status === null ? 'none' : String(status) }));
    transport.on('malformed', (t) => malformed.inc({ transport: t }));
  }

  observeMedia(plane: MediaPlane): void {
    const refused = new Counter({
      name: 'callvault_rtp_refused_sources_total',
      help: 'First RTP senders to a leg refused as outside media.allowedSources (their packets dropped, the port re-armed), by leg.',
      labelNames: ['leg'],
      registers: [this.registry],
    });
    plane.on('refused-source', (leg) => refused.inc({ leg }));
    const foreign = new Counter({
      name: 'callvault_rtp_foreign_packets_total',
      help: 'RTP packets from a second source to a leg that already has its source, dropped by the mediasoup worker.',
      registers: [this.registry],
    });
    plane.on('foreign-packet', () => foreign.inc());
    new Gauge({
      name: 'callvault_media_shards',
      help: "Media shards (child processes handling calls' packets) running now; 0 with media.shards 0.",
      registers: [this.registry],
      collect() {
        this.set(plane.runningShards);
      },
    });
    const deaths = new Counter({
      name: 'callvault_media_shard_deaths_total',
      help: 'Media shards that died (their calls recovered from disk, the shard started again).',
      registers: [this.registry],
    });
    plane.on('calls-lost', () => deaths.inc());
  }

  /** Admission's signals and headroom (daemon/capacity/). */
  observeCapacity(capacity: CapacityMonitor): void {
    const registers = [this.registry];
    new Gauge({
      name: 'callvault_capacity_signal',
      help: 'What admission measures each second: ingest_lag_ms (median over 5 s, worst worker), event_loop_utilization (0-1), event_loop_delay_ms (p99), packets_per_second, late_ratio, pool_queue.',
      labelNames: ['signal'],
      registers,
      collect() {
        const s = capacity.signals;
        this.set({ signal: 'ingest_lag_ms' }, s.ingestLagMs);
        this.set({ signal: 'event_loop_utilization' }, s.eventLoopUtilization);
        this.set({ signal: 'event_loop_delay_ms' }, s.eventLoopDelayMs);
        this.set({ signal: 'packets_per_second' }, s.packetsPerSecond);
        this.set({ signal: 'late_ratio' }, s.lateRatio);
        this.set({ signal: 'pool_queue' }, s.poolQueue);
      },
    });
    new Gauge({
      name: 'callvault_capacity_headroom',
      help: 'Share of the tightest calls.admission limit still free with one more call (1: idle or no limit set; 0 or less: new calls get 503 CAPACITY).',
      registers,
      collect() {
        this.set(capacity.headroom);
      },
    });
  }

  observePool(pool: WorkerPool): void {
    const registers = [this.registry];
    new Gauge({
      name: 'callvault_pool_queue_depth',
      help: 'Tasks waiting for a free worker thread.',
      registers,
      collect() {
        this.set(pool.queueSize);
      },
    });
    new Gauge({ name: 'callvault_pool_threads', help: 'Worker threads in the sealing pool.', registers }).set(pool.threads);
    const tasks = new Histogram({
      name: 'callvault_pool_task_duration_seconds',
      help: 'Pool task latency from submission to result, queueing included, by task kind.',
      labelNames: ['task'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    pool.on('task', (task, seconds) => tasks.observe({ task }, seconds));
  }

  observeKeks(monitor: KekMonitor, store: KekStore): void {
    new Gauge({
      name: 'callvault_kek_untrusted',
      help: 'KEKs in the data dir, not revoked, that encryption.trustedKeks does not pin: never used; an administrator forgot to pin a rotation, or someone planted one.',
      registers: [this.registry],
      collect() {
        this.set(store.untrusted().length);
      },
    });
    const changes = new Counter({
      name: 'callvault_kek_set_changes_total',
      help: 'Times KEKs appeared in or vanished from the data dir while the daemon ran.',
      registers: [this.registry],
    });
    monitor.onChange(() => changes.inc());
    new Gauge({
      name: 'callvault_kek_expiry_seconds',
      help: 'Seconds until the cryptoperiod of the KEK that encrypts new recordings ends (negative: past it; recording continues). Absent while there is no KEK.',
      labelNames: ['kek'],
      registers: [this.registry],
      collect() {
        this.reset();
        const s = monitor.status();
        if (s) this.set({ kek: s.kek.id }, s.secondsLeft);
      },
    });
  }

  /** Notification mails, by kind (target-failing, target-digest, target-recovered, seal-…, kek-expiry) and result. */
  observeNotifier(mailer: Mailer): void {
    const mails = new Counter({
      name: 'callvault_notifications_total',
      help: 'Notification mails, by kind (target-failing/-digest/-recovered, seal-…, kek-expiry) and result (sent; failed: given up after a day of retries).',
      labelNames: ['kind', 'result'],
      registers: [this.registry],
    });
    mailer.on('mail', (kind, sent) => mails.inc({ kind, result: sent ? 'sent' : 'failed' }));
  }

  /** The archive pipeline, through its runner's observer: seals and uploads. */
  observeArchive(archive: Archive): void {
    const registers = [this.registry];
    const { runner } = archive;
    const sealed = new Counter({
      name: 'callvault_recordings_sealed_total',
      help: 'Recordings sealed (checksum file and signature written).',
      registers,
    });
    const sealFailed = new Counter({ name: 'callvault_recordings_seal_failed_total', help: 'Recordings that could not be sealed.', registers });
    const sealLatency = new Histogram({
      name: 'callvault_seal_duration_seconds',
      help: 'Time to seal a recording once its files are closed: hashing, checksum file, signature, index.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    const retries = new Counter({
      name: 'callvault_recordings_seal_retries_total',
      help: 'Seals that failed for a reason that can pass (EMFILE, ENOSPC, EIO, …) and are tried again, by errno code.',
      labelNames: ['code'],
      registers,
    });
    const uploads = new Counter({
      name: 'callvault_uploads_total',
      help: 'Copies of recordings to storage targets, by target and result (success, failure; failures are retried).',
      labelNames: ['target', 'result'],
      registers,
    });
    // One journal read per scrape for both gauges.
    let status: { at: number; value: ReturnType<Archive['uploadStatus']> } | null = null;
    const uploadStatus = () => {
      if (!status || performance.now() - status.at > 1000) status = { at: performance.now(), value: archive.uploadStatus() };
      return status.value;
    };
    new Gauge({
      name: 'callvault_upload_backlog',
      help: 'Recordings waiting for, or being copied to, each storage target.',
      labelNames: ['target'],
      registers,
      collect() {
        this.reset();
        for (const t of uploadStatus()) this.set({ target: t.target }, t.pending);
      },
    });
    new Gauge({
      name: 'callvault_upload_oldest_pending_seconds',
      help: 'Per storage target, seconds since the oldest recording still owed a copy there was sealed (0: none owed).',
      labelNames: ['target'],
      registers,
      collect() {
        this.reset();
        for (const t of uploadStatus()) this.set({ target: t.target }, t.oldestPendingSeconds);
      },
    });
    const uploadLatency = new Histogram({
      name: 'callvault_upload_duration_seconds',
      help: 'Time to copy and verify one recording on a storage target.',
      labelNames: ['target'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    const uploadedBytes = new Counter({
      name: 'callvault_upload_bytes_total',
      help: 'Bytes sent to each storage target by copies that were verified there (a copy an earlier attempt had made counts once).',
      labelNames: ['target'],
      registers,
    });
    archive.uploadObserver.on('uploaded', (target, _recordingId, bytes) => uploadedBytes.inc({ target }, bytes));
    runner.observer.on('done', (stage, lane, _recordingId, seconds) => {
      if (stage === 'seal') {
        sealed.inc();
        sealLatency.observe(seconds);
      } else if (stage === 'upload') {
        uploads.inc({ target: lane, result: 'success' });
        uploadLatency.observe({ target: lane }, seconds);
      }
    });
    runner.observer.on('failed', (stage, lane, _recordingId, action, code) => {
      if (stage === 'seal' && action === 'retry') retries.inc({ code: code ?? 'other' });
      else if (stage === 'seal') sealFailed.inc();
      else if (stage === 'upload') uploads.inc({ target: lane, result: 'failure' });
    });
  }
}
