/**
 * Which way should RTP reach Node from mediasoup? Measures, in one run on this
 * machine, the two ways issue "Record a call end to end" names:
 *
 *   direct: PlainTransport → Producer → DirectTransport consumer 'rtp' events
 *   socket: PlainTransport → Producer → second PlainTransport → Node UDP socket
 *
 * A separate process sends G.711-sized RTP (172 bytes) into `legs` transports at
 * a paced total rate; we count what reaches Node and the CPU Node spent.
 *
 *   scripts/node dist/native-free-bench/ingest-paths.js [--rate 30000] [--seconds 3] [--legs 10]
 */
import { fork } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import * as mediasoup from 'mediasoup';
import type { types as ms } from 'mediasoup';
import { numberOption } from './args.js';
import { report } from './report.js';

interface Args {
  rate: number;
  seconds: number;
  legs: number;
}

const args = (): Args => ({ rate: numberOption('rate', 30000), seconds: numberOption('seconds', 3), legs: numberOption('legs', 10) });

/** Child: send `rate` packets/s spread over the ports for `seconds`, in 1 ms bursts. */
async function sender(ports: number[], rate: number, seconds: number): Promise<number> {
  const sock = createSocket('udp4');
  const pkt = Buffer.alloc(172);
  pkt[0] = 0x80;
  let sent = 0;
  const total = rate * seconds;
  const t0 = performance.now();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    for (; sent < due; sent++) {
      const leg = sent % ports.length;
      pkt.writeUInt16BE(Math.floor(sent / ports.length) & 0xffff, 2);
      pkt.writeUInt32BE((Math.floor(sent / ports.length) * 160) >>> 0, 4);
      pkt.writeUInt32BE(1000 + leg, 8);
      // dgram.send does not copy synchronously: each packet needs its own buffer.
      sock.send(Buffer.from(pkt), ports[leg] as number, '127.0.0.1');
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await new Promise((r) => setTimeout(r, 50));
  sock.close();
  return sent;
}

async function measure(
  path: 'direct' | 'socket',
  a: Args,
): Promise<{ path: string; offered: number; delivered: number; lossPct: number; nodeCpuUsPerPacket: number }> {
  const worker = await mediasoup.createWorker();
  const router = await worker.createRouter({ mediaCodecs: [{ kind: 'audio', mimeType: 'audio/PCMU', clockRate: 8000, preferredPayloadType: 0 }] });
  const direct = await router.createDirectTransport();
  const sink = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  await new Promise<void>((r) => sink.bind(0, '127.0.0.1', r));
  let delivered = 0;
  // The second transport also sends RTCP reports here; count RTP only.
  sink.on('message', (m: Buffer) => {
    if ((m[1] as number) < 192 || (m[1] as number) > 223) delivered++;
  });
  const ports: number[] = [];
  for (let i = 0; i < a.legs; i++) {
    const t = await router.createPlainTransport({
      listenInfo: { protocol: 'udp', ip: '127.0.0.1', recvBufferSize: 4 << 20 },
      rtcpMux: true,
      comedia: true,
    });
    const producer = await t.produce({
      kind: 'audio',
      rtpParameters: { codecs: [{ mimeType: 'audio/PCMU', payloadType: 0, clockRate: 8000 }], encodings: [{ ssrc: 1000 + i }] },
    });
    let consumer: ms.Consumer;
    if (path === 'direct') {
      consumer = await direct.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
      consumer.on('rtp', () => delivered++);
    } else {
      const out = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: false });
      await out.connect({ ip: '127.0.0.1', port: sink.address().port });
      consumer = await out.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
    }
    ports.push(t.tuple.localPort);
  }
  const cpu0 = process.cpuUsage();
  const child = fork(fileURLToPath(import.meta.url), ['send', JSON.stringify({ ports, rate: a.rate, seconds: a.seconds })]);
  const offered = await new Promise<number>((r) => child.once('message', (m) => r(m as number)));
  await new Promise((r) => setTimeout(r, 300));
  const cpu = process.cpuUsage(cpu0);
  worker.close();
  sink.close();
  return {
    path,
    offered,
    delivered,
    lossPct: Math.round((1 - delivered / offered) * 10000) / 100,
    nodeCpuUsPerPacket: Math.round(((cpu.user + cpu.system) / Math.max(1, delivered)) * 100) / 100,
  };
}

if (process.argv[2] === 'send') {
  const { ports, rate, seconds } = JSON.parse(process.argv[3] as string) as { ports: number[]; rate: number; seconds: number };
  void sender(ports, rate, seconds).then((n) => {
    process.send?.(n);
    process.exit(0);
  });
} else {
  const a = args();
  const rows = [await measure('direct', a), await measure('socket', a), await measure('direct', a), await measure('socket', a)];
  report(
    'ingest-paths',
    `RTP into Node: ${a.legs} legs, ${a.rate} pkt/s for ${a.seconds} s (sender in another process), each path twice`,
    rows.map((r) => ({
      measure: r.path === 'direct' ? 'DirectTransport consumer events (used)' : 'second PlainTransport → Node UDP socket',
      figure: `${r.nodeCpuUsPerPacket} µs Node CPU a packet`,
      baseline: `${r.delivered.toLocaleString('en')} of ${r.offered.toLocaleString('en')} delivered (${r.lossPct} % lost)`,
    })),
    { ...a, rows },
  );
}
