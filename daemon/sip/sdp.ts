import type { G711Law } from '../media/g711.js';

/*
 * The SDP a SIPREC offer carries (RFC 4566): one m-line per recorded stream,
 * each with its a=label (RFC 4574) and a direction. Parsed leniently — CRLF or
 * LF, c= at session or media level or missing (OpenSIPS), extra direction
 * attributes (SEMS' a=direction:both) ignored.
 */

export type Direction = 'sendonly' | 'recvonly' | 'sendrecv' | 'inactive';

export interface SdpMedia {
  readonly type: string;
  readonly port: number;
  readonly proto: string;
  readonly formats: readonly number[];
  /** Payload type → encoding name (upper case) and clock rate, from a=rtpmap. */
  readonly rtpmap: ReadonlyMap<number, { readonly encoding: string; readonly clock: number }>;
  readonly label: string | null;
  readonly direction: Direction;
  /** The media-level c= address, else the session's, else null. */
  readonly address: string | null;
  /** SDES keys offered (RFC 4568 a=crypto), in preference order. */
  readonly crypto: readonly SdesCrypto[];
  /** The first SSRC the stream announces (RFC 5576 a=ssrc), so its packets need not be discovered. */
  readonly ssrc: number | null;
}

/** One a=crypto line: its tag, suite and the sender's inline key (base64 master key ‖ salt). */
export interface SdesCrypto {
  readonly tag: string;
  readonly suite: string;
  readonly keyBase64: string;
}

/** The SDES suites mediasoup's PlainTransport can decrypt. */
const SRTP_SUITES = new Set(['AEAD_AES_256_GCM', 'AEAD_AES_128_GCM', 'AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32']);

/** Whether the stream is offered as SRTP (RTP/SAVP, RTP/SAVPF). */
export function isSecure(m: SdpMedia): boolean {
  return /\/SAVPF?$/.test(m.proto);
}

/** The first offered key of a suite we can decrypt, or null. */
export function chooseCrypto(m: SdpMedia): SdesCrypto | null {
  return m.crypto.find((c) => SRTP_SUITES.has(c.suite)) ?? null;
}

export interface SdpOffer {
  readonly media: readonly SdpMedia[];
}

const DIRECTIONS = new Set<string>(['sendonly', 'recvonly', 'sendrecv', 'inactive']);

/** Static payload types RFC 3551 defines for the codecs we record. */
const STATIC: Readonly<Record<number, string>> = { 0: 'PCMU', 8: 'PCMA' };

