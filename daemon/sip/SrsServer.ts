import { randomBytes, randomInt } from 'node:crypto';
import { SafeEmitter } from '../events/SafeEmitter.js';
import { ApiError, SipError } from '../errors.js';
import type { LegRole } from '../ingest/LegSource.js';
import { sourceFilter } from '../ingest/sourceFilter.js';
import type { Logger } from '../log.js';
import type { SiprecMetadata } from '../record/metadata.js';
import type { EndReason } from '../record/metadata.js';
import type { Recorder, StartCallRequest } from '../record/Recorder.js';
import type { DigestAuth } from './DigestAuth.js';
import { dialogOf, dialogRequest } from './dialog.js';
import { bodyParts } from './multipart.js';
import { metadataOf, storedParticipants, type RsMetadata } from './rsMetadata.js';
import { buildAnswer, parseSdp, type AnswerStream, type SdesCrypto, type SdpOffer } from './sdp.js';
import type { SrtpKey } from '../ingest/LegSource.js';
import { SessionTimer, MIN_SE, negotiateTimer, timerHeaders, type TimerTerms } from './SessionTimer.js';
import { planSession, type SessionPlan } from './sessionPlan.js';
import { SipClient, T1, T2, TRANSACTION_MS } from './SipClient.js';
import { buildResponse, parseParams, uriOf, userOf, type SipRequest } from './SipMessage.js';
import type { SipPeer, SipTransport } from './SipTransport.js';
import { findStream, streamName, type Session } from './SrsSessionTypes.js';
import { updateStreams } from './streamUpdate.js';

const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE';
/** How long shutdown waits for the SRCs to answer its BYEs. */
const SHUTDOWN_BYE_MS = 2000;
/** Option tags we accept in Require (100rel: answered without reliable provisionals, which RFC 3262 allows). */
const UNDERSTOOD = new Set(['siprec', '100rel', 'timer', 'replaces']);

export interface SrsEvents {
  /** A request answered: its method and our final status. */
  request: [method: string, status: number];
  /** A request refused before it reached a recording: why (source, malformed, no-codec, limit…). */
  rejected: [reason: string];
  /** A request we sent in a dialog (BYE, UPDATE) and its final status (null: no answer in 64·T1). */
  sent: [method: string, status: number | null];
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
export class SrsServer extends SafeEmitter<SrsEvents> {
  readonly #sessions = new Map<string, Session>();
  readonly #invites = new Map<string, InviteTransaction>();
  /** Final responses being retransmitted, by Call-ID and CSeq number: a 2xx's ACK has a branch of its own. */
  readonly #awaitingAck = new Map<string, InviteTransaction>();
  /** Final responses to non-INVITE requests, for their retransmissions. */
  readonly #answered = new Map<string, Buffer>();
  /** Non-INVITE requests being worked on: a retransmission meanwhile is dropped, the answer comes once. */
  readonly #working = new Set<string>();
  #allowed: (ip: string) => boolean;
  /** Our port per transport, for Contact and Via. */
  readonly #ports: Readonly<Record<string, number | null>>;
  readonly #client = new SipClient();

