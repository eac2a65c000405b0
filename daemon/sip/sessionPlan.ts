import type { LegRole } from '../ingest/LegSource.js';
import type { RsMetadata, RsParticipant } from './rsMetadata.js';
import { chooseCodec, chooseCrypto, isSecure, type SdesCrypto, type SdpMedia, type SdpOffer, type StreamCodec } from './sdp.js';
import { userOf } from './SipMessage.js';

/** One recorded stream: which m-line, received how, sent by whom. */
export interface PlannedLeg {
  readonly index: number;
  readonly media: SdpMedia;
  readonly codec: StreamCodec;
  /** The key offered for an SRTP stream (null: plain RTP). */
  readonly srtp: SdesCrypto | null;
  readonly participant: RsParticipant | null;
  /** The number the index keeps for this party: the user part of the participant's AOR. */
  readonly number: string;
}

/** How a recording session maps onto a two-leg recording, and why. */
export interface SessionPlan {
  readonly legs: Partial<Record<LegRole, PlannedLeg>>;
  /** How caller and callee were told apart, for the metadata and the log. */
  readonly decided: string;
}

export type PlanResult = { readonly ok: true; readonly plan: SessionPlan } | { readonly ok: false; readonly status: 488; readonly warning: string };

/**
 * Decide which offered stream is the caller's (left channel) and which the
 * callee's (right), from the metadata where it says so — a participant a
 * vendor marks as calling, the original call's From, else the metadata's
 * order of participants — and from the SDP's order only when there is no
 * usable metadata. Never from label numbers: Sonus' label 1 is the callee.
 */
export function planSession(offer: SdpOffer, meta: RsMetadata | null): PlanResult {
  const audio = offer.media.map((media, index) => ({ media, index })).filter((m) => m.media.type === 'audio');
  // An SRTP stream is recordable only with a key of a suite we can decrypt.
  const codecs = new Map(
    audio.flatMap((m) => {
      const c = chooseCodec(m.media);
      return c && (!isSecure(m.media) || chooseCrypto(m.media)) ? [[m.index, c] as const] : [];
    }),
  );
  if (!codecs.size) {
    const offered = [...new Set(audio.flatMap((m) => m.media.formats.map((f) => m.media.rtpmap.get(f)?.encoding ?? `PT ${f}`)))];
    const srtp = audio.some((m) => isSecure(m.media) && chooseCodec(m.media) && !chooseCrypto(m.media));
    if (srtp)
      return {
        ok: false,
        status: 488,
        warning: `SRTP offered without a crypto suite callvault decrypts (AES_CM_128_HMAC_SHA1_80/32, AEAD_AES_128/256_GCM)`,
      };
    return {
      ok: false,
      status: 488,
      warning: `no stream offers a codec callvault records (PCMU, PCMA); offered: ${offered.join(', ') || 'nothing'}`,
    };
  }
  // Both legs of one recording share a codec: the first recordable stream's.
  const law = codecs.values().next().value!.law;
  const recordable = audio.filter((m) => codecs.get(m.index)?.law === law);
  const byStreamId = new Map<string, number>();
  for (const s of meta?.streams ?? []) {
    const m = recordable.find((r) => r.media.label !== null && r.media.label === s.label);
    if (m) byStreamId.set(s.id, m.index);
  }
  const leg = (index: number, participant: RsParticipant | null): PlannedLeg => ({
    index,
    media: offer.media[index]!,
    codec: codecs.get(index)!,
    srtp: isSecure(offer.media[index]!) ? chooseCrypto(offer.media[index]!) : null,
    participant,
    number: participant?.aor ? userOf(participant.aor) : 'unknown',
  });
  const senders = (meta?.participants ?? []).filter((p) => p.sends.some((s) => byStreamId.has(s)));
  if (senders.length) {
    const { caller, why } = callingParty(senders, meta!);
    const callee = senders.find((p) => p !== caller) ?? null;
    const indexOf = (p: RsParticipant) => byStreamId.get(p.sends.find((s) => byStreamId.has(s))!)!;
    const legs: Partial<Record<LegRole, PlannedLeg>> = { caller: leg(indexOf(caller), caller) };
    if (callee) legs.callee = leg(indexOf(callee), callee);
    return { ok: true, plan: { legs, decided: `${why}; streams by participantstreamassoc and a=label` } };
  }
  const [first, second] = recordable;
  const legs: Partial<Record<LegRole, PlannedLeg>> = { caller: leg(first!.index, null) };
  if (second) legs.callee = leg(second.index, null);
  return {
    ok: true,
    plan: {
      legs,
      decided: meta
        ? 'the metadata ties no participant to an offered stream: caller = first stream, callee = second, in SDP order'
        : 'no metadata: caller = first stream, callee = second, in SDP order',
    },
  };
}

function callingParty(senders: readonly RsParticipant[], meta: RsMetadata): { caller: RsParticipant; why: string } {
  const marked = senders.find((p) => p.id === meta.callingParticipant);
  if (marked) return { caller: marked, why: `caller: participant ${marked.id}, marked as the calling party by a vendor extension` };
  const from = meta.callData?.from;
  if (from) {
    const fromUser = userOf(/<([^>]*)>/.exec(from)?.[1] ?? from.split(';')[0]!.trim());
    const hit = senders.find((p) => p.aor && userOf(p.aor) === fromUser);
    if (hit) return { caller: hit, why: `caller: participant ${hit.id}, whose AOR is the original call's From` };
  }
  return { caller: senders[0]!, why: `caller: participant ${senders[0]!.id}, the first in the metadata` };
}
