import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ApiError, SipError } from '../errors.js';
import type { LegRole } from '../ingest/LegSource.js';
import { sourceFilter } from '../ingest/sourceFilter.js';
import type { Logger } from '../log.js';
import type { SiprecMetadata } from '../record/metadata.js';
import type { Recorder, StartCallRequest } from '../record/Recorder.js';
import type { DigestAuth } from './DigestAuth.js';
import { bodyParts } from './multipart.js';
import { metadataOf, storedParticipants, type RsMetadata } from './rsMetadata.js';
import { buildAnswer, offersLaw, parseSdp, type AnswerStream, type SdesCrypto, type SdpMedia, type SdpOffer, type StreamCodec } from './sdp.js';
import type { SrtpKey } from '../ingest/LegSource.js';
import { planSession, type SessionPlan } from './sessionPlan.js';
import { buildResponse, parseParams, uriOf, userOf, type SipRequest } from './SipMessage.js';
import type { SipPeer, SipTransport } from './SipTransport.js';

/** RFC 3261 timers: T1 (RTT estimate), T2 (cap of retransmission intervals); a transaction lives 64·T1. */
const T1 = 500;
const T2 = 4000;
const TRANSACTION_MS = 64 * T1;

const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE';
/** RFC 4028 §4: the smallest session interval accepted; shorter ones get 422 with this as Min-SE. */
const MIN_SE = 90;
/** Option tags we accept in Require (100rel: answered without reliable provisionals, which RFC 3262 allows). */
const UNDERSTOOD = new Set(['siprec', '100rel', 'timer', 'replaces']);

export interface SrsEvents {
  /** A request answered: its method and our final status. */
  request: [method: string, status: number];
  /** A request refused before it reached a recording: why (source, malformed, no-codec, limit…). */
  rejected: [reason: string];
}

/** A recording session: the SIP dialog with the SRC and the call it records. */
interface Session {
  readonly sipCallId: string;
  readonly localTag: string;
  readonly recordingId: string | null;
  readonly peer: SipPeer;
  /** Our Contact in this dialog. */
  readonly contact: string;
  /** Where we receive each recorded leg, and which offered stream (by label, else position) it is. */
  readonly legs: Partial<Record<LegRole, SessionLeg>>;
  readonly ip: string;
  readonly sdpSessionId: string;
  answer: Buffer;
  version: number;
}

/** One recorded leg of a session: which offered stream it is, where we receive it, and what the SRC last offered for it. */
interface SessionLeg {
  readonly index: number;
  readonly label: string | null;
  readonly port: number;
  readonly codec: StreamCodec;
  readonly srtp: AnswerSrtp | undefined;
  /** The SRC's address and port for the stream in its last offer, and whether it paused it. */
  offered: { address: string | null; port: number; paused: boolean };
}

interface InviteTransaction {
  readonly request: SipRequest;
  response: Buffer;
  final: boolean;
  cancelled: boolean;
  retransmit: NodeJS.Timeout | undefined;
}

/**
 * The SIPREC recording server (RFC 7866) on a SIP transport: admits SRCs
 * from the allow-list, turns each recording INVITE into a two-leg call of
 * the Recorder and answers with where to send each stream; BYE and CANCEL
 * end it. Only server transactions: callvault never sends requests.
 */
export class SrsServer extends EventEmitter<SrsEvents> {
  readonly #sessions = new Map<string, Session>();
  readonly #invites = new Map<string, InviteTransaction>();
  /** Final responses being retransmitted, by Call-ID and CSeq number: a 2xx's ACK has a branch of its own. */
  readonly #awaitingAck = new Map<string, InviteTransaction>();
  /** Final responses to non-INVITE requests, for their retransmissions. */
  readonly #answered = new Map<string, Buffer>();
  /** Non-INVITE requests being worked on: a retransmission meanwhile is dropped, the answer comes once. */
  readonly #working = new Set<string>();
  #allowed: (ip: string) => boolean;
  /** Our port per transport, for Contact. */
  readonly #ports: Readonly<Record<string, number | null>>;

  constructor(
    transport: SipTransport,
    private readonly recorder: Recorder,
    allowedSources: readonly string[],
    private readonly log: Logger,
    /** Digest authentication of recording INVITEs, when configured. */
    private readonly auth: DigestAuth | null = null,
  ) {
    super();
    this.#allowed = sourceFilter(allowedSources, undefined);
    this.#ports = { udp: transport.port, tcp: transport.port, tls: transport.tlsPort };
    transport.on('message', (msg, peer) => {
      if (msg.kind !== 'request') return; // we send no requests, so expect no responses
      void this.#handle(msg, peer).catch((err: unknown) => this.log.error({ err, method: msg.method, from: `${peer.address}:${peer.port}` }, 'SIP request failed'));
    });
  }

