import { randomBytes } from 'node:crypto';
import { uriOf, type SipRequest } from './SipMessage.js';
import type { SipTransportName } from './SipTransport.js';

/**
 * A dialog the SRS holds as its UAS (RFC 3261 §12.1.1), as far as the
 * requests it sends in it need: BYE when a recording ends on our side, and
 * UPDATE when we are the session-timer refresher.
 */
export interface DialogIds {
  readonly callId: string;
  /** Our side: the INVITE's To, with our tag. */
  readonly local: string;
  /** The SRC's side: the INVITE's From, with its tag. */
  readonly remote: string;
  /** The Request-URI of our requests: the Contact of the SRC's last INVITE (a target refresh). */
  remoteTarget: string;
  /** The INVITE's Record-Route, in order: our requests' Route set. */
  readonly routeSet: readonly string[];
  /** CSeq of our last request in the dialog. */
  localCseq: number;
}

/** Where our requests say they come from (Via sent-by): the address and port the SRC reached. */
export interface SentBy {
  readonly transport: SipTransportName;
  readonly host: string;
  readonly port: number;
}

export function dialogOf(invite: SipRequest, localTag: string): DialogIds {
  const to = invite.headers.get('to') ?? '';
  return {
    callId: invite.headers.get('call-id') ?? '',
    local: /;\s*tag=/i.test(to) ? to : `${to};tag=${localTag}`,
    remote: invite.headers.get('from') ?? '',
    remoteTarget: uriOf(invite.headers.get('contact') ?? invite.headers.get('from') ?? ''),
    routeSet: invite.headers.list('record-route'),
    localCseq: 0,
  };
}

/** A new request in the dialog, and the branch its response is matched by. */
export function dialogRequest(
  d: DialogIds,
  method: string,
  via: SentBy,
  headers: readonly (readonly [string, string])[] = [],
): { message: Buffer; branch: string } {
  const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
  d.localCseq++;
  const lines = [
    `${method} ${d.remoteTarget} SIP/2.0`,
    `Via: SIP/2.0/${via.transport.toUpperCase()} ${via.host}:${via.port};branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: ${d.local}`,
    `To: ${d.remote}`,
    `Call-ID: ${d.callId}`,
    `CSeq: ${d.localCseq} ${method}`,
    ...d.routeSet.map((r) => `Route: ${r}`),
    ...headers.map(([name, value]) => `${name}: ${value}`),
    'Content-Length: 0',
    '',
    '',
  ];
  return { message: Buffer.from(lines.join('\r\n')), branch };
}
