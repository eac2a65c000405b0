import { SipError } from '../errors.js';
import { headerEnd, parseParams, SipHeaders } from './SipMessage.js';

/** One body part: its headers and its bytes exactly as sent. */
export interface BodyPart {
  readonly contentType: string;
  readonly disposition: string | null;
  readonly body: Buffer;
}

/**
 * The parts of a `multipart/mixed` body (RFC 2046 §5.1), whatever the
 * boundary's quoting and the line ends (CRLF or bare LF); the preamble and
 * epilogue are dropped. A single-part body is returned as one part.
 */
export function bodyParts(contentType: string, body: Buffer): BodyPart[] {
  const { value, params } = parseParams(contentType);
  if (!/^multipart\//i.test(value)) return [{ contentType: value.toLowerCase(), disposition: null, body }];
  const boundary = params.get('boundary');
  if (!boundary) throw new SipError(400, 'SIP_MULTIPART', 'multipart body without a boundary');
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: BodyPart[] = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    let start = at + delimiter.length;
    if (body[start] === 0x2d && body[start + 1] === 0x2d) break; // the closing delimiter
    while (body[start] === 0x20 || body[start] === 0x09) start++;
    if (body[start] === 0x0d) start++;
    if (body[start] === 0x0a) start++;
    const next = body.indexOf(delimiter, start);
    if (next < 0) break;
    // The line end before a delimiter belongs to the delimiter.
    let end = next;
    if (body[end - 1] === 0x0a) end--;
    if (body[end - 1] === 0x0d) end--;
    parts.push(part(body.subarray(start, end)));
    at = next;
  }
  return parts;
}

function part(raw: Buffer): BodyPart {
  // A part with no headers starts with its empty line.
  const first = raw[0] === 0x0a ? 1 : raw[0] === 0x0d && raw[1] === 0x0a ? 2 : -1;
  const end = first > 0 ? first : headerEnd(raw);
  const headers = new SipHeaders();
  if (end > 0) {
    for (const line of raw.subarray(0, end).toString('utf8').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.add(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
  }
  return {
    contentType: parseParams(headers.get('content-type') ?? 'text/plain').value.toLowerCase(),
    disposition: headers.has('content-disposition') ? parseParams(headers.get('content-disposition')!).value.toLowerCase() : null,
    body: end > 0 ? raw.subarray(end) : raw,
  };
}