  constructor(
    transport: SipTransport,
    private readonly recorder: Recorder,
    allowedSources: readonly string[],
    private readonly log: Logger,
    /** Our host in Contact and Via: the SIP listen address, or the media address when SIP listens on every interface. */
    private readonly host: string,
    /** Digest authentication of recording INVITEs, when configured. */
    private readonly auth: DigestAuth | null = null,
  ) {
    super((err, event) => log.error({ err, event }, 'a SIP listener failed; the SRS goes on'));
    this.#allowed = sourceFilter(allowedSources, undefined);
    this.#ports = { udp: transport.port, tcp: transport.port, tls: transport.tlsPort };
    transport.on('message', (msg, peer) => {
      if (msg.kind === 'response') return void this.#client.response(msg); // only to our BYEs and UPDATEs; others are dropped
      void this.#handle(msg, peer).catch((err: unknown) =>
        this.log.error({ err, method: msg.method, from: `${peer.address}:${peer.port}` }, 'SIP request failed'),
      );
    });
    // A recording that ends on our side (RTP timeout, maximum duration, a lost worker) ends its session: the SRC is told by BYE.
    recorder.on('ending', (callId, reason) => {
      const s = this.#sessions.get(callId);
      if (s) void this.#hangUp(s, reason);
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
      this.safeEmit('request', req.method, status);
      if (req.method !== 'INVITE') this.#remember(this.#answered, key, res);
      return res;
    };
    for (const h of ['via', 'from', 'to', 'call-id', 'cseq']) {
      if (!req.headers.get(h)) {
        this.safeEmit('rejected', 'malformed');
        return void reply(400, `Missing ${h}`);
      }
    }
    if (!this.#allowed(peer.address)) {
      this.safeEmit('rejected', 'source');
      this.log.warn({ method: req.method, from: `${peer.address}:${peer.port}` }, 'SIP request from a source not in sip.allowedSources refused');
      return void reply(403, 'Forbidden');
    }
    const callId = req.headers.get('call-id')!;
    const dialog = hasTag(req.headers.get('to')!) ? this.#sessions.get(callId) : undefined;
    if (dialog && req.method !== 'CANCEL') {
      // RFC 3261 §12.2.2: retransmissions were answered above, so a lower CSeq is out of order.
      const cseq = parseInt(req.headers.get('cseq')!, 10);
      if (!(cseq > dialog.remoteCseq)) {
        this.safeEmit('rejected', 'cseq-order');
        return void reply(500, 'Server Internal Error', {
          toTag: dialog.localTag,
          headers: [['Warning', warning(`CSeq ${cseq} is not above ${dialog.remoteCseq}, the last in this dialog`)]],
        });
      }
      dialog.remoteCseq = cseq;
    }
    switch (req.method) {
      case 'OPTIONS':
        return void reply(200, 'OK', {
          headers: [
            ['Allow', ALLOW],
            ['Accept', 'application/sdp, multipart/mixed, application/rs-metadata+xml, application/rs-metadata'],
            ['Supported', 'siprec, timer'],
          ],
        });
      case 'INVITE':
        return hasTag(req.headers.get('to')!) ? this.#reinvite(req, peer, key) : this.#invite(req, peer, key, branch);
      case 'UPDATE': {
        const s = this.#sessions.get(callId);
        if (!s) return void reply(481, 'Call/Transaction Does Not Exist');
        const result = await this.#dialogChange(req, s);
        if (result instanceof SipError) return void reply(...refusal(result), { toTag: s.localTag, headers: refusalHeaders(result) });
        return void reply(200, 'OK', {
          toTag: s.localTag,
          headers: [['Contact', s.contact], ...timerHeaders(result.timer)],
          ...(result.answer ? { body: result.answer, contentType: 'application/sdp' } : {}),
        });
      }
      case 'PRACK':
        // We send no reliable provisional responses (RFC 3262 allows it even under Require: 100rel), so none is awaiting a PRACK.
        return void reply(481, 'Call/Transaction Does Not Exist');
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
    const txn: InviteTransaction = {
      request: req,
      response: buildResponse(req, 100, 'Trying'),
      final: false,
      cancelled: false,
      retransmit: undefined,
    };
    this.#invites.set(key, txn);
    peer.send(txn.response);
    const localTag = randomBytes(6).toString('hex');
    const final = (status: number, reason: string, extra: Parameters<typeof buildResponse>[3] = {}) => {
      txn.response = buildResponse(req, status, reason, { toTag: localTag, ...extra });
      txn.final = true;
      peer.send(txn.response);
      this.safeEmit('request', 'INVITE', status);
      if (peer.transport === 'udp') this.#retransmit(txn, peer);
      setTimeout(() => this.#invites.delete(key), TRANSACTION_MS).unref();
    };
    if (this.auth) {
      const verdict = this.auth.verify(req);
      if (verdict !== 'ok') {
        this.safeEmit('rejected', 'auth');
        if (verdict === 'wrong') this.log.warn({ from: `${peer.address}:${peer.port}` }, 'SIPREC INVITE with wrong digest credentials refused');
        return verdict === 'wrong'
          ? final(403, 'Forbidden')
          : final(401, 'Unauthorized', { headers: this.auth.challenge(verdict === 'stale').map((c) => ['WWW-Authenticate', c] as const) });
      }
    }
    const terms = negotiateTimer(req);
    if (terms instanceof SipError) {
      this.safeEmit('rejected', terms.status === 422 ? 'session-interval' : 'malformed');
      return final(...refusal(terms), { headers: refusalHeaders(terms) });
    }
    const unsupported = req.headers.list('require').filter((t) => !UNDERSTOOD.has(t.toLowerCase()));
    if (unsupported.length) {
      this.safeEmit('rejected', 'extension');
      return final(420, 'Bad Extension', { headers: [['Unsupported', unsupported.join(', ')]] });
    }
    let plan: SessionPlan;
    let meta: RsMetadata | null;
    let offerText: string;
    try {
      const parts = bodyParts(req.headers.get('content-type') ?? 'application/sdp', req.body);
      const sdp = parts.find((p) => p.contentType === 'application/sdp');
      if (!sdp) {
        this.safeEmit('rejected', 'no-sdp');
        return final(488, 'Not Acceptable Here', { headers: [['Warning', warning('no SDP offer in the INVITE')]] });
      }
      meta = metadataOf(parts);
      offerText = sdp.body.toString('utf8');
      const result = planSession(parseSdp(offerText), meta);
      if (!result.ok) {
        this.safeEmit('rejected', 'no-codec');
        return final(488, 'Not Acceptable Here', { headers: [['Warning', warning(result.warning)]] });
      }
      plan = result.plan;
    } catch (err) {
      if (!(err instanceof SipError)) throw err;
      this.safeEmit('rejected', 'malformed');
      return final(err.status === 413 ? 413 : 400, err.status === 413 ? 'Request Entity Too Large' : 'Bad Request', {
        headers: [['Warning', warning(err.message)]],
      });
    }
    const sipCallId = req.headers.get('call-id')!;
    const startReq = this.#startRequest(req, peer, plan, meta, sipCallId);
    let answer: Awaited<ReturnType<Recorder['startCall']>>;
    try {
      answer = await this.recorder.startCall(startReq, { address: peer.address });
    } catch (err) {
      if (err instanceof ApiError && err.status === 503) {
        this.safeEmit('rejected', err.code.toLowerCase());
        return final(503, 'Service Unavailable', {
          headers: [
            ['Retry-After', String(err.retryAfterSeconds ?? 5)],
            ['Warning', warning(err.message)],
          ],
        });
      }
      if (err instanceof ApiError) {
        this.safeEmit('rejected', err.code.toLowerCase());
        return final(err.status === 409 ? 482 : 400, err.status === 409 ? 'Loop Detected' : 'Bad Request', {
          headers: [['Warning', warning(err.message)]],
        });
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
          payloadTypes: answer.legs[role].payloadTypes,
          dtmfPayloadType: answer.legs[role].dtmfPayloadType,
          srtp: l.srtp && ours ? { tag: l.srtp.tag, suite: l.srtp.suite, keyBase64: ours.keyBase64 } : undefined,
          remoteKey: l.srtp,
          offered: { address: l.media.address, port: l.media.port, paused: l.media.port === 0 || l.media.direction === 'inactive' },
        };
      }
    }
    const offer = parseSdp(offerText);
    const sdpSessionId = String(Date.now());
    const body = answerFor(offer, legs, ip, sdpSessionId, 1);
    if (txn.cancelled) {
      if (answer.recorded) await this.recorder.endCall(startReq.callId, 'cancel').catch(() => undefined);
      return; // the CANCEL answered the INVITE with 487
    }
    const contact = `<sip:callvault@${hostOf(this.host)}:${this.#ports[peer.transport] ?? ''};transport=${peer.transport}>`;
    const recorded = new Set(Object.values(legs).map((l) => l.index));
    const session: Session = {
      sipCallId,
      localTag,
      recordingId: answer.recorded ? answer.recordingId : null,
      peer,
      contact,
      dialog: dialogOf(req, localTag),
      legs,
      declined: new Set(offer.media.flatMap((m, i) => (recorded.has(i) ? [] : [streamName(m, i)]))),
      ip,
      sdpSessionId,
      answer: body,
      version: 1,
      remoteCseq: parseInt(req.headers.get('cseq')!, 10),
      offerPending: false,
      timer: new SessionTimer({ refresh: (t) => this.#refresh(session, t), expire: () => void this.#hangUp(session, 'session-expired') }),
    };
    this.#sessions.set(sipCallId, session);
    final(200, 'OK', {
      headers: [['Contact', contact], ['Allow', ALLOW], ['Supported', 'timer'], ...timerHeaders(terms)],
      body,
      contentType: 'application/sdp',
    });
    session.timer.set(terms);
    // A session nothing records has no RTP to time out: it is forgotten after the longest a call may be recorded.
    if (!session.recordingId)
      setTimeout(() => this.#sessions.get(sipCallId) === session && void this.#hangUp(session, 'max-duration'), this.recorder.maxCallMs).unref();
    const answered = parseSdp(body.toString('utf8')).media.map((m) => ({ label: m.label, port: m.port }));
    this.log.info(
      {
        sipCallId,
        recordingId: session.recordingId,
        src: `${peer.transport}:${peer.address}:${peer.port}`,
        streams: answered,
        decided: plan.decided,
        branch,
      },
      answer.recorded ? 'SIPREC session answered' : 'SIPREC session answered without recording (no profile records it)',
    );
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
      callee: {
        number: plan.legs.callee?.number ?? 'unknown',
        srtp: srtpKey(plan.legs.callee?.srtp ?? null),
        ssrc: plan.legs.callee?.media.ssrc ?? undefined,
      },
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
    const result = s ? await this.#dialogChange(req, s) : null;
    const response = !s
      ? buildResponse(req, 481, 'Call/Transaction Does Not Exist')
      : result instanceof SipError
        ? buildResponse(req, ...refusal(result), { toTag: s.localTag, headers: refusalHeaders(result) })
        : buildResponse(req, 200, 'OK', {
            toTag: s.localTag,
            headers: [['Contact', s.contact], ['Allow', ALLOW], ...timerHeaders(result!.timer)],
            body: result!.answer ?? this.#answerAgain(s),
            contentType: 'application/sdp',
          });
    const txn: InviteTransaction = { request: req, response, final: true, cancelled: false, retransmit: undefined };
    this.#invites.set(key, txn);
    setTimeout(() => this.#invites.delete(key), TRANSACTION_MS).unref();
    peer.send(txn.response);
    this.safeEmit('request', 'INVITE', !s ? 481 : result instanceof SipError ? refusal(result)[0] : 200);
    if (s && peer.transport === 'udp') this.#retransmit(txn, peer);
  }

  /** The session's answer again, its o= version one higher (RFC 3264 §8). */
  #answerAgain(s: Session): Buffer {
    s.version++;
    s.answer = Buffer.from(s.answer.toString('utf8').replace(/^(o=\S+ \S+ )\d+/m, `$1${s.version}`));
    return s.answer;
  }

  /**
   * A re-INVITE or UPDATE in the dialog: a new offer (streams paused,
   * resumed, moved, switched to the other G.711 law, replaced or added, new
   * SRTP keys: see updateStreams) and/or new metadata (participants named
   * later, a transfer), and a session refresh (RFC 4028). The recording goes
   * on, the change noted with its time. Returns our answer (null when the
   * request carried no SDP offer) and the session timer's new terms; or why
   * the request is refused, nothing changed.
   */
  async #dialogChange(req: SipRequest, s: Session): Promise<{ answer: Buffer | null; timer: TimerTerms | null } | SipError> {
    if (s.offerPending) {
      this.safeEmit('rejected', 'offer-pending');
      return new SipError(500, 'SIP_OFFER_PENDING', 'another offer in this dialog is being answered');
    }
    const terms = negotiateTimer(req);
    if (terms instanceof SipError) {
      this.safeEmit('rejected', terms.status === 422 ? 'session-interval' : 'malformed');
      return terms;
    }
    let offerText: string | null = null;
    let meta: RsMetadata | null = null;
    try {
      const parts = bodyParts(req.headers.get('content-type') ?? 'application/sdp', req.body);
      offerText = parts.find((p) => p.contentType === 'application/sdp')?.body.toString('utf8') ?? null;
      meta = metadataOf(parts);
    } catch (err) {
      if (!(err instanceof SipError)) throw err;
      this.safeEmit('rejected', 'malformed');
      return err;
    }
    const offer = offerText === null ? null : parseSdp(offerText);
    const streams = offer ? updateStreams(offer, s.legs, s.declined, req.method) : null;
    if (streams instanceof SipError) {
      this.safeEmit('rejected', 'stream-change');
      return streams;
    }
    const legs = streams?.legs ?? s.legs;
    const siprec = meta ? { method: req.method, participants: storedParticipants(meta), numbers: numbersByLabel(meta, legs) } : undefined;
    s.offerPending = true;
    try {
      if (s.recordingId)
        await this.recorder.updateCall(s.sipCallId, {
          ...(streams ? { paused: streams.paused, relearn: streams.relearn, streamChanges: streams.changes } : {}),
          ...(siprec ? { siprec } : {}),
        });
    } finally {
      s.offerPending = false;
    }
    s.legs = legs;
    for (const name of streams?.declined ?? []) s.declined.add(name);
    // A re-INVITE is a target refresh (RFC 3261 §12.2.2): our requests go to its Contact from now on.
    const contact = req.method === 'INVITE' ? req.headers.get('contact') : undefined;
    if (contact) s.dialog.remoteTarget = uriOf(contact);
    s.timer.set(terms);
    if (!offer || !streams) return { answer: null, timer: terms };
    s.version++;
    s.answer = answerFor(offer, s.legs, s.ip, s.sdpSessionId, s.version);
    this.log.info(
      {
        sipCallId: s.sipCallId,
        method: req.method,
        paused: streams.paused,
        relearn: Object.keys(streams.relearn),
        changes: streams.changes,
        metadata: meta !== null,
      },
      'SIPREC session changed',
    );
    return { answer: s.answer, timer: terms };
  }

  /** We are the session-timer refresher: an UPDATE without an offer (RFC 4028 §7.4); true when the SRC took it. */
  async #refresh(s: Session, terms: TimerTerms): Promise<boolean> {
    const status = await this.#send(s, 'UPDATE', [
      ['Session-Expires', `${terms.seconds};refresher=uas`],
      ['Supported', 'timer'],
    ]);
    return status !== null && status >= 200 && status < 300;
  }

