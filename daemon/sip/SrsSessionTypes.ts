import type { LawPayloadTypes, LegRole } from '../ingest/LegSource.js';
import type { DialogIds } from './dialog.js';
import type { SdesCrypto, SdpMedia, StreamCodec } from './sdp.js';
import type { SessionTimer } from './SessionTimer.js';
import type { SipPeer } from './SipTransport.js';

/** A recording session: the SIP dialog with the SRC and the call it records. */
export interface Session {
  readonly sipCallId: string;
  readonly localTag: string;
  readonly recordingId: string | null;
  readonly peer: SipPeer;
  /** Our Contact in this dialog. */
  readonly contact: string;
  /** Who is who in the dialog, for the requests we send in it (BYE, a refreshing UPDATE). */
  readonly dialog: DialogIds;
  /** Where we receive each recorded leg, and which offered stream it is now. */
  legs: Partial<Record<LegRole, SessionLeg>>;
  /** Streams offered that no leg records (by label, else `#position`): noted once when they were declined. */
  readonly declined: Set<string>;
  readonly ip: string;
  readonly sdpSessionId: string;
  answer: Buffer;
  version: number;
  /** The highest CSeq number of a request the SRC sent in the dialog (RFC 3261 §12.2.2). */
  remoteCseq: number;
  /** An offer in the dialog is being answered: another one meanwhile gets 500 with Retry-After (RFC 3261 §14.2, RFC 3311 §5.2). */
  offerPending: boolean;
  readonly timer: SessionTimer;
}

/** One recorded leg of a session: which offered stream it is, where we receive it, and what the SRC last offered for it. */
export interface SessionLeg {
  /** The stream's m-line position, and its a=label (how it is found in a re-offer; by position without one). */
  readonly index: number;
  readonly label: string | null;
  readonly port: number;
  /** What the stream is received as now: a re-offer may switch the G.711 law. */
  readonly codec: StreamCodec;
  /** The payload types the leg's Producer takes audio in (legPayloadTypes): a re-offer can switch only within them. */
  readonly payloadTypes: LawPayloadTypes;
  /** The payload type the leg reads telephone-event in: answered whenever a re-offer has it there. */
  readonly dtmfPayloadType: number;
  /** Our SDES answer for the stream (the offer's tag and suite, our key), or undefined for plain RTP. */
  readonly srtp: { readonly tag: string; readonly suite: string; readonly keyBase64: string } | undefined;
  /** The SRC's key for the stream, when SRTP. */
  readonly remoteKey: SdesCrypto | null;
  /** The SRC's address and port for the stream in its last offer, and whether it paused it. */
  readonly offered: { readonly address: string | null; readonly port: number; readonly paused: boolean };
}

/** A recorded leg's stream in an offer: by its label, else at its old position. */
export function findStream(media: readonly SdpMedia[], leg: { readonly index: number; readonly label: string | null }): SdpMedia | undefined {
  return leg.label !== null ? media.find((m) => m.label === leg.label) : media[leg.index];
}

/** How an offered stream is named in notes and the declined set: its label, else its position. */
export function streamName(m: SdpMedia, index: number): string {
  return m.label ?? `#${index}`;
}
