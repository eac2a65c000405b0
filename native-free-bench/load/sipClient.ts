/**
 * The load generator's SRC for `--siprec`: a minimal SIP UAC over UDP that
 * starts SIPREC recording sessions (an INVITE with an SDP offer of two
 * labelled sendonly streams, SSRCs announced, and RFC 7865 metadata),
 * ACKs the 200, and ends them with BYE — measuring INVITE → 200 OK.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';

export interface SiprecCall {
  readonly callId: string;
  readonly ports: { readonly caller: number; readonly callee: number };
  readonly setupMs: number;
  readonly toTag: string;
}

interface Pending {
  readonly resolve: (msg: string) => void;
  readonly match: (msg: string) => boolean;
}

export class SipClient {
  readonly #pending = new Set<Pending>();
  private constructor(
    private readonly sock: Socket,
    private readonly target: { host: string; port: number },
  ) {
    sock.on('message', (buf) => {
      const msg = buf.toString('utf8');
      for (const p of this.#pending) {
        if (!p.match(msg)) continue;
        this.#pending.delete(p);
        p.resolve(msg);
      }
    });
  }

  static async open(target: string): Promise<SipClient> {
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const [host, port] = target.split(':');
    return new SipClient(sock, { host: host!, port: Number(port) });
  }

  get #local(): string {
    return `127.0.0.1:${this.sock.address().port}`;
  }

  /** Send `msg` until a final response to it (`CSeq` and Call-ID) arrives: 500 ms, doubling, at most 8 tries. */
  async #request(msg: string, callId: string, cseq: string): Promise<string> {
    const final = (m: string) => /^SIP\/2\.0 [2-6]/.test(m) && m.includes(`Call-ID: ${callId}\r\n`) && m.includes(`CSeq: ${cseq}\r\n`);
    const answer = new Promise<string>((resolve) => this.#pending.add({ resolve, match: final }));
    let done = false;
    void answer.then(() => (done = true));
    for (let i = 0, wait = 500; i < 8 && !done; i++, wait *= 2) {
      this.sock.send(msg, this.target.port, this.target.host);
      await Promise.race([answer, new Promise((r) => setTimeout(r, wait))]);
    }
    if (!done) throw new Error(`no answer to ${cseq} of ${callId}`);
    return answer;
  }

  async invite(i: number, ssrc: { caller: number; callee: number }): Promise<SiprecCall> {
    const callId = `load-${i}-${randomBytes(4).toString('hex')}@127.0.0.1`;
    const tag = randomBytes(4).toString('hex');
    const target = `${this.target.host}:${this.target.port}`;
    const sdp = `${[
      'v=0',
      'o=- 1 1 IN IP4 127.0.0.1',
      's=-',
      'c=IN IP4 127.0.0.1',
      't=0 0',
      ...(['1', '2'] as const).flatMap((label) => [
        `m=audio ${40000 + Number(label) * 2} RTP/AVP 0 101`,
        'a=rtpmap:0 PCMU/8000',
        'a=rtpmap:101 telephone-event/8000',
        `a=ssrc:${label === '1' ? ssrc.caller : ssrc.callee} cname:load`,
        `a=label:${label}`,
        'a=sendonly',
      ]),
    ].join('\r\n')}\r\n`;
    const xml = `<?xml version="1.0" encoding="UTF-8"?>\r\n<recording xmlns='urn:ietf:params:xml:ns:recording:1'><datamode>complete</datamode><session session_id="s${i}"/><participant participant_id="a"><nameID aor="sip:+4930${100000 + i}@load"/></participant><participant participant_id="b"><nameID aor="sip:+4989654321@load"/></participant><stream stream_id="s1" session_id="s${i}"><label>1</label></stream><stream stream_id="s2" session_id="s${i}"><label>2</label></stream><participantstreamassoc participant_id="a"><send>s1</send></participantstreamassoc><participantstreamassoc participant_id="b"><send>s2</send></participantstreamassoc></recording>\r\n`;
    const body = `--b1\r\nContent-Type: application/sdp\r\n\r\n${sdp}\r\n--b1\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n${xml}\r\n--b1--\r\n`;
    const head = (method: string, cseq: string, toTag = '') =>
      `${method} sip:srs@${target} SIP/2.0\r\nVia: SIP/2.0/UDP ${this.#local};branch=z9hG4bK${randomBytes(6).toString('hex')}\r\nFrom: <sip:src@127.0.0.1>;tag=${tag}\r\nTo: <sip:srs@${target}>${toTag}\r\nCall-ID: ${callId}\r\nCSeq: ${cseq}\r\nMax-Forwards: 70\r\n`;
    const t0 = performance.now();
    const ok = await this.#request(
      `${head('INVITE', '1 INVITE')}Contact: <sip:src@${this.#local}>;+sip.src\r\nRequire: siprec\r\nContent-Type: multipart/mixed;boundary=b1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      callId,
      '1 INVITE',
    );
    const setupMs = performance.now() - t0;
    if (!ok.startsWith('SIP/2.0 200')) throw new Error(`INVITE ${i}: ${ok.split('\r\n')[0]}`);
    const toTag = /^To: .*(;tag=[^;\r\n]+)/m.exec(ok)?.[1] ?? '';
    this.sock.send(`${head('ACK', '1 ACK', toTag)}Content-Length: 0\r\n\r\n`, this.target.port, this.target.host);
    const ports = [...ok.matchAll(/m=audio (\d+) [^\r\n]*\r\n(?:[^m][^\r\n]*\r\n)*?a=label:(\d)/g)];
    const port = (label: string) => Number(ports.find((p) => p[2] === label)?.[1]);
    return { callId, ports: { caller: port('1'), callee: port('2') }, setupMs, toTag: `${tag}|${toTag}` };
  }

  async bye(call: SiprecCall): Promise<void> {
    const [tag, toTag] = call.toTag.split('|') as [string, string];
    const target = `${this.target.host}:${this.target.port}`;
    const msg = `BYE sip:srs@${target} SIP/2.0\r\nVia: SIP/2.0/UDP ${this.#local};branch=z9hG4bK${randomBytes(6).toString('hex')}\r\nFrom: <sip:src@127.0.0.1>;tag=${tag}\r\nTo: <sip:srs@${target}>${toTag}\r\nCall-ID: ${call.callId}\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`;
    const r = await this.#request(msg, call.callId, '2 BYE');
    if (!r.startsWith('SIP/2.0 200')) throw new Error(`BYE ${call.callId}: ${r.split('\r\n')[0]}`);
  }

  close(): void {
    this.sock.close();
  }
}
