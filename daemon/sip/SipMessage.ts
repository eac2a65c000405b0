import { SipError } from '../errors.js';

/*
 * RFC 3261 messages, parsed the way real devices send them: compact header
 * names, folded (continued) header lines, CRLF or bare-LF line ends, and a
 * body taken byte-exact by Content-Length — never re-encoded, so a bare-LF
 * body (AudioCodes) keeps its length.
 */

export interface SipRequest {
  readonly kind: 'request';
  readonly method: string;
  readonly uri: string;
  readonly headers: SipHeaders;
  readonly body: Buffer;
}

export interface SipResponse {
  readonly kind: 'response';
  readonly status: number;
  readonly reason: string;
  readonly headers: SipHeaders;
  readonly body: Buffer;
}

export type SipMessage = SipRequest | SipResponse;

/** Largest message accepted (a SIPREC INVITE is 2–4 KB; UDP cannot carry more than 64 KiB anyway). */
export const MAX_MESSAGE_BYTES = 64 * 1024;
const MAX_HEADERS = 128;

/** RFC 3261 §7.3.3 compact forms, and RFC 4028's x. */
const COMPACT: Readonly<Record<string, string>> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
  x: 'session-expires',
  o: 'event',
  r: 'refer-to',
  u: 'allow-events',
};

/** Header values by lower-case full name, in order; a comma-separated header stays one value as sent. */
export class SipHeaders {
  readonly #values = new Map<string, string[]>();

  add(name: string, value: string): void {
    const key = name.toLowerCase();
    const full = COMPACT[key] ?? key;
    const list = this.#values.get(full);
    if (list) list.push(value);
    else this.#values.set(full, [value]);
  }

  get(name: string): string | undefined {
    return this.#values.get(name.toLowerCase())?.[0];
  }

  all(name: string): readonly string[] {
    return this.#values.get(name.toLowerCase()) ?? [];
  }

  /** Every value of a list header (Via, Require, Supported…), split at commas outside quotes and <>. */
  list(name: string): string[] {
    return this.all(name).flatMap(splitList);
  }

  has(name: string): boolean {
    return this.#values.has(name.toLowerCase());
  }
}

/** Split `a, "b, c" <d,e>, f` at the commas that separate values. */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === '"' && value[i - 1] !== '\\') quoted = !quoted;
    else if (!quoted && ch === '<') depth++;
    else if (!quoted && ch === '>') depth = Math.max(0, depth - 1);
    else if (!quoted && depth === 0 && ch === ',') {
      out.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(value.slice(start).trim());
  return out.filter((v) => v.length > 0);
}

