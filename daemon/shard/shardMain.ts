import { EventLoopGauge } from '../capacity/EventLoopGauge.js';
import { ShardError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { LocalPlane } from './LocalPlane.js';
import { FORWARDED_EVENTS, REPORT_MS, toWire, type FromShard, type ShardRequests, type ShardStart, type ToShard } from './ShardProtocol.js';

/*
 * A media shard: a child process of the daemon that owns one LocalPlane —
 * its mediasoup workers, and the timelines and writers of its calls. It
 * does what the daemon asks over the IPC channel and reports back; it has
 * no other way in (no listening socket but its RTP ports, no index, no keys
 * but KEKs' public halves).
 */

let plane: LocalPlane | undefined;
let log: Logger = createLogger('info');
let reporter: NodeJS.Timeout | undefined;
const loop = new EventLoopGauge();

function send(msg: FromShard): void {
  // A daemon gone mid-send: the 'disconnect' handler ends this process.
  if (process.connected) process.send?.(msg);
}

async function start({ shard, settings, logLevel }: ShardStart): Promise<ShardRequests['start']['result']> {
  if (plane) throw new ShardError('STARTED', 'this shard has started already', { shard });
  log = createLogger(logLevel).child({ shard });
  plane = await LocalPlane.create(settings, log);
  for (const name of FORWARDED_EVENTS) plane.on(name, (...args: unknown[]) => send({ kind: 'event', name, args }));
  loop.start();
  reporter = setInterval(() => {
    if (!plane) return;
    send({
      kind: 'event',
      name: 'report',
      args: [{ stats: [...plane.stats()], ingestLagMs: plane.ingestLagMs, loop: loop.sample(), workerPids: plane.workerPids }],
    });
  }, REPORT_MS);
  return { workerPids: plane.workerPids };
}

function started(): LocalPlane {
  if (!plane) throw new ShardError('NOT_STARTED', 'the shard has not started');
  return plane;
}

async function close(): Promise<undefined> {
  clearInterval(reporter);
  loop.stop();
  await plane?.close();
  plane = undefined;
  return undefined;
}

const requests: { [K in keyof ShardRequests]: (...args: ShardRequests[K]['args']) => Promise<ShardRequests[K]['result']> } = {
  start,
  open: (req) => started().open(req),
  update: (callId, change) => started().update(callId, change),
  finish: (callId, reason) => started().finish(callId, reason),
  meta: (callId) => started().meta(callId),
  discard: (callId, recordingId) => started().discard(callId, recordingId),
  close,
};

async function onMessage(msg: ToShard): Promise<void> {
  if (msg.kind === 'notice') {
    const p = started();
    if (msg.method === 'hold') p.hold(...(msg.args as [string, boolean]));
    else if (msg.method === 'resumeWriting') p.resumeWriting(...(msg.args as [string]));
    else p.configure(...(msg.args as Parameters<LocalPlane['configure']>));
    return;
  }
  try {
    const handler = requests[msg.method] as (...args: unknown[]) => Promise<unknown>;
    send({ kind: 'result', id: msg.id, value: await handler(...msg.args) });
  } catch (err) {
    send({ kind: 'failure', id: msg.id, error: toWire(err) });
  }
  if (msg.method === 'close') process.disconnect();
}

process.on('message', (msg) => {
  void onMessage(msg as ToShard).catch((err: unknown) => log.error({ err }, 'a media shard request failed'));
});
// The daemon went away (crashed or was killed): nobody is left to finish the calls; its next start recovers them from disk.
process.on('disconnect', () => {
  void close().finally(() => process.exit(0));
});
// systemd and a terminal signal the whole group: the daemon decides when a shard stops, after its calls are closed.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => undefined);
process.on('uncaughtException', (err) => {
  log.fatal({ err }, 'media shard failed; the daemon restarts it and recovers its calls from disk');
  process.exit(70);
});
