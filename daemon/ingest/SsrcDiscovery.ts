import type { Logger } from '../log.js';
import type { LegSource } from './LegSource.js';
import type { WorkerSlot } from './MediaIngest.js';

/*
 * Why this exists: a mediasoup PlainTransport only routes RTP whose SSRC a
 * Producer declared, and a PBX rarely announces its SSRC. What the worker
 * does tell us, per worker process:
 *
 * - a warning "no suitable Producer for received RTP packet [ssrc:…]" for
 *   every packet it could not route (no transport named), and
 * - the leg's 'source' event when its transport took its first (allowed) sender.
 *
 * Each of the two streams is in packet-processing order (the warnings simply
 * arrive earlier), so the k-th new SSRC is paired with the k-th leg that got
 * its first packet. A new SSRC later in a call (transfer, re-INVITE, SBC
 * failover) has no source event; it is tried on the legs that went quiet.
 *
 * Every binding is a trial until its first packet arrives through the new
 * Producer. If instead the worker keeps warning about that SSRC once the
 * Producer exists, the guess was wrong: the Producer is closed and the next
 * candidate is tried. So a wrong guess costs a few packets, never a
 * recording, and never mixes two legs.
 */
/** After a Producer exists, how long in-flight warnings may still arrive. */
const SETTLE_MS = 30;
/** A new SSRC with no source event for this long is a mid-call SSRC change. */
const PAIR_WAIT_MS = 60;
/** A leg this quiet may be the one whose SSRC changed. */
const QUIET_MS = 60;
/** Forget SSRCs no packet has been seen for. */
const FORGET_MS = 5000;
const CHECK_MS = 20;

interface Trial {
  readonly leg: LegSource;
  /** When the Producer was in place (undefined while it is being created). */
  boundAt: number | undefined;
  readonly tried: Set<LegSource>;
  /** The leg's 'confirmed' listener, removed when the trial ends. */
  onConfirmed: ((ssrc: number) => void) | undefined;
}

interface Unassigned {
  readonly firstSeen: number;
  lastSeen: number;
  readonly tried: Set<LegSource>;
}

interface SlotState {
  readonly slot: WorkerSlot;
  /** Legs without an SSRC whose first packet arrived, in order, not yet paired. */
  readonly firstPackets: LegSource[];
  /** New SSRCs in the order the worker first warned about them, not yet paired. */
  readonly unassigned: Map<number, Unassigned>;
  readonly trials: Map<number, Trial>;
  timer: NodeJS.Timeout | undefined;
}

export class SsrcDiscovery {
  private readonly byPid = new Map<number, SlotState>();

  constructor(
    private readonly log: Logger,
    /** Monotonic ms; a test gives its own clock. */
    private readonly now: () => number = () => performance.now(),
  ) {}

  attach(slot: WorkerSlot): void {
    this.byPid.set(slot.worker.pid, { slot, firstPackets: [], unassigned: new Map(), trials: new Map(), timer: undefined });
  }

  detach(slot: WorkerSlot): void {
    const st = this.byPid.get(slot.worker.pid);
    if (st?.timer) clearInterval(st.timer);
    this.byPid.delete(slot.worker.pid);
  }

  /** `leg` has no announced SSRC: find the one its transport receives. */
  expect(slot: WorkerSlot, leg: LegSource): void {
    leg.on('source', () => {
      const st = this.byPid.get(slot.worker.pid);
      if (!st || leg.closed || leg.ssrcs.length > 0) return;
      st.firstPackets.push(leg);
      this.pair(st);
    });
  }

  /**
   * A leg refused its first sender and listens afresh: SSRCs not yet paired
   * may be that sender's and must not be paired with the real one's first
   * packet. A legitimate stream among them is warned about again with its
   * next packet and comes back at once.
   */
  sourceRefused(slot: WorkerSlot): void {
    this.byPid.get(slot.worker.pid)?.unassigned.clear();
  }

  forget(slot: WorkerSlot, leg: LegSource): void {
    const st = this.byPid.get(slot.worker.pid);
    if (!st) return;
    const i = st.firstPackets.indexOf(leg);
    if (i >= 0) st.firstPackets.splice(i, 1);
    for (const [ssrc, t] of st.trials) if (t.leg === leg) this.reassign(st, ssrc, t);
  }

  stop(): void {
    for (const st of this.byPid.values()) if (st.timer) clearInterval(st.timer);
    this.byPid.clear();
  }

