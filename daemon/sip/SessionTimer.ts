import { SipError } from '../errors.js';
import { parseParams, type SipRequest } from './SipMessage.js';

/** RFC 4028 §4: the smallest session interval accepted; shorter ones get 422 with this as Min-SE. */
export const MIN_SE = 90;

/** A session interval as negotiated, and who refreshes it. */
export interface TimerTerms {
  readonly seconds: number;
  readonly refresher: 'uac' | 'uas';
  /** The SRC said it supports timers: our 2xx then carries Require: timer. */
  readonly uacSupports: boolean;
}

/**
 * RFC 4028 from a dialog-creating or refreshing request: no Session-Expires,
 * no timer; under Min-SE, a 422 error. The SRC refreshes (uac) unless it
 * asked us to, or it does not support timers (then only we can, §9).
 */
export function negotiateTimer(req: SipRequest): TimerTerms | null | SipError {
  const header = req.headers.get('session-expires');
  if (!header) return null;
  const { value, params } = parseParams(header);
  const seconds = Number(value);
  if (!Number.isInteger(seconds) || seconds <= 0)
    return new SipError(400, 'SIP_SESSION_EXPIRES', `Session-Expires ${JSON.stringify(value)} is not a number of seconds`);
  if (seconds < MIN_SE) return new SipError(422, 'SIP_SESSION_INTERVAL', `a session interval of ${seconds} s is under Min-SE ${MIN_SE}`);
  const uacSupports = [...req.headers.list('supported'), ...req.headers.list('require')].some((t) => t.toLowerCase() === 'timer');
  const asked = params.get('refresher');
  const refresher = !uacSupports ? 'uas' : asked === 'uas' ? 'uas' : 'uac';
  return { seconds, refresher, uacSupports };
}

/** The 2xx's headers that confirm the terms (RFC 4028 §9). */
export function timerHeaders(terms: TimerTerms | null): [string, string][] {
  if (!terms) return [];
  return [
    ['Session-Expires', `${terms.seconds};refresher=${terms.refresher}`],
    ...(terms.uacSupports ? ([['Require', 'timer']] as [string, string][]) : []),
  ];
}

export interface SessionTimerActions {
  /** We are the refresher and it is time: send a refresh, resolve whether the SRC accepted it. */
  refresh(terms: TimerTerms): Promise<boolean>;
  /** The session expired (no refresh from the SRC in time, or ours failed). */
  expire(): void;
}

/**
 * One session's timer: with the SRC as refresher, the session ends a little
 * before it expires unrefreshed (the lesser of 32 s and a third of the
 * interval, RFC 4028 §10); with us as refresher, we refresh at half the
 * interval and end the session if a refresh fails.
 */
export class SessionTimer {
  #timeout: NodeJS.Timeout | undefined;
  #terms: TimerTerms | null = null;

  constructor(private readonly actions: SessionTimerActions) {}

  get terms(): TimerTerms | null {
    return this.#terms;
  }

  /** A successful (re)negotiation: the interval starts again. */
  set(terms: TimerTerms | null): void {
    this.clear();
    this.#terms = terms;
    if (!terms) return;
    const ms = terms.refresher === 'uac' ? (terms.seconds - Math.min(32, terms.seconds / 3)) * 1000 : (terms.seconds / 2) * 1000;
    this.#timeout = setTimeout(() => {
      if (this.#terms !== terms) return;
      if (terms.refresher === 'uac') return this.actions.expire();
      void this.actions.refresh(terms).then((ok) => {
        if (this.#terms !== terms) return;
        if (ok) this.set(terms);
        else this.actions.expire();
      });
    }, ms);
    this.#timeout.unref();
  }

  clear(): void {
    clearTimeout(this.#timeout);
    this.#timeout = undefined;
    this.#terms = null;
  }
}
