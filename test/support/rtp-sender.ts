/**
 * A separate process that sends RTP per a SendPlan (argv[2] is its JSON, or
 * it arrives over IPC) and prints/posts a StreamResult[] when done. Paced on
 * the wall clock in 20 ms frames, like a phone.
 */
import { createSocket, type Socket } from 'node:dgram';
import { encode } from '../../daemon/media/g711.js';
import { buildRtp } from '../../daemon/media/rtp.js';
import type { SendPlan, StreamPlan, StreamResult } from './rtpPlan.js';

const FRAME = 160;

/** Deterministic pseudo-random pattern so a test's loss is the same every run. */
function chosen(frame: number, fraction: number | undefined, salt: number): boolean {
  if (!fraction) return false;
  const x = Math.sin((frame + 1) * 12.9898 + salt * 78.233) * 43758.5453;
  return x - Math.floor(x) < fraction;
}

interface Packet {
  readonly atMs: number;
  readonly data: Buffer;
  readonly raw: boolean;
}

function schedule(s: StreamPlan, salt: number): Packet[] {
  const out: Packet[] = [];
  const start = s.startMs ?? 0;
  const frames = Math.round(s.durationMs / 20);
  const amp = s.amplitude ?? 8000;
  const pcm = new Int16Array(FRAME);
  let ssrc = s.ssrc;
  let seq0 = s.seqStart;
  let ts0 = s.tsStart;
  let base = 0;
  let held = 0; // frames not generated while on hold: they use no sequence numbers
  const dtmfPt = s.dtmfPayloadType ?? 101;
  for (let k = 0; k < frames; k++) {
    const t = k * 20;
    if (s.ssrcChange && t >= s.ssrcChange.atMs && ssrc !== s.ssrcChange.ssrc) {
      ssrc = s.ssrcChange.ssrc;
      seq0 = s.ssrcChange.seqStart;
      ts0 = s.ssrcChange.tsStart;
      base = k;
      held = 0;
    }
    if (s.hold && t >= s.hold[0] && t < s.hold[1]) {
      held++;
      continue;
    }
    const seq = (seq0 + (k - base - held)) & 0xffff;
    const ts = (ts0 + (k - base) * FRAME) >>> 0;
    const inDtmf = s.dtmf?.find((d) => t >= d.atMs && t < d.atMs + d.durationMs);
    if (chosen(k, s.loss, salt)) continue;
    let data: Buffer;
    if (inDtmf) {
      const evTs = (ts0 + (Math.round(inDtmf.atMs / 20) - base) * FRAME) >>> 0;
      const dur = t + 20 - inDtmf.atMs;
      const end = t + 20 >= inDtmf.atMs + inDtmf.durationMs;
      const payload = Buffer.from([inDtmf.event, (end ? 0x80 : 0) | 10, (dur * 8) >> 8, (dur * 8) & 0xff]);
      data = buildRtp({ marker: t === inDtmf.atMs, payloadType: dtmfPt, sequence: seq, timestamp: evTs, ssrc }, payload);
    } else {
      for (let i = 0; i < FRAME; i++) pcm[i] = Math.round(amp * Math.sin((2 * Math.PI * s.freq * (k * FRAME + i)) / 8000));
      data = buildRtp({ marker: k === 0, payloadType: s.payloadType, sequence: seq, timestamp: ts, ssrc }, encode(s.law, pcm));
    }
    out.push({ atMs: start + t, data, raw: false });
    if (chosen(k, s.duplicate, salt + 7)) out.push({ atMs: start + t + 5, data, raw: false });
  }
  // Reordering: swap send times of chosen neighbours.
  for (let i = 0; i + 1 < out.length; i++) {
    if (chosen(i, s.reorder, salt + 3)) {
      const a = out[i] as Packet;
      const b = out[i + 1] as Packet;
      out[i] = { ...b, atMs: a.atMs };
      out[i + 1] = { ...a, atMs: b.atMs };
      i++;
    }
  }
  for (const r of s.raw ?? []) out.push({ atMs: start + r.atMs, data: Buffer.from(r.base64, 'base64'), raw: true });
  return out.sort((a, b) => a.atMs - b.atMs);
}

export async function send(plan: SendPlan): Promise<StreamResult[]> {
  // One socket per source address: streams without one share a single ephemeral socket, as one SBC would.
  const sockets = new Map<string, Socket>();
  for (const s of plan.streams) {
    const key = `${s.fromHost ?? '127.0.0.1'}:${s.fromPort ?? 0}`;
    if (sockets.has(key)) continue;
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(s.fromPort ?? 0, s.fromHost ?? '127.0.0.1', r));
    sockets.set(key, sock);
  }
  const socketOf = (s: StreamPlan) => sockets.get(`${s.fromHost ?? '127.0.0.1'}:${s.fromPort ?? 0}`) as Socket;
  const queues = plan.streams.map((s, i) => ({
    s,
    sock: socketOf(s),
    q: schedule(s, i + 1),
    i: 0,
    result: { port: s.port, sent: 0, rawSent: 0, rawBytes: 0 },
  }));
  const t0 = performance.now();
  const last = Math.max(0, ...queues.map((x) => x.q[x.q.length - 1]?.atMs ?? 0));
  await new Promise<void>((resolve) => {
    const step = () => {
      const now = performance.now() - t0;
      for (const x of queues) {
        while (x.i < x.q.length && (x.q[x.i] as Packet).atMs <= now) {
          const p = x.q[x.i++] as Packet;
          x.sock.send(p.data, x.s.port, x.s.host ?? '127.0.0.1');
          if (p.raw) {
            x.result.rawSent++;
            x.result.rawBytes += p.data.length;
          } else x.result.sent++;
        }
      }
      if (now > last + 5) resolve();
      else setTimeout(step, Math.max(1, Math.min(5, 20 - (now % 20))));
    };
    step();
  });
  await new Promise((r) => setTimeout(r, 20));
  for (const sock of sockets.values()) sock.close();
  return queues.map((x) => x.result);
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() as string)) {
  const run = async (plan: SendPlan) => {
    const results = await send(plan);
    if (process.send) process.send(results);
    else console.log(JSON.stringify(results));
  };
  if (process.argv[2]) void run(JSON.parse(process.argv[2]) as SendPlan);
  else process.once('message', (m) => void run(m as SendPlan));
}