  /** A reload: new SRC allow-list, sessions kept. */
  setAllowedSources(allowedSources: readonly string[]): void {
    this.#allowed = sourceFilter(allowedSources, undefined);
  }

  /** Open recording sessions, by SRC address. */
  sessionsBySource(): Map<string, number> {
    const out = new Map<string, number>();
    for (const s of this.#sessions.values()) out.set(s.peer.address, (out.get(s.peer.address) ?? 0) + 1);
    return out;
  }

  async #handle(req: SipRequest, peer: SipPeer): Promise<void> {
    const branch = parseParams(req.headers.get('via') ?? '').params.get('branch') ?? `${req.headers.get('call-id')}/${req.headers.get('cseq')}`;
    if (req.method === 'ACK') return this.#ack(req, branch);
    const key = `${branch}|${req.method}`;
    const invite = this.#invites.get(key);
    if (invite) return peer.send(invite.response); // a retransmission: the last response again
    const answered = this.#answered.get(key);
    if (answered) return peer.send(answered);
    if (this.#working.has(key)) return;
    this.#working.add(key);
    try {
      await this.#request(req, peer, key, branch);
    } finally {
      this.#working.delete(key);
    }
  }

  async #request(req: SipRequest, peer: SipPeer, key: string, branch: string): Promise<void> {
    const reply = (status: number, reason: string, extra: Parameters<typeof buildResponse>[3] = {}) => {
      const res = buildResponse(req, status, reason, extra);
      peer.send(res);
      this.emit('request', req.method, status);
      if (req.method !== 'INVITE') this.#remember(this.#answered, key, res);
      return res;
    };
    for (const h of ['via', 'from', 'to', 'call-id', 'cseq']) {
      if (!req.headers.get(h)) {
        this.emit('rejected', 'malformed');
        return void reply(400, `Missing ${h}`);
      }
    }
    if (!this.#allowed(peer.address)) {
      this.emit('rejected', 'source');
      this.log.warn({ method: req.method, from: `${peer.address}:${peer.port}` }, 'SIP request from a source not in sip.allowedSources refused');
      return void reply(403, 'Forbidden');
    }
    const callId = req.headers.get('call-id')!;
    switch (req.method) {
      case 'OPTIONS':
        return void reply(200, 'OK', { headers: [['Allow', ALLOW], ['Accept', 'application/sdp, multipart/mixed, application/rs-metadata+xml, application/rs-metadata'], ['Supported', 'siprec, timer']] });
      case 'INVITE':
        return hasTag(req.headers.get('to')!) ? this.#reinvite(req, peer, key) : this.#invite(req, peer, key, branch);
      case 'UPDATE': {
        const s = this.#sessions.get(callId);
        if (!s) return void reply(481, 'Call/Transaction Does Not Exist');
        const body = req.body.length ? await this.#dialogChange(req, s) : null;
        if (body instanceof SipError) return void reply(...refusal(body), { toTag: s.localTag, headers: [['Warning', warning(body.message)]] });
        return void reply(200, 'OK', { toTag: s.localTag, ...(body ? { body, contentType: 'application/sdp' } : {}) });
      }
      case 'BYE': {
        const s = this.#sessions.get(callId);
        if (!s) return void reply(481, 'Call/Transaction Does Not Exist');
        reply(200, 'OK', { toTag: s.localTag });
        return this.#end(s, 'bye');
      }
      case 'CANCEL':
        return this.#cancel(peer, branch, reply);
      default:
        return void reply(405, 'Method Not Allowed', { headers: [['Allow', ALLOW]] });
    }
  }

