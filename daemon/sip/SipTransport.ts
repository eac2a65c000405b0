import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { SafeEmitter } from '../events/SafeEmitter.js';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { ListenAddress } from '../config/Config.js';
import { SipError } from '../errors.js';
import type { Logger } from '../log.js';
import { headerEnd, MAX_MESSAGE_BYTES, parseSipMessage, type SipMessage } from './SipMessage.js';

export type SipTransportName = 'udp' | 'tcp' | 'tls';

/** Where a message came from, and how to answer on the same path. */
export interface SipPeer {
  readonly transport: SipTransportName;
  readonly address: string;
  readonly port: number;
  send(data: Buffer): void;
}

export interface SipTransportEvents {
  message: [SipMessage, SipPeer];
  /** A datagram or stream data that is not SIP we can read: dropped (and counted). */
  malformed: [SipTransportName, SipError];
}

export interface SipTransportOptions {
  readonly listen: ListenAddress;
  readonly transports: readonly ('udp' | 'tcp')[];
  /** SIP over TLS (RFC 3261 §26.2, Ribbon offers SIPREC so), on its own port. */
  readonly tls?: { readonly listen: ListenAddress; readonly cert: string; readonly key: string } | undefined;
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
}

/**
 * SIP over UDP and TCP on one address (RFC 3261 §18), and TLS on its own:
 * each datagram is one message; a stream is framed by the empty line and
 * Content-Length.
 * Nothing a peer sends ends the process: what cannot be parsed is dropped
 * (a stream that cannot be framed is closed) and reported as `malformed`.
 */
export class SipTransport extends SafeEmitter<SipTransportEvents> {
  #udp: UdpSocket | undefined;
  #tcp: Server | undefined;
  #tls: TlsServer | undefined;
  readonly #sockets = new Set<Socket>();

  private constructor(private readonly log: Logger) {
    super((err, event) => log.error({ err, event }, 'a SIP transport listener failed'));
  }

  static async open(opts: SipTransportOptions, log: Logger): Promise<SipTransport> {
    const t = new SipTransport(log);
    const family = opts.listen.host.includes(':') ? 'udp6' : 'udp4';
    let port = opts.listen.port;
    // TCP first, so a port 0 listener gives UDP the same port.
    if (opts.transports.includes('tcp')) {
      t.#tcp = createServer((s) => t.#stream(s, 'tcp', opts.idleTimeoutMs));
      t.#tcp.maxConnections = opts.maxConnections;
      await new Promise<void>((resolve, reject) => {
        t.#tcp!.once('error', reject);
        t.#tcp!.listen(port, opts.listen.host, () => resolve());
      });
      port = (t.#tcp.address() as AddressInfo).port;
    }
    if (opts.tls) {
      const { listen, cert, key } = opts.tls;
      t.#tls = createTlsServer({ cert, key, minVersion: 'TLSv1.2' }, (s) => t.#stream(s, 'tls', opts.idleTimeoutMs));
      t.#tls.maxConnections = opts.maxConnections;
      // A failed handshake is the peer's problem, not ours: logged at debug, never thrown.
      t.#tls.on('tlsClientError', (err) => log.debug({ err }, 'SIP TLS handshake failed'));
      await new Promise<void>((resolve, reject) => {
        t.#tls!.once('error', reject);
        t.#tls!.listen(listen.port, listen.host, () => resolve());
      });
    }
    if (opts.transports.includes('udp')) {
      const udp = createSocket({ type: family, reuseAddr: false });
      t.#udp = udp;
      udp.on('message', (buf, rinfo) => t.#datagram(buf, rinfo.address, rinfo.port));
      udp.on('error', (err) => log.error({ err }, 'SIP UDP socket error'));
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, opts.listen.host, () => resolve());
      });
      port = udp.address().port;
    }
    return t;
  }

  /** The TLS port, when SIP over TLS is on. */
  get tlsPort(): number | null {
    return this.#tls ? (this.#tls.address() as AddressInfo).port : null;
  }

  /** The port listened on (UDP and TCP share it). */
  get port(): number {
    if (this.#tcp) return (this.#tcp.address() as AddressInfo).port;
    return this.#udp!.address().port;
  }

  #datagram(buf: Buffer, address: string, port: number): void {
    if (buf.length <= 4 && buf.toString().trim() === '') return; // keep-alive CRLF
    let msg: SipMessage;
    try {
      msg = parseSipMessage(buf, true);
    } catch (err) {
      this.#malformed('udp', err);
      return;
    }
    const udp = this.#udp!;
    this.safeEmit('message', msg, {
      transport: 'udp',
      address,
      port,
      send: (data) => udp.send(data, port, address, (err) => err && this.log.warn({ err, to: `${address}:${port}` }, 'SIP UDP send failed')),
    });
  }

  #stream(socket: Socket, transport: 'tcp' | 'tls', idleTimeoutMs: number): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.setTimeout(idleTimeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    const peer: SipPeer = {
      transport,
      address: socket.remoteAddress ?? '',
      port: socket.remotePort ?? 0,
      send: (data) => {
        if (!socket.destroyed) socket.write(data);
      },
    };
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      for (;;) {
        // Keep-alive CRLFs between messages (RFC 5626 §3.5.1).
        let skip = 0;
        while (pending[skip] === 0x0d || pending[skip] === 0x0a) skip++;
        if (skip) pending = pending.subarray(skip);
        const end = headerEnd(pending);
        if (end < 0) {
          if (pending.length > MAX_MESSAGE_BYTES)
            return this.#closeMalformed(socket, transport, new SipError(413, 'SIP_MALFORMED', 'no end of headers within the size limit'));
          return;
        }
        const cl = /^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*\r?$/im.exec(pending.subarray(0, end).toString('latin1'));
        if (!cl) return this.#closeMalformed(socket, transport, new SipError(400, 'SIP_MALFORMED', 'a message over TCP without Content-Length'));
        const total = end + Number(cl[1]);
        if (total > MAX_MESSAGE_BYTES)
          return this.#closeMalformed(socket, transport, new SipError(413, 'SIP_MALFORMED', `a message of ${total} bytes`));
        if (pending.length < total) return;
        const raw = pending.subarray(0, total);
        pending = pending.subarray(total);
        let msg: SipMessage;
        try {
          msg = parseSipMessage(raw, false);
        } catch (err) {
          this.#malformed(transport, err);
          continue;
        }
        this.safeEmit('message', msg, peer);
      }
    });
  }

  #closeMalformed(socket: Socket, transport: SipTransportName, err: SipError): void {
    this.#malformed(transport, err);
    socket.destroy();
  }

  #malformed(transport: SipTransportName, err: unknown): void {
    if (!(err instanceof SipError)) throw err;
    this.log.debug({ transport, err }, 'SIP message dropped: not readable');
    this.safeEmit('malformed', transport, err);
  }

  async close(): Promise<void> {
    this.#udp?.close();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => (this.#tcp ? this.#tcp.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (this.#tls ? this.#tls.close(() => resolve()) : resolve()));
  }
}
