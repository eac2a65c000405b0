/**
 * The load generator's RTP side, in its own process (as an SBC would be):
 * every leg gets one 20 ms G.711 packet per frame, paced on the wall clock,
 * with optional loss, reordering and jitter. Started with fork(); the plan
 * arrives over IPC and the counts go back the same way. Legs may be added
 * while it runs (`{ add: [...] }`, for calls admitted one by one): each sends
 * from then until the plan's end.
 */
import { createSocket } from 'node:dgram';
import { encode, type G711Law } from '../../daemon/media/g711.js';
import { buildRtp } from '../../daemon/media/rtp.js';

export interface SenderLeg {
  readonly port: number;
  readonly law: G711Law;
  readonly ssrc: number;
  /** A multiple of 50 Hz, so every 20 ms frame is the same tone. */
  readonly freq: number;
}

export interface SenderPlan {
  readonly legs: readonly SenderLeg[];
  readonly seconds: number;
  /** Fraction of packets not sent. */
  readonly loss: number;
  /** Fraction of packets sent after their successor. */
  readonly reorder: number;
  /** Each packet is delayed by up to this many ms (uniform). */
  readonly jitterMs: number;
}

/** More legs for a running sender. */
export interface SenderAdd {
  readonly add: readonly SenderLeg[];
}

export interface SenderResult {
  /** Packets handed to the kernel and acknowledged by the send callback. */
  readonly sent: number;
  /** Packets the generator dropped on purpose (--loss). */
  readonly dropped: number;
  readonly sendErrors: number;
  /** Worst lateness of a frame behind its wall-clock time: the generator's own health. */
  readonly maxLagMs: number;
}

const FRAME = 160;
const STEP_MS = 5;

function template(leg: SenderLeg): Buffer {
  const pcm = new Int16Array(FRAME).map((_, i) => Math.round(6000 * Math.sin((2 * Math.PI * leg.freq * i) / 8000)));
  return buildRtp({ marker: false, payloadType: leg.law === 'PCMU' ? 0 : 8, sequence: 0, timestamp: 0, ssrc: leg.ssrc }, encode(leg.law, pcm));
}

export async function send(plan: SenderPlan, more: (add: (legs: readonly SenderLeg[]) => void) => void = () => undefined): Promise<SenderResult> {
  const sock = createSocket({ type: 'udp4', sendBufferSize: 8 << 20 });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const legs = [...plan.legs];
  const templates = legs.map(template);
  const seq0 = legs.map(() => Math.floor(Math.random() * 65536));
  const ts0 = legs.map(() => Math.floor(Math.random() * 2 ** 32));
  /** The frame each leg starts at (0 for the plan's own). */
  const from = legs.map(() => 0);
  const due = new Map<number, { leg: number; pkt: Buffer }[]>(); // by STEP_MS slot
  const frames = Math.round((plan.seconds * 1000) / 20);
  let made = 0;
  let sent = 0;
  let dropped = 0;
  let sendErrors = 0;
  let pending = 0;
  let maxLagMs = 0;
  const t0 = performance.now();
  more((added) => {
    for (const leg of added) {
      legs.push(leg);
      templates.push(template(leg));
      seq0.push(Math.floor(Math.random() * 65536));
      ts0.push(Math.floor(Math.random() * 2 ** 32));
      from.push(made);
    }
  });
  const schedule = (atMs: number, leg: number, pkt: Buffer) => {
    const slot = Math.floor(atMs / STEP_MS);
    const list = due.get(slot);
    if (list) list.push({ leg, pkt });
    else due.set(slot, [{ leg, pkt }]);
  };
  await new Promise<void>((resolve) => {
    let slot = 0;
    const step = () => {
      const now = performance.now() - t0;
      for (; made < frames && made * 20 <= now; made++) {
        maxLagMs = Math.max(maxLagMs, now - made * 20);
        for (const [leg, tpl] of templates.entries()) {
          if (made < from[leg]!) continue;
          if (plan.loss && Math.random() < plan.loss) {
            dropped++;
            continue;
          }
          const pkt = Buffer.from(tpl);
          pkt.writeUInt16BE((seq0[leg]! + made - from[leg]!) & 0xffff, 2);
          pkt.writeUInt32BE((ts0[leg]! + made * FRAME) >>> 0, 4);
          const late = plan.reorder && Math.random() < plan.reorder ? 21 : 0;
          schedule(made * 20 + late + Math.random() * plan.jitterMs, leg, pkt);
        }
      }
      for (const end = Math.floor(now / STEP_MS); slot <= end; slot++) {
        for (const { leg, pkt } of due.get(slot) ?? []) {
          pending++;
          sock.send(pkt, legs[leg]!.port, '127.0.0.1', (err) => {
            pending--;
            if (err) sendErrors++;
            else sent++;
          });
        }
        due.delete(slot);
      }
      if (made >= frames && due.size === 0) resolve();
      else setTimeout(step, Math.max(0, STEP_MS - ((performance.now() - t0) % STEP_MS)));
    };
    step();
  });
  for (let i = 0; pending > 0 && i < 200; i++) await new Promise((r) => setTimeout(r, 10));
  sock.close();
  return { sent, dropped, sendErrors, maxLagMs: Math.round(maxLagMs) };
}

process.once('message', (plan: SenderPlan) => {
  const more = (add: (legs: readonly SenderLeg[]) => void) => process.on('message', (m: SenderAdd) => add(m.add));
  void send(plan, more).then((r) => process.send?.(r, () => process.exit(0)));
});