  /** A new recording session. */
  async #invite(req: SipRequest, peer: SipPeer, key: string, branch: string): Promise<void> {
    const txn: InviteTransaction = { request: req, response: buildResponse(req, 100, 'Trying'), final: false, cancelled: false, retransmit: undefined };
    this.#invites.set(key, txn);
    peer.send(txn.response);
    const localTag = randomBytes(6).toString('hex');
    const final = (status: number, reason: string, extra: Parameters<typeof buildResponse>[3] = {}) => {
      txn.response = buildResponse(req, status, reason, { toTag: localTag, ...extra });
      txn.final = true;
      peer.send(txn.response);
      this.emit('request', 'INVITE', status);
      if (peer.transport === 'udp') this.#retransmit(txn, peer);
      setTimeout(() => this.#invites.delete(key), TRANSACTION_MS).unref();
    };
    if (this.auth) {
      const verdict = this.auth.verify(req);
      if (verdict !== 'ok') {
        this.emit('rejected', 'auth');
        if (verdict === 'wrong') this.log.warn({ from: `${peer.address}:${peer.port}` }, 'SIPREC INVITE with wrong digest credentials refused');
        return verdict === 'wrong' ? final(403, 'Forbidden') : final(401, 'Unauthorized', { headers: this.auth.challenge(verdict === 'stale').map((c) => ['WWW-Authenticate', c] as const) });
      }
    }
    const sessionExpires = req.headers.get('session-expires');
    if (sessionExpires && Number(parseParams(sessionExpires).value) < MIN_SE) {
      this.emit('rejected', 'session-interval');
      return final(422, 'Session Interval Too Small', { headers: [['Min-SE', String(MIN_SE)]] });
    }
    const unsupported = req.headers.list('require').filter((t) => !UNDERSTOOD.has(t.toLowerCase()));
    if (unsupported.length) {
      this.emit('rejected', 'extension');
      return final(420, 'Bad Extension', { headers: [['Unsupported', unsupported.join(', ')]] });
    }
    let plan: SessionPlan;
    let meta: RsMetadata | null;
    let offerText: string;
    try {
      const parts = bodyParts(req.headers.get('content-type') ?? 'application/sdp', req.body);
      const sdp = parts.find((p) => p.contentType === 'application/sdp');
      if (!sdp) {
        this.emit('rejected', 'no-sdp');
        return final(488, 'Not Acceptable Here', { headers: [['Warning', warning('no SDP offer in the INVITE')]] });
      }
      meta = metadataOf(parts);
      offerText = sdp.body.toString('utf8');
      const result = planSession(parseSdp(offerText), meta);
      if (!result.ok) {
        this.emit('rejected', 'no-codec');
        return final(488, 'Not Acceptable Here', { headers: [['Warning', warning(result.warning)]] });
      }
      plan = result.plan;
    } catch (err) {
      if (!(err instanceof SipError)) throw err;
      this.emit('rejected', 'malformed');
      return final(err.status === 413 ? 413 : 400, err.status === 413 ? 'Request Entity Too Large' : 'Bad Request', { headers: [['Warning', warning(err.message)]] });
    }
    const sipCallId = req.headers.get('call-id')!;
    const startReq = this.#startRequest(req, peer, plan, meta, sipCallId);
    let answer: Awaited<ReturnType<Recorder['startCall']>>;
    try {
      answer = await this.recorder.startCall(startReq, { address: peer.address });
    } catch (err) {
      if (err instanceof ApiError && err.status === 503) {
        this.emit('rejected', err.code.toLowerCase());
        return final(503, 'Service Unavailable', { headers: [['Retry-After', String(err.retryAfterSeconds ?? 5)], ['Warning', warning(err.message)]] });
      }
      if (err instanceof ApiError) {
        this.emit('rejected', err.code.toLowerCase());
        return final(err.status === 409 ? 482 : 400, err.status === 409 ? 'Loop Detected' : 'Bad Request', { headers: [['Warning', warning(err.message)]] });
      }
      throw err;
    }
    const ip = answer.recorded ? answer.legs.caller.ip : '0.0.0.0';
    const legs: Session['legs'] = {};
    if (answer.recorded) {
      for (const role of Object.keys(plan.legs) as LegRole[]) {
        const l = plan.legs[role]!;
        const ours = answer.legs[role].srtp;
        legs[role] = {
          index: l.index,
          label: l.media.label,
          port: answer.legs[role].port,
          codec: l.codec,
          srtp: l.srtp && ours ? { tag: l.srtp.tag, suite: l.srtp.suite, keyBase64: ours.keyBase64 } : undefined,
          offered: { address: l.media.address, port: l.media.port, paused: l.media.port === 0 || l.media.direction === 'inactive' },
        };
      }
    }
    const sdpSessionId = String(Date.now());
    const body = answerFor(parseSdp(offerText), legs, ip, sdpSessionId, 1);
    if (txn.cancelled) {
      if (answer.recorded) await this.recorder.endCall(startReq.callId, 'cancel').catch(() => undefined);
      return; // the CANCEL answered the INVITE with 487
    }
    const contact = `<sip:callvault@${hostOf(ip)}:${this.#ports[peer.transport] ?? ''};transport=${peer.transport}>`;
    const session: Session = { sipCallId, localTag, recordingId: answer.recorded ? answer.recordingId : null, peer, contact, legs, ip, sdpSessionId, answer: body, version: 1 };
    this.#sessions.set(sipCallId, session);
    const timer = req.headers.get('session-expires');
    final(200, 'OK', {
      headers: [
        ['Contact', contact],
        ['Allow', ALLOW],
        ['Supported', 'timer'],
        ...(timer ? ([['Session-Expires', `${parseParams(timer).value};refresher=uac`], ['Require', 'timer']] as const) : []),
      ],
      body,
      contentType: 'application/sdp',
    });
    const answered = parseSdp(body.toString('utf8')).media.map((m) => ({ label: m.label, port: m.port }));
    this.log.info({ sipCallId, recordingId: session.recordingId, src: `${peer.transport}:${peer.address}:${peer.port}`, streams: answered, decided: plan.decided, branch }, answer.recorded ? 'SIPREC session answered' : 'SIPREC session answered without recording (no profile records it)');
  }