  /**
   * End a session from our side: the recording ended here (RTP timeout,
   * maximum duration, a lost worker), the session timer expired, or the
   * daemon stops. The session is forgotten, its recording ended, and the
   * SRC told by BYE with the reason (RFC 3326).
   */
  async #hangUp(s: Session, reason: EndReason): Promise<void> {
    if (this.#sessions.get(s.sipCallId) !== s) return;
    this.#sessions.delete(s.sipCallId);
    s.timer.clear();
    if (s.recordingId && reason === 'session-expired') await this.recorder.endCall(s.sipCallId, reason).catch(() => undefined);
    this.log.info({ sipCallId: s.sipCallId, recordingId: s.recordingId, reason }, 'SIPREC session ended by the SRS; sending BYE');
    await this.#send(s, 'BYE', [['Reason', `SIP;text="${reason}"`]]);
  }

  /** A request of ours in the session's dialog, sent the way its INVITE came; resolves with the final status (null: none). */
  async #send(s: Session, method: string, headers: readonly (readonly [string, string])[]): Promise<number | null> {
    const { message, branch } = dialogRequest(
      s.dialog,
      method,
      { transport: s.peer.transport, host: hostOf(this.host), port: this.#ports[s.peer.transport] ?? 0 },
      headers,
    );
    const status = await this.#client.request(s.peer, message, branch);
    this.safeEmit('sent', method, status);
    if (status === null || status >= 300)
      this.log.warn(
        { sipCallId: s.sipCallId, method, status },
        status === null ? 'the SRC did not answer our request' : 'the SRC refused our request',
      );
    return status;
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
    this.safeEmit('request', 'INVITE', 487);
    if (peer.transport === 'udp') this.#retransmit(txn, peer);
  }

