import { SipError } from '../errors.js';
import type { LegRole, LegStreamChange } from '../ingest/LegSource.js';
import type { G711Law } from '../media/g711.js';
import type { StreamChangeNote } from '../record/metadata.js';
import { chooseCodecWithin, chooseCrypto, g711Formats, isSecure, type SdpMedia, type SdpOffer } from './sdp.js';
import { findStream, streamName, type SessionLeg } from './SrsSessionTypes.js';

/** What a re-offer does to a session's recorded legs. */
export interface StreamUpdate {
  readonly paused: Partial<Record<LegRole, boolean>>;
  /** Legs whose sender must be learned again: resumed, moved, another stream, a new key. */
  readonly relearn: Partial<Record<LegRole, LegStreamChange>>;
  readonly changes: StreamChangeNote[];
  /** The legs as the offer leaves them, to keep once the recording took the change. */
  readonly legs: Partial<Record<LegRole, SessionLeg>>;
  /** Streams declined by this offer that were not declined before. */
  readonly declined: string[];
}

/**
 * A re-INVITE's or UPDATE's offer against the legs being recorded (RFC 3264
 * §8). A stream at port 0 or a=inactive is paused; resumed, or at a new
 * address, its sender is learned again. A stream may switch between PCMU
 * and PCMA (the file is linear PCM either way); one that offers neither, or
 * a law at a payload type the leg does not take, is refused (488) and
 * nothing changes. A new stream takes the channel of a leg whose stream is
 * gone (its label no longer offered) or at port 0 — a transfer that
 * replaces a party's stream; one added while both channels are in use is
 * declined with port 0 and noted. SDES keys may change (a new key: the leg's
 * transport takes it); a stream cannot switch between RTP and SRTP.
 */
export function updateStreams(
  offer: SdpOffer,
  legs: Partial<Record<LegRole, SessionLeg>>,
  declinedBefore: ReadonlySet<string>,
  method: string,
): StreamUpdate | SipError {
  const out: {
    paused: Partial<Record<LegRole, boolean>>;
    relearn: Partial<Record<LegRole, LegStreamChange>>;
    changes: StreamChangeNote[];
    legs: Partial<Record<LegRole, SessionLeg>>;
    declined: string[];
  } = { paused: {}, relearn: {}, changes: [], legs: {}, declined: [] };
  const roles = Object.keys(legs) as LegRole[];
  const active = (m: SdpMedia | undefined): m is SdpMedia => m !== undefined && m.port !== 0 && m.direction !== 'inactive';
  const claimed = new Set<SdpMedia>();
  for (const role of roles) {
    const m = findStream(offer.media, legs[role]!);
    if (m) claimed.add(m);
  }
  // Active audio streams no leg has: candidates for a vacant leg, else declined.
  const fresh = offer.media.map((m, index) => ({ m, index })).filter(({ m }) => m.type === 'audio' && active(m) && !claimed.has(m));
  for (const role of roles) {
    let leg = legs[role]!;
    let m = findStream(offer.media, leg);
    const change: { ssrc?: number; srtp?: LegStreamChange['srtp'] } = {};
    let moved = false;
    if (!active(m)) {
      const taker = fresh.findIndex(
        ({ m: f }) => chooseCodecWithin(f, leg.payloadTypes, leg.codec.law, leg.dtmfPayloadType) !== null && isSecure(f) === (leg.remoteKey !== null),
      );
      if (taker >= 0) {
        const [{ m: f, index }] = fresh.splice(taker, 1) as [{ m: SdpMedia; index: number }];
        leg = { ...leg, index, label: f.label };
        m = f;
        moved = true;
        if (f.ssrc !== null) change.ssrc = f.ssrc;
        out.changes.push({ method, change: 'stream', leg: role, label: streamName(f, index) });
      }
    }
    const now = { address: m?.address ?? null, port: m?.port ?? 0, paused: !active(m) };
    out.paused[role] = now.paused;
    if (active(m)) {
      const name = streamName(m, leg.index);
      const codec = chooseCodecWithin(m, leg.payloadTypes, leg.codec.law, leg.dtmfPayloadType);
      if (!codec) return refuse(m, name, leg.payloadTypes);
      if (isSecure(m) !== (leg.remoteKey !== null))
        return new SipError(488, 'SIP_SRTP_CHANGE', `stream ${name} switches between RTP and SRTP, which a leg's transport cannot`);
      if (codec.law !== leg.codec.law) out.changes.push({ method, change: 'codec', leg: role, label: name, codec: codec.law });
      let remoteKey = leg.remoteKey;
      if (leg.remoteKey) {
        const key = chooseCrypto(m);
        if (!key) return new SipError(488, 'SIP_SRTP_SUITE', `stream ${name} offers no SRTP suite callvault decrypts`);
        if (key.keyBase64 !== leg.remoteKey.keyBase64 || key.suite !== leg.remoteKey.suite) {
          change.srtp = { cryptoSuite: key.suite as NonNullable<LegStreamChange['srtp']>['cryptoSuite'], keyBase64: key.keyBase64 };
          remoteKey = key;
          if (!moved) out.changes.push({ method, change: 'key', leg: role, label: name });
        }
      }
      leg = { ...leg, codec, remoteKey, ...(leg.srtp && remoteKey ? { srtp: { ...leg.srtp, tag: remoteKey.tag, suite: remoteKey.suite } } : {}) };
      if (moved || change.srtp || leg.offered.paused || now.address !== leg.offered.address || now.port !== leg.offered.port)
        out.relearn[role] = change;
    }
    out.legs[role] = { ...leg, offered: now };
  }
  for (const { m, index } of fresh) {
    const name = streamName(m, index);
    if (declinedBefore.has(name)) continue;
    out.declined.push(name);
    out.changes.push({ method, change: 'declined', leg: null, label: name });
  }
  return out;
}

function refuse(m: SdpMedia, name: string, payloadTypes: Readonly<Partial<Record<G711Law, number>>>): SipError {
  const elsewhere = g711Formats(m)[0];
  if (elsewhere) {
    const taken = payloadTypes[elsewhere.law];
    return new SipError(
      488,
      'SIP_CODEC_PAYLOAD',
      `stream ${name} offers ${elsewhere.law} at payload type ${elsewhere.payloadType}; its leg takes ${elsewhere.law} ${taken === undefined ? 'at no payload type (the number is in use)' : `at ${taken} only`}`,
    );
  }
  return new SipError(488, 'SIP_CODEC_CHANGE', `stream ${name} offers no codec callvault records (PCMU, PCMA)`);
}