  #startRequest(req: SipRequest, peer: SipPeer, plan: SessionPlan, meta: RsMetadata | null, sipCallId: string): StartCallRequest {
    const siprec: SiprecMetadata = {
      sipCallId,
      src: { transport: peer.transport, address: peer.address, port: peer.port, uri: uriOf(req.headers.get('from')!) },
      sessionId: meta?.sessionId ?? null,
      originalCall: meta?.callData ?? null,
      participants: storedParticipants(meta),
      vendorCallIds: vendorCallIds(req),
      decided: plan.decided,
      labels: { caller: plan.legs.caller?.media.label ?? null, callee: plan.legs.callee?.media.label ?? null },
    };
    const law = plan.legs.caller!.codec;
    return {
      callId: sipCallId,
      direction: 'inbound',
      codec: law.law,
      payloadType: law.payloadType,
      dtmfPayloadType: law.dtmfPayloadType ?? undefined,
      caller: { number: plan.legs.caller!.number, srtp: srtpKey(plan.legs.caller!.srtp), ssrc: plan.legs.caller!.media.ssrc ?? undefined },
      callee: { number: plan.legs.callee?.number ?? 'unknown', srtp: srtpKey(plan.legs.callee?.srtp ?? null), ssrc: plan.legs.callee?.media.ssrc ?? undefined },
      siprec,
    };
  }

  /** The final response is sent again at T1, 2·T1, … (at most T2 apart) until its ACK (RFC 3261 §17.2.1, §13.3.1.4). */
  #retransmit(txn: InviteTransaction, peer: SipPeer): void {
    let interval = T1;
    const started = Date.now();
    const ackKey = ackKeyOf(txn.request);
    this.#awaitingAck.set(ackKey, txn);
    const again = () => {
      if (Date.now() - started >= TRANSACTION_MS) {
        txn.retransmit = undefined;
        if (this.#awaitingAck.get(ackKey) === txn) this.#awaitingAck.delete(ackKey);
        return;
      }
      peer.send(txn.response);
      interval = Math.min(interval * 2, T2);
      txn.retransmit = setTimeout(again, interval);
      txn.retransmit.unref();
    };
    txn.retransmit = setTimeout(again, interval);
    txn.retransmit.unref();
  }

  #ack(req: SipRequest, branch: string): void {
    // A non-2xx final is ACKed in its own transaction (its branch); a 2xx in the dialog, with a new branch.
    const key = ackKeyOf(req);
    const txn = this.#invites.get(`${branch}|INVITE`) ?? this.#awaitingAck.get(key);
    if (!txn) return;
    if (this.#awaitingAck.get(key) === txn) this.#awaitingAck.delete(key);
    clearTimeout(txn.retransmit);
    txn.retransmit = undefined;
  }

  async #reinvite(req: SipRequest, peer: SipPeer, key: string): Promise<void> {
    const s = this.#sessions.get(req.headers.get('call-id')!);
    const body = s ? await this.#dialogChange(req, s) : null;
    const response = !s
      ? buildResponse(req, 481, 'Call/Transaction Does Not Exist')
      : body instanceof SipError
        ? buildResponse(req, ...refusal(body), { toTag: s.localTag, headers: [['Warning', warning(body.message)]] })
        : buildResponse(req, 200, 'OK', { toTag: s.localTag, headers: [['Contact', s.contact], ['Allow', ALLOW]], body: body ?? this.#answerAgain(s), contentType: 'application/sdp' });
    const txn: InviteTransaction = { request: req, response, final: true, cancelled: false, retransmit: undefined };
    this.#invites.set(key, txn);
    setTimeout(() => this.#invites.delete(key), TRANSACTION_MS).unref();
    peer.send(txn.response);
    this.emit('request', 'INVITE', !s ? 481 : body instanceof SipError ? refusal(body)[0] : 200);
    if (s && peer.transport === 'udp') this.#retransmit(txn, peer);
  }

  /** The session's answer again, its o= version one higher (RFC 3264 §8). */
  #answerAgain(s: Session): Buffer {
    s.version++;
    s.answer = Buffer.from(s.answer.toString('utf8').replace(/^(o=\S+ \S+ )\d+/m, `$1${s.version}`));
    return s.answer;
  }

  /**
   * A re-INVITE or UPDATE in the dialog: a new offer (streams paused by
   * a=inactive or port 0, or resumed) and/or new metadata (participants
   * named later, a transfer). The recording goes on, the change is noted
   * with its time. Returns our answer, or null when the request carried no
   * SDP offer.
   */
  async #dialogChange(req: SipRequest, s: Session): Promise<Buffer | null | SipError> {
    let offerText: string | null = null;
    let meta: RsMetadata | null = null;
    try {
      const parts = bodyParts(req.headers.get('content-type') ?? 'application/sdp', req.body);
      offerText = parts.find((p) => p.contentType === 'application/sdp')?.body.toString('utf8') ?? null;
      meta = metadataOf(parts);
    } catch (err) {
      if (!(err instanceof SipError)) throw err;
      this.emit('rejected', 'malformed');
      return err;
    }
    const offer = offerText === null ? null : parseSdp(offerText);
    const roles = Object.keys(s.legs) as LegRole[];
    // A recording keeps the codec it started with: an offer that drops it for a stream is refused, the session stays as it was.
    for (const role of offer ? roles : []) {
      const leg = s.legs[role]!;
      const m = findStream(offer!.media, leg);
      if (m && m.port !== 0 && m.direction !== 'inactive' && !offersLaw(m, leg.codec.law)) {
        this.emit('rejected', 'codec-change');
        return new SipError(488, 'SIP_CODEC_CHANGE', `stream ${leg.label ?? leg.index} no longer offers ${leg.codec.law}, which its recording is in (a recording keeps the codec it started with)`);
      }
    }
    const paused: Partial<Record<LegRole, boolean>> = {};
    // A stream resumed, or moved to another address or port, may come from a new source: the leg learns it again.
    const relearn: LegRole[] = [];
    if (offer) {
      for (const role of roles) {
        const leg = s.legs[role]!;
        const m = findStream(offer.media, leg);
        const now = { address: m?.address ?? null, port: m?.port ?? 0, paused: !m || m.port === 0 || m.direction === 'inactive' };
        paused[role] = now.paused;
        if (!now.paused && (leg.offered.paused || now.address !== leg.offered.address || now.port !== leg.offered.port)) relearn.push(role);
        leg.offered = now;
      }
    }
    const siprec = meta ? { method: req.method, participants: storedParticipants(meta), numbers: numbersByLabel(meta, s.legs) } : undefined;
    if (s.recordingId) await this.recorder.updateCall(s.sipCallId, { paused, relearn, ...(siprec ? { siprec } : {}) });
    if (!offer) return null;
    s.version++;
    s.answer = answerFor(offer, s.legs, s.ip, s.sdpSessionId, s.version);
    this.log.info({ sipCallId: s.sipCallId, method: req.method, paused, relearn, metadata: meta !== null }, 'SIPREC session changed');
    return s.answer;
  }

  #cancel(peer: SipPeer, branch: string, reply: (status: number, reason: string) => Buffer): void {
    const txn = this.#invites.get(`${branch}|INVITE`);
    if (!txn) return void reply(481, 'Call/Transaction Does Not Exist');
    reply(200, 'OK');
    if (txn.final) return;
    // The INVITE is answered 487 (RFC 3261 §9.2); its recording, if one is being set up, ends when set-up returns.
    txn.cancelled = true;
    txn.final = true;
    txn.response = buildResponse(txn.request, 487, 'Request Terminated', { toTag: randomBytes(6).toString('hex') });
    peer.send(txn.response);
    this.emit('request', 'INVITE', 487);
    if (peer.transport === 'udp') this.#retransmit(txn, peer);
  }

  async #end(s: Session, reason: 'bye' | 'cancel'): Promise<void> {
    this.#sessions.delete(s.sipCallId);
    if (s.recordingId) await this.recorder.endCall(s.sipCallId, reason).catch((err: unknown) => this.log.warn({ err, sipCallId: s.sipCallId }, 'SIPREC session ended, but its call was already over'));
  }

  #remember(map: Map<string, Buffer>, key: string, res: Buffer): void {
    map.set(key, res);
    setTimeout(() => map.delete(key), TRANSACTION_MS).unref();
  }

  /** End every recording session (shutdown): their calls end with the Recorder's shutdown. */
  close(): void {
    for (const t of this.#invites.values()) clearTimeout(t.retransmit);
    this.#invites.clear();
    this.#awaitingAck.clear();
    this.#sessions.clear();
  }
}

