import { parseParams, type SipResponse } from './SipMessage.js';
import type { SipPeer } from './SipTransport.js';

/** RFC 3261 timers: T1 (RTT estimate), T2 (cap of retransmission intervals); a transaction lives 64·T1. */
export const T1 = 500;
export const T2 = 4000;
export const TRANSACTION_MS = 64 * T1;

interface Pending {
  readonly resolve: (status: number | null) => void;
  retransmit: NodeJS.Timeout | undefined;
  readonly timeout: NodeJS.Timeout;
}

/**
 * Non-INVITE client transactions (RFC 3261 §17.1.2): the few requests the
 * SRS sends in a dialog (BYE, a refreshing UPDATE). Over UDP the request is
 * sent again at T1, 2·T1, … (at most T2 apart) until a final response;
 * without one in 64·T1 it has timed out. Responses are matched by the top
 * Via's branch.
 */
export class SipClient {
  readonly #pending = new Map<string, Pending>();

  /** Send `message` (whose Via carries `branch`) to `peer`; resolves with the final status, or null on timeout or close. */
  request(peer: SipPeer, message: Buffer, branch: string): Promise<number | null> {
    return new Promise((resolve) => {
      const done = (status: number | null) => {
        const p = this.#pending.get(branch);
        if (!p) return;
        this.#pending.delete(branch);
        clearTimeout(p.retransmit);
        clearTimeout(p.timeout);
        resolve(status);
      };
      const pending: Pending = { resolve: done, retransmit: undefined, timeout: setTimeout(() => done(null), TRANSACTION_MS) };
      pending.timeout.unref();
      this.#pending.set(branch, pending);
      peer.send(message);
      if (peer.transport !== 'udp') return;
      let interval = T1;
      const again = () => {
        if (!this.#pending.has(branch)) return;
        peer.send(message);
        interval = Math.min(interval * 2, T2);
        pending.retransmit = setTimeout(again, interval).unref();
      };
      pending.retransmit = setTimeout(again, interval).unref();
    });
  }

  /** A response from a peer: true when it belonged to one of our transactions. */
  response(res: SipResponse): boolean {
    const via = res.headers.list('via')[0] ?? '';
    const branch = parseParams(via).params.get('branch') ?? '';
    const p = this.#pending.get(branch);
    if (!p) return false;
    if (res.status >= 200) p.resolve(res.status);
    return true;
  }

  /** Give up on every open transaction (shutdown). */
  close(): void {
    for (const p of [...this.#pending.values()]) p.resolve(null);
  }
}
