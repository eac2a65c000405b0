import * as mediasoup from 'mediasoup';
import type { Logger } from '../log.js';

/**
 * What callvault learns from the mediasoup workers' log lines (the 'rtp'
 * tag; the worker tells Node of these events no other way), per worker pid:
 *
 * - "no suitable Producer for received RTP packet [ssrc:…]" (warn): an SSRC
 *   nobody has bound yet, for SSRC discovery;
 * - "ignoring RTP packet from unknown IP:port" (debug): a packet from a
 *   second source to a leg that already has its source, dropped.
 */
const UNROUTED = /^\[pid:(\d+)\].*no suitable Producer for received RTP packet \[ssrc:(\d+), payloadType:\d+\]/;
const FOREIGN = /^\[pid:(\d+)\].*ignoring RTP packet from unknown IP:port/;

export interface WorkerLogHandlers {
  readonly unrouted: (pid: number, ssrc: number) => void;
  readonly foreign: (pid: number) => void;
}

export class WorkerLog {
  constructor(
    private readonly log: Logger,
    private readonly handlers: WorkerLogHandlers,
  ) {
    mediasoup.setLogEventListeners({
      ondebug: (_ns, line) => this.onDebug(line),
      onwarn: (_ns, line) => this.onWarn(line),
      onerror: (ns, line) => log.error({ ns }, line),
    });
  }

  stop(): void {
    mediasoup.setLogEventListeners();
  }

  private onWarn(line: string): void {
    const m = UNROUTED.exec(line);
    if (m) this.handlers.unrouted(Number(m[1]), Number(m[2]));
    else this.log.debug({ src: 'mediasoup-worker' }, line);
  }

  private onDebug(line: string): void {
    // Only the worker's 'rtp' debug lines matter; mediasoup's own Node-side debug output is dropped here.
    const m = FOREIGN.exec(line);
    if (m) this.handlers.foreign(Number(m[1]));
  }
}