type AnswerSrtp = NonNullable<NonNullable<AnswerStream['receive']>['srtp']>;

/** The sender's key as mediasoup takes it (the suite is one chooseCrypto accepted). */
function srtpKey(c: SdesCrypto | null): SrtpKey | undefined {
  return c ? { cryptoSuite: c.suite as SrtpKey['cryptoSuite'], keyBase64: c.keyBase64 } : undefined;
}

/** The response to a refused change in the dialog: 488 for an offer we cannot take, 400 for one we cannot read. */
function refusal(err: SipError): [number, string] {
  return err.status === 488 ? [488, 'Not Acceptable Here'] : [400, 'Bad Request'];
}

function warning(text: string): string {
  return `399 callvault "${text.replaceAll('"', "'")}"`;
}

/** A recorded leg's stream in a new offer: by its label, else at its old position. */
function findStream(media: readonly SdpMedia[], leg: { readonly index: number; readonly label: string | null }): SdpMedia | undefined {
  return leg.label !== null ? media.find((m) => m.label === leg.label) : media[leg.index];
}

/** Our answer to `offer`: each recorded leg's stream at our port, anything else declined. */
function answerFor(offer: SdpOffer, legs: Session['legs'], ip: string, sessionId: string, version: number): Buffer {
  const streams: AnswerStream[] = offer.media.map((m) => {
    const leg = Object.values(legs).find((l) => l && findStream(offer.media, l) === m);
    return { offer: m, receive: leg ? { port: leg.port, codec: leg.codec, srtp: leg.srtp } : null };
  });
  return Buffer.from(buildAnswer(ip, sessionId, version, streams));
}

