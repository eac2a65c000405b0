import { XMLParser } from 'fast-xml-parser';
import { SipError } from '../errors.js';
import type { SiprecMetadata } from '../record/metadata.js';
import type { BodyPart } from './multipart.js';

/*
 * Recording metadata (RFC 7865), parsed leniently because real SRCs differ:
 * the namespace with or without `:1` (Oracle, Sonus) or BroadWorks' own, any
 * element prefix (`tns:`), the RFC's `participantstreamassoc` or the older
 * draft's `id=`/`session=` attributes with `<send>` inside `<participant>`.
 * Elements we do not know (vendor extensions) are kept in `raw`, never
 * rejected. fast-xml-parser (pure JS, maintained) reads the XML; it does not
 * validate, which is what a lenient reader wants (loreste/siprec #4, #8).
 */

export interface RsParticipant {
  readonly id: string;
  readonly aor: string | null;
  readonly name: string | null;
  /** Stream ids this participant sends. */
  readonly sends: readonly string[];
}

export interface RsStream {
  readonly id: string;
  readonly label: string | null;
}

export interface RsMetadata {
  readonly sessionId: string | null;
  readonly participants: readonly RsParticipant[];
  readonly streams: readonly RsStream[];
  /** A participant a vendor extension marks as the calling party (Oracle's callingParty), if any. */
  readonly callingParticipant: string | null;
  /** The original call's From, To and Call-ID when the SRC sends them (Sonus' callData). */
  readonly callData: { readonly from: string | null; readonly to: string | null; readonly callId: string | null } | null;
  /** The document as received. */
  readonly raw: string;
}

const MAX_METADATA = 256 * 1024;
const ARRAYS = new Set(['participant', 'stream', 'session', 'participantstreamassoc', 'send', 'nameID', 'nameid']);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
  isArray: (name) => ARRAYS.has(name),
});

type Node = Record<string, unknown>;

function text(v: unknown): string | null {
  if (typeof v === 'string') return v.trim() || null;
  if (Array.isArray(v)) return text(v[0]);
  if (v && typeof v === 'object' && '#text' in v) return text((v as Node)['#text']);
  return null;
}

function nodes(v: unknown): Node[] {
  if (Array.isArray(v)) return v.filter((x): x is Node => typeof x === 'object' && x !== null);
  return v && typeof v === 'object' ? [v as Node] : [];
}

function attr(n: Node, ...names: string[]): string | null {
  for (const name of names) {
    const v = n[`@${name}`];
    if (typeof v === 'string' && v.trim()) return v.trim();
  }
  return null;
}

/** The first value found for `key` anywhere below `n` (vendor elements sit at different depths). */
function find(n: unknown, key: string, depth = 0): unknown {
  if (depth > 8 || !n || typeof n !== 'object') return undefined;
  for (const [k, v] of Object.entries(n as Node)) {
    if (k.toLowerCase() === key) return v;
    const hit = find(v, key, depth + 1);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

/** The stream ids in an element's <send> children. */
function sent(n: Node): string[] {
  return (Array.isArray(n.send) ? (n.send as unknown[]) : []).map(text).filter((x): x is string => x !== null);
}

export function parseRsMetadata(body: Buffer): RsMetadata {
  if (body.length > MAX_METADATA) throw new SipError(413, 'SIP_METADATA', `recording metadata of ${body.length} bytes`);
  const raw = body.toString('utf8');
  let doc: Node;
  try {
    doc = parser.parse(raw) as Node;
  } catch (err) {
    throw new SipError(400, 'SIP_METADATA', `recording metadata is not XML: ${(err as Error).message}`);
  }
  const root = nodes(doc.recording)[0];
  if (!root) throw new SipError(400, 'SIP_METADATA', 'recording metadata has no <recording> element');
  const streams: RsStream[] = nodes(root.stream).flatMap((s) => {
    const id = attr(s, 'stream_id', 'id');
    return id ? [{ id, label: text(s.label) }] : [];
  });
  const assoc = new Map<string, string[]>();
  for (const a of nodes(root.participantstreamassoc)) {
    const id = attr(a, 'participant_id', 'id');
    if (id) assoc.set(id, [...(assoc.get(id) ?? []), ...sent(a)]);
  }
  let callingParticipant: string | null = null;
  const participants: RsParticipant[] = nodes(root.participant).flatMap((p) => {
    const id = attr(p, 'participant_id', 'id');
    if (!id) return [];
    const nameId = nodes(p.nameID ?? p.nameid)[0];
    const aor = (nameId && attr(nameId, 'aor')) ?? text(p.aor);
    const name = nameId ? text(nameId.name) : null;
    // The draft form lists what a participant sends inside it.
    const own = sent(p);
    if (/^true$/i.test(text(find(p, 'callingparty')) ?? '')) callingParticipant ??= id;
    return [{ id, aor, name, sends: [...new Set([...(assoc.get(id) ?? []), ...own])] }];
  });
  const session = nodes(root.session)[0];
  const from = text(find(root, 'fromhdr'));
  const to = text(find(root, 'tohdr'));
  const callId = text(find(root, 'callid'));
  return {
    sessionId: (session && (attr(session, 'session_id', 'id') ?? text(session.sipSessionID))) ?? null,
    participants,
    streams,
    callingParticipant,
    callData: from || to || callId ? { from, to, callId } : null,
    raw,
  };
}

/** The recording metadata among a request's body parts, by media type (RFC 9806's or RFC 7866's) or disposition; null without one. */
export function metadataOf(parts: readonly BodyPart[]): RsMetadata | null {
  const part = parts.find(
    (p) => p.contentType === 'application/rs-metadata+xml' || p.contentType === 'application/rs-metadata' || p.disposition === 'recording-session',
  );
  return part ? parseRsMetadata(part.body) : null;
}

/** The participants as a recording's metadata keeps them. */
export function storedParticipants(meta: RsMetadata | null): SiprecMetadata['participants'] {
  return (meta?.participants ?? []).map((p) => ({ id: p.id, aor: p.aor, name: p.name, sends: p.sends }));
}