/** Where the header section ends in `buf` (the index of the first body byte), or -1 while it has not. */
export function headerEnd(buf: Buffer): number {
  for (let i = 0; i < buf.length - 1; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

const bad = (message: string, status = 400) => new SipError(status, 'SIP_MALFORMED', message);

/**
 * Parse one message. `datagram`: over UDP a missing Content-Length means the
 * rest of the datagram; over a stream it means no body. A body shorter than
 * Content-Length is an error (400).
 */
export function parseSipMessage(buf: Buffer, datagram: boolean): SipMessage {
  if (buf.length > MAX_MESSAGE_BYTES) throw bad(`message of ${buf.length} bytes is larger than ${MAX_MESSAGE_BYTES}`, 413);
  const end = headerEnd(buf);
  if (end < 0) throw bad('the header section is not terminated by an empty line');
  const lines = buf.subarray(0, end).toString('utf8').split(/\r?\n/);
  while (lines.length && lines.at(-1) === '') lines.pop();
  const start = lines.shift() ?? '';
  // Folded lines first (RFC 3261 §7.3.1: a line starting with white space continues the one before).
  const fields: [string, string][] = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line)) {
      const last = fields.at(-1);
      if (!last) throw bad('a continuation line before any header');
      last[1] = `${last[1]} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw bad(`not a header line: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim();
    if (!/^[A-Za-z0-9!%'*+._`~-]+$/.test(name)) throw bad(`bad header name ${JSON.stringify(name.slice(0, 40))}`);
    if (fields.length >= MAX_HEADERS) throw bad(`more than ${MAX_HEADERS} header lines`);
    fields.push([name, line.slice(colon + 1).trim()]);
  }
  const headers = new SipHeaders();
  for (const [name, value] of fields) headers.add(name, value);
  const body = bodyOf(buf, end, headers, datagram);
  const req = /^([A-Za-z]+) (\S+) SIP\/2\.0$/.exec(start);
  if (req) return { kind: 'request', method: req[1]!.toUpperCase(), uri: req[2]!, headers, body };
  const res = /^SIP\/2\.0 ([1-6][0-9]{2})(?: (.*))?$/.exec(start);
  if (res) return { kind: 'response', status: Number(res[1]), reason: res[2] ?? '', headers, body };
  throw bad(`not a SIP request or status line: ${JSON.stringify(start.slice(0, 80))}`);
}

function bodyOf(buf: Buffer, end: number, headers: SipHeaders, datagram: boolean): Buffer {
  const cl = headers.get('content-length');
  if (cl === undefined) return datagram ? buf.subarray(end) : Buffer.alloc(0);
  if (!/^\d{1,6}$/.test(cl)) throw bad(`Content-Length ${JSON.stringify(cl)} is not a number`);
  const n = Number(cl);
  if (end + n > buf.length) throw bad(`Content-Length ${n} is more than the ${buf.length - end} body bytes received`);
  return buf.subarray(end, end + n);
}

/** `value;a=b;c` → the value and its parameters (names lower-case). */
export function parseParams(value: string): { value: string; params: Map<string, string> } {
  const parts = splitOutsideQuotes(value, ';');
  const params = new Map<string, string>();
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq < 0) params.set(p.trim().toLowerCase(), '');
    else
      params.set(
        p.slice(0, eq).trim().toLowerCase(),
        p
          .slice(eq + 1)
          .trim()
          .replace(/^"(.*)"$/, '$1'),
      );
  }
  return { value: (parts[0] ?? '').trim(), params };
}

function splitOutsideQuotes(value: string, sep: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let angle = 0;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '<') angle++;
    else if (!quoted && ch === '>') angle--;
    else if (!quoted && angle === 0 && ch === sep) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out;
}

/** The URI inside a name-addr (`"A" <sip:a@b>;tag=1`) or an addr-spec. */
export function uriOf(nameAddr: string): string {
  const m = /<([^>]*)>/.exec(nameAddr);
  return (m ? m[1]! : parseParams(nameAddr).value).trim();
}

/** The display name of a name-addr, unquoted, or null. */
export function displayNameOf(nameAddr: string): string | null {
  const m = /^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*</.exec(nameAddr);
  const name = (m?.[1] ?? m?.[2] ?? '').trim();
  return name || null;
}

/** The user part of a sip:/sips:/tel: URI (a number, for the index), or the whole URI. */
export function userOf(uri: string): string {
  const tel = /^tel:([^;?]+)/i.exec(uri);
  if (tel) return tel[1]!;
  const sip = /^sips?:([^@;?]+)@/i.exec(uri);
  return sip ? decodeURIComponent(sip[1]!) : uri;
}

export interface ResponseOptions {
  readonly toTag?: string | undefined;
  readonly headers?: readonly (readonly [string, string])[];
  readonly body?: Buffer | undefined;
  readonly contentType?: string | undefined;
}

/** A response to `req` (RFC 3261 §8.2.6): its Via, From, To (with our tag), Call-ID and CSeq, then ours. */
export function buildResponse(req: SipRequest, status: number, reason: string, opts: ResponseOptions = {}): Buffer {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const v of req.headers.all('via')) lines.push(`Via: ${v}`);
  lines.push(`From: ${req.headers.get('from') ?? ''}`);
  const to = req.headers.get('to') ?? '';
  lines.push(`To: ${opts.toTag && !/;\s*tag=/i.test(to) ? `${to};tag=${opts.toTag}` : to}`);
  lines.push(`Call-ID: ${req.headers.get('call-id') ?? ''}`);
  lines.push(`CSeq: ${req.headers.get('cseq') ?? ''}`);
  for (const [name, value] of opts.headers ?? []) lines.push(`${name}: ${value}`);
  if (opts.body?.length) lines.push(`Content-Type: ${opts.contentType ?? 'application/sdp'}`);
  lines.push(`Content-Length: ${opts.body?.length ?? 0}`, '', '');
  const head = Buffer.from(lines.join('\r\n'));
  return opts.body?.length ? Buffer.concat([head, opts.body]) : head;
}