  /** The worker `pid` could not route a packet of `ssrc` (WorkerLog). */
  unrouted(pid: number, ssrc: number): void {
    const st = this.byPid.get(pid);
    if (!st) return;
    const now = this.now();
    const trial = st.trials.get(ssrc);
    if (trial) {
      if (trial.boundAt !== undefined && now - trial.boundAt > SETTLE_MS) {
        this.log.debug({ callId: trial.leg.options.callId, leg: trial.leg.options.role, ssrc }, 'SSRC is not this leg; trying the next');
        void trial.leg.unbind(ssrc);
        this.reassign(st, ssrc, trial);
      }
      return;
    }
    const u = st.unassigned.get(ssrc);
    if (u) {
      u.lastSeen = now;
      return;
    }
    for (const leg of st.slot.legs) if (leg.hasSsrc(ssrc)) return; // a packet that overtook its Producer
    st.unassigned.set(ssrc, { firstSeen: now, lastSeen: now, tried: new Set() });
    this.pair(st);
    st.timer ??= setInterval(() => this.check(st), CHECK_MS);
  }

  /** Pair first packets with new SSRCs, in order. */
  private pair(st: SlotState): void {
    while (st.firstPackets.length && st.unassigned.size) {
      const leg = st.firstPackets.shift() as LegSource;
      if (leg.closed || leg.ssrcs.length) continue;
      const [ssrc, u] = st.unassigned.entries().next().value as [number, Unassigned];
      st.unassigned.delete(ssrc);
      this.trial(st, ssrc, leg, u.tried);
    }
  }

  private trial(st: SlotState, ssrc: number, leg: LegSource, tried: Set<LegSource>): void {
    tried.add(leg);
    const t: Trial = { leg, boundAt: undefined, tried, onConfirmed: undefined };
    st.trials.set(ssrc, t);
    t.onConfirmed = (s) => {
      if (s !== ssrc) return;
      this.log.debug({ callId: leg.options.callId, leg: leg.options.role, ssrc }, 'SSRC bound to leg');
      this.endTrial(st, ssrc, t);
    };
    leg.on('confirmed', t.onConfirmed);
    leg.bind(ssrc).then(
      () => {
        t.boundAt = this.now();
      },
      (err: Error) => {
        this.log.error({ callId: leg.options.callId, leg: leg.options.role, ssrc, err }, 'cannot receive SSRC');
        this.endTrial(st, ssrc, t);
      },
    );
  }

  private endTrial(st: SlotState, ssrc: number, t: Trial): void {
    if (st.trials.get(ssrc) === t) st.trials.delete(ssrc);
    if (t.onConfirmed) t.leg.off('confirmed', t.onConfirmed);
    t.onConfirmed = undefined;
  }

  /** The trial was wrong (or its leg went away): try `ssrc` on another leg, or park it until one fits. */
  private reassign(st: SlotState, ssrc: number, t: Trial): void {
    this.endTrial(st, ssrc, t);
    // The leg still lacks its own SSRC: it is a candidate again (else two legs paired crosswise would both stay silent).
    if (!t.leg.closed && t.leg.ssrcs.length === 0 && !st.firstPackets.includes(t.leg)) st.firstPackets.push(t.leg);
    const now = this.now();
    st.unassigned.set(ssrc, { firstSeen: now - PAIR_WAIT_MS, lastSeen: now, tried: t.tried });
    st.timer ??= setInterval(() => this.check(st), CHECK_MS);
  }

  /** SSRCs no source event will explain: try them on candidate legs, one at a time. */
  private check(st: SlotState): void {
    const now = this.now();
    const busy = new Set([...st.trials.values()].map((t) => t.leg));
    for (const [ssrc, u] of st.unassigned) {
      if (now - u.lastSeen > FORGET_MS) {
        st.unassigned.delete(ssrc);
        continue;
      }
      if (now - u.firstSeen < PAIR_WAIT_MS) continue;
      const candidate =
        st.firstPackets.find((l) => !u.tried.has(l) && !busy.has(l)) ??
        [...st.slot.legs].find((l) => !l.closed && !u.tried.has(l) && !busy.has(l) && l.ssrcs.length > 0 && now - l.lastPacketAt > QUIET_MS);
      if (!candidate) continue;
      busy.add(candidate);
      const i = st.firstPackets.indexOf(candidate);
      if (i >= 0) st.firstPackets.splice(i, 1);
      st.unassigned.delete(ssrc);
      this.trial(st, ssrc, candidate, u.tried);
    }
    if (st.unassigned.size === 0 && st.trials.size === 0 && st.timer) {
      clearInterval(st.timer);
      st.timer = undefined;
    }
  }
}
