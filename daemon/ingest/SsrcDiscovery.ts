import * as mediasoup from 'mediasoup';
import type { Logger } from '../log.js';
import type { LegSource } from './LegSource.js';
import type { WorkerSlot } from './MediaIngest.js';

/*
 * Why this exists: a mediasoup PlainTransport only routes RTP whose SSRC a
 * Producer declared, and a PBX rarely announces its SSRC. The worker reports
 * each packet it could not route as a warning "no suitable Producer for
 * received RTP packet [ssrc:…]", tagged with its pid, on the same ordered
 * channel that carries the transport's comedia 'tuple' event. So:
 *
 * - first packet of a leg: the worker emits 'tuple' for that transport and
 *   then the warning for the same packet; the first unclaimed SSRC warned
 *   after a leg's tuple belongs to that leg (exact, not a guess);
 * - a new SSRC later in the call (transfer, re-INVITE, SBC failover) has no
 *   tuple event; it is attributed by asking the worker which of the legs that
 *   went quiet keeps receiving bytes that no Producer accepted.
 */
const UNROUTED = /^\[pid:(\d+)\].*no suitable Producer for received RTP packet \[ssrc:(\d+), payloadType:(\d+)\]/;

const ATTRIBUTION_INTERVAL_MS = 100;
const QUIET_MS = 100;
const ORPHAN_TTL_MS = 2000;

interface SlotState {
  readonly slot: WorkerSlot;
  /** Legs whose first packet has arrived (tuple event), in arrival order, waiting for their SSRC. */
  readonly awaitingFirst: LegSource[];
  /** SSRCs this worker could not route and that no leg claimed yet, with last-seen time. */
  readonly orphans: Map<number, number>;
  /** Per quiet leg: unrouted bytes at the last look. */
  readonly lastNonMedia: Map<LegSource, number>;
  timer: NodeJS.Timeout | undefined;
}

export class SsrcDiscovery {
  private readonly byPid = new Map<number, SlotState>();
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
    mediasoup.setLogEventListeners({
      onwarn: (_ns, line) => this.onWorkerWarning(line),
      onerror: (ns, line) => log.error({ ns }, line),
    });
  }

  attach(slot: WorkerSlot): void {
    this.byPid.set(slot.worker.pid, { slot, awaitingFirst: [], orphans: new Map(), lastNonMedia: new Map(), timer: undefined });
  }

  detach(slot: WorkerSlot): void {
    const st = this.byPid.get(slot.worker.pid);
    if (st?.timer) clearInterval(st.timer);
    this.byPid.delete(slot.worker.pid);
  }

  /** `leg` has no known SSRC: claim the first one its transport receives. */
  expect(slot: WorkerSlot, leg: LegSource): void {
    leg.transport.on('tuple', () => {
      if (leg.ssrcs.length === 0) this.byPid.get(slot.worker.pid)?.awaitingFirst.push(leg);
    });
  }

  forget(slot: WorkerSlot, leg: LegSource): void {
    const st = this.byPid.get(slot.worker.pid);
    if (!st) return;
    const i = st.awaitingFirst.indexOf(leg);
    if (i >= 0) st.awaitingFirst.splice(i, 1);
    st.lastNonMedia.delete(leg);
  }

  stop(): void {
    for (const st of this.byPid.values()) if (st.timer) clearInterval(st.timer);
    this.byPid.clear();
    mediasoup.setLogEventListeners();
  }

  private onWorkerWarning(line: string): void {
    const m = UNROUTED.exec(line);
    if (!m) {
      this.log.debug({ src: 'mediasoup-worker' }, line);
      return;
    }
    const st = this.byPid.get(Number(m[1]));
    if (!st) return;
    const ssrc = Number(m[2]);
    for (const leg of st.slot.legs) if (leg.hasSsrc(ssrc)) return; // Producer being created
    const leg = st.awaitingFirst.shift();
    if (leg && !leg.closed) {
      this.bind(leg, ssrc, 'first packet');
      return;
    }
    st.orphans.set(ssrc, performance.now());
    st.timer ??= setInterval(() => void this.attribute(st), ATTRIBUTION_INTERVAL_MS);
  }

  private bind(leg: LegSource, ssrc: number, why: string): void {
    this.log.debug({ callId: leg.options.callId, leg: leg.options.role, ssrc, why }, 'SSRC bound to leg');
    leg.bind(ssrc).catch((err: Error) =>
      this.log.error({ callId: leg.options.callId, leg: leg.options.role, ssrc, err: err.message }, 'cannot receive SSRC'),
    );
  }

  /** Find the one quiet leg whose port still takes unrouted bytes, and give it the orphan SSRC. */
  private async attribute(st: SlotState): Promise<void> {
    const now = performance.now();
    for (const [ssrc, seen] of st.orphans) if (now - seen > ORPHAN_TTL_MS) st.orphans.delete(ssrc);
    if (st.orphans.size === 0) {
      clearInterval(st.timer);
      st.timer = undefined;
      st.lastNonMedia.clear();
      return;
    }
    const quiet = [...st.slot.legs].filter((l) => !l.closed && l.ssrcs.length > 0 && now - l.lastPacketAt > QUIET_MS);
    const growing: LegSource[] = [];
    await Promise.all(
      quiet.map(async (leg) => {
        const { nonMediaBytes } = await leg.report().catch(() => ({ nonMediaBytes: -1 }));
        const before = st.lastNonMedia.get(leg);
        st.lastNonMedia.set(leg, nonMediaBytes);
        if (before !== undefined && nonMediaBytes > before) growing.push(leg);
      }),
    );
    const newest = [...st.orphans.entries()].sort((a, b) => b[1] - a[1])[0];
    if (growing.length === 1 && newest) {
      st.orphans.delete(newest[0]);
      st.lastNonMedia.delete(growing[0] as LegSource);
      this.bind(growing[0] as LegSource, newest[0], 'new SSRC mid-call');
    }
  }
}