export function parseSdp(text: string): SdpOffer {
  let sessionAddress: string | null = null;
  let sessionDirection: Direction = 'sendrecv';
  const media: {
    type: string;
    port: number;
    proto: string;
    formats: number[];
    rtpmap: Map<number, { encoding: string; clock: number }>;
    label: string | null;
    direction: Direction | null;
    address: string | null;
    crypto: SdesCrypto[];
    ssrc: number | null;
  }[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const m = /^([a-z])=(.*)$/.exec(line);
    if (!m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    const current = media.at(-1);
    if (key === 'm') {
      const f = /^(\S+) (\d+)(?:\/\d+)? (\S+)(.*)$/.exec(value);
      if (!f) continue;
      const formats = f[4]!
        .trim()
        .split(/\s+/)
        .filter((x) => /^\d+$/.test(x))
        .map(Number);
      media.push({
        type: f[1]!,
        port: Number(f[2]),
        proto: f[3]!,
        formats,
        rtpmap: new Map(),
        label: null,
        direction: null,
        address: null,
        crypto: [],
        ssrc: null,
      });
    } else if (key === 'c') {
      const addr = /^IN IP[46] (\S+?)(?:\/\d+)*$/.exec(value)?.[1] ?? null;
      if (current) current.address = addr;
      else sessionAddress = addr;
    } else if (key === 'a') {
      const [name = '', ...rest] = value.split(':');
      const arg = rest.join(':');
      if (DIRECTIONS.has(name)) {
        if (current) current.direction = name as Direction;
        else sessionDirection = name as Direction;
      } else if (current && name === 'label') current.label = arg.trim();
      else if (current && name === 'ssrc') {
        const id = /^(\d{1,10})\b/.exec(arg)?.[1];
        if (id && Number(id) <= 0xffffffff) current.ssrc ??= Number(id);
      } else if (current && name === 'crypto') {
        const c = /^(\d+) (\S+) inline:([A-Za-z0-9+/=]+)/.exec(arg);
        if (c) current.crypto.push({ tag: c[1]!, suite: c[2]!, keyBase64: c[3]! });
      } else if (current && name === 'rtpmap') {
        const r = /^(\d+) ([^/\s]+)\/(\d+)/.exec(arg);
        if (r) current.rtpmap.set(Number(r[1]), { encoding: r[2]!.toUpperCase(), clock: Number(r[3]) });
      }
    }
  }
  return { media: media.map((x) => ({ ...x, direction: x.direction ?? sessionDirection, address: x.address ?? sessionAddress })) };
}

/** What we receive one stream as: the codec, its payload type, and telephone-event's if offered. */
export interface StreamCodec {
  readonly law: G711Law;
  readonly payloadType: number;
  readonly dtmfPayloadType: number | null;
}

/** A payload type's encoding in a stream: its a=rtpmap, else RFC 3551's static assignment. */
function encodingOf(m: SdpMedia, pt: number): string | undefined {
  return m.rtpmap.get(pt)?.encoding ?? STATIC[pt];
}

/** The stream's G.711 formats at 8 kHz, in its order of preference. */
export function g711Formats(m: SdpMedia): { law: G711Law; payloadType: number }[] {
  return m.formats.flatMap((f) => {
    const e = encodingOf(m, f);
    return (e === 'PCMU' || e === 'PCMA') && (m.rtpmap.get(f)?.clock ?? 8000) === 8000 ? [{ law: e as G711Law, payloadType: f }] : [];
  });
}

function telephoneEvent(m: SdpMedia): number | null {
  return m.formats.find((f) => encodingOf(m, f) === 'TELEPHONE-EVENT') ?? null;
}

/**
 * The codec to record a stream with, chosen from the offer in its order:
 * the first G.711 format (the only codecs recorded today; a new one is added
 * here). Null when the stream offers nothing we can record.
 */
export function chooseCodec(m: SdpMedia): StreamCodec | null {
  const first = g711Formats(m)[0];
  return first ? { ...first, dtmfPayloadType: telephoneEvent(m) } : null;
}

/**
 * The codec a re-offered stream keeps being received as: a G.711 law at the
 * payload type its leg takes that law in, `prefer` (the law it is in now)
 * if still offered so, else the offer's first; telephone-event only at the
 * leg's payload type. Null when none fits.
 */
export function chooseCodecWithin(
  m: SdpMedia,
  payloadTypes: Readonly<Partial<Record<G711Law, number>>>,
  prefer: G711Law,
  dtmfPayloadType: number | null,
): StreamCodec | null {
  const fits = g711Formats(m).filter((f) => payloadTypes[f.law] === f.payloadType);
  const pick = fits.find((f) => f.law === prefer) ?? fits[0];
  if (!pick) return null;
  return { ...pick, dtmfPayloadType: dtmfPayloadType !== null && telephoneEvent(m) === dtmfPayloadType ? dtmfPayloadType : null };
}

/** One m-line of our answer: where we receive the stream, or port 0 for one we decline. */
export interface AnswerStream {
  readonly offer: SdpMedia;
  /** null: declined (port 0). */
  readonly receive: {
    readonly port: number;
    readonly codec: StreamCodec;
    readonly srtp?: { readonly tag: string; readonly suite: string; readonly keyBase64: string } | undefined;
  } | null;
}

/**
 * The SRS's answer (RFC 7866 §8.1.1): a plain application/sdp body, each
 * offered stream in its place with its label, recvonly for a sendonly
 * stream (inactive for an inactive one), our address and port.
 */
export function buildAnswer(ip: string, sessionId: string, version: number, streams: readonly AnswerStream[]): string {
  const family = ip.includes(':') ? 'IP6' : 'IP4';
  const lines = ['v=0', `o=callvault ${sessionId} ${version} IN ${family} ${ip}`, 's=callvault', `c=IN ${family} ${ip}`, 't=0 0'];
  for (const s of streams) {
    const proto = s.offer.proto;
    if (!s.receive) {
      lines.push(`m=${s.offer.type} 0 ${proto} ${s.offer.formats[0] ?? 0}`);
      if (s.offer.label !== null) lines.push(`a=label:${s.offer.label}`);
      continue;
    }
    const { codec, port } = s.receive;
    const formats = [codec.payloadType, ...(codec.dtmfPayloadType === null ? [] : [codec.dtmfPayloadType])];
    // A stream offered with port 0 is answered with port 0 (RFC 3264 §6).
    lines.push(`m=audio ${s.offer.port === 0 ? 0 : port} ${proto} ${formats.join(' ')}`);
    lines.push(`a=rtpmap:${codec.payloadType} ${codec.law}/8000`);
    if (codec.dtmfPayloadType !== null) lines.push(`a=rtpmap:${codec.dtmfPayloadType} telephone-event/8000`);
    // SDES (RFC 4568 §5.1.2): the offer's tag and suite, our own key.
    if (s.receive.srtp) lines.push(`a=crypto:${s.receive.srtp.tag} ${s.receive.srtp.suite} inline:${s.receive.srtp.keyBase64}`);
    if (s.offer.label !== null) lines.push(`a=label:${s.offer.label}`);
    lines.push(s.offer.direction === 'inactive' || s.offer.port === 0 ? 'a=inactive' : 'a=recvonly');
  }
  return `${lines.join('\r\n')}\r\n`;
}