/** The parties a metadata update names for each recorded leg: whoever sends the stream with that leg's label. */
function numbersByLabel(meta: RsMetadata, legs: Session['legs']): Partial<Record<LegRole, string>> {
  const out: Partial<Record<LegRole, string>> = {};
  for (const [role, leg] of Object.entries(legs) as [LegRole, NonNullable<Session['legs'][LegRole]>][]) {
    const stream = meta.streams.find((st) => st.label !== null && st.label === leg.label);
    const party = stream && meta.participants.find((p) => p.sends.includes(stream.id));
    if (party?.aor) out[role] = userOf(party.aor);
  }
  return out;
}

/** An INVITE and its ACK share the Call-ID and the CSeq number. */
function ackKeyOf(req: SipRequest): string {
  return `${req.headers.get('call-id') ?? ''} ${parseInt(req.headers.get('cseq') ?? '', 10)}`;
}

function hasTag(nameAddr: string): boolean {
  return parseParams(nameAddr.replace(/^.*>/, '')).params.has('tag');
}

function hostOf(ip: string): string {
  return ip.includes(':') ? `[${ip}]` : ip;
}

/** Vendor call ids carried in headers: Cisco's Session-ID (RFC 7989), Avaya/Oracle UCID. */
function vendorCallIds(req: SipRequest): Record<string, string> {
  const out: Record<string, string> = {};
  const sessionId = req.headers.get('session-id');
  if (sessionId) out['Session-ID'] = parseParams(sessionId).value;
  for (const h of ['x-ucid', 'ucid', 'x-cisco-guid', 'user-to-user']) {
    const v = req.headers.get(h);
    if (v) out[h] = v;
  }
  return out;
}