  async #end(s: Session, reason: 'bye' | 'cancel'): Promise<void> {
    this.#sessions.delete(s.sipCallId);
    s.timer.clear();
    if (s.recordingId)
      await this.recorder
        .endCall(s.sipCallId, reason)
        .catch((err: unknown) => this.log.warn({ err, sipCallId: s.sipCallId }, 'SIPREC session ended, but its call was already over'));
  }

  #remember(map: Map<string, Buffer>, key: string, res: Buffer): void {
    map.set(key, res);
    setTimeout(() => map.delete(key), TRANSACTION_MS).unref();
  }

  /**
   * Shutdown: every SRC is sent BYE (so it can fail over to another
   * recorder at once) and given a moment to answer; the calls themselves
   * end with the Recorder's shutdown.
   */
  async close(): Promise<void> {
    for (const t of this.#invites.values()) clearTimeout(t.retransmit);
    this.#invites.clear();
    this.#awaitingAck.clear();
    const byes = [...this.#sessions.values()].map((s) => this.#hangUp(s, 'shutdown'));
    const wait = new Promise<void>((resolve) => setTimeout(resolve, SHUTDOWN_BYE_MS).unref());
    await Promise.race([Promise.allSettled(byes), wait]);
    this.#client.close();
  }
}

/** The sender's key as mediasoup takes it (the suite is one chooseCrypto accepted). */
function srtpKey(c: SdesCrypto | null): SrtpKey | undefined {
  return c ? { cryptoSuite: c.suite as SrtpKey['cryptoSuite'], keyBase64: c.keyBase64 } : undefined;
}

const REFUSALS: Readonly<Record<number, string>> = { 422: 'Session Interval Too Small', 488: 'Not Acceptable Here', 500: 'Server Internal Error' };

/** The response to a refused request: 488 for an offer we cannot take, 422 for too short a session interval, 500 for an overlapping offer, 400 for one we cannot read. */
function refusal(err: SipError): [number, string] {
  const reason = REFUSALS[err.status];
  return reason ? [err.status, reason] : [400, 'Bad Request'];
}

/** A refusal's Warning, and what its status requires with it: Min-SE for 422 (RFC 4028), Retry-After of 0–10 s for 500 (RFC 3261 §14.2). */
function refusalHeaders(err: SipError): [string, string][] {
  const extra: [string, string][] =
    err.status === 422 ? [['Min-SE', String(MIN_SE)]] : err.status === 500 ? [['Retry-After', String(randomInt(0, 11))]] : [];
  return [...extra, ['Warning', warning(err.message)]];
}

function warning(text: string): string {
  return `399 callvault "${text.replaceAll('"', "'")}"`;
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
