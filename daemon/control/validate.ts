import { isIP } from 'node:net';
import { ApiError } from '../errors.js';
import type { MediaAddress } from '../ingest/LegSource.js';
import type { StartCallRequest } from '../record/Recorder.js';

export const CODECS = ['PCMU', 'PCMA'] as const;
const DIRECTIONS = ['inbound', 'outbound', 'internal'] as const;
const TOP_KEYS = new Set(['callId', 'direction', 'caller', 'callee', 'codec', 'payloadType', 'dtmfPayloadType', 'group']);
const LEG_KEYS = new Set(['number', 'ssrc', 'user', 'groups', 'media']);
const MEDIA_KEYS = new Set(['ip', 'port']);
const MAX_GROUPS = 64;
// SIP Call-IDs are "word[@word]" of printable characters; no spaces or control characters.
const CALL_ID = /^[\x21-\x7e]{1,256}$/;
const NUMBER = /^[A-Za-z0-9+*#.@:_-]{1,64}$/;
// User and group names as the PBX knows them: printable, no control characters.
// biome-ignore lint/suspicious/noControlCharactersInRegex: a name must not contain control characters: this is the check.
const NAME = /^[^\x00-\x1f\x7f]{1,128}$/u;

function bad(message: string, field: string): never {
  throw new ApiError(400, 'BAD_REQUEST', message, { field });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function intIn(v: unknown, field: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(`${field} must be an integer from ${min} to ${max}`, field);
  return v;
}

function unknownKeys(obj: Record<string, unknown>, known: Set<string>, where: string): void {
  const extra = Object.keys(obj).filter((k) => !known.has(k));
  if (extra.length) bad(`unknown field${extra.length > 1 ? 's' : ''} ${extra.map((k) => where + k).join(', ')}`, where + (extra[0] as string));
}

function name(v: unknown, field: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !NAME.test(v)) bad(`${field} must be 1-128 characters without control characters`, field);
  return v;
}

function names(v: unknown, field: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length > MAX_GROUPS) bad(`${field} must be an array of at most ${MAX_GROUPS} names`, field);
  return v.map((g, i) => name(g, `${field}.${i}`) as string);
}

/** `{ip, port}`: where the PBX sends this leg's RTP from. */
function media(v: unknown, field: string): MediaAddress | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) bad(`${field} must be {"ip": "...", "port": N}: the address the PBX sends this leg's RTP from`, field);
  unknownKeys(v, MEDIA_KEYS, `${field}.`);
  if (typeof v.ip !== 'string' || isIP(v.ip) === 0) bad(`${field}.ip must be an IPv4 or IPv6 address`, `${field}.ip`);
  return { ip: v.ip, port: intIn(v.port, `${field}.port`, 1, 65535) ?? bad(`${field}.port is required`, `${field}.port`) };
}

function leg(body: Record<string, unknown>, role: 'caller' | 'callee') {
  const v = body[role];
  if (!isObject(v)) bad(`${role} is required: {"number": "..."}`, role);
  unknownKeys(v, LEG_KEYS, `${role}.`);
  if (typeof v.number !== 'string' || !NUMBER.test(v.number))
    bad(`${role}.number must be 1-64 characters of digits, letters, + * # . @ : _ -`, `${role}.number`);
  return {
    number: v.number,
    ssrc: intIn(v.ssrc, `${role}.ssrc`, 0, 0xffffffff),
    user: name(v.user, `${role}.user`),
    groups: names(v.groups, `${role}.groups`),
    media: media(v.media, `${role}.media`),
  };
}

/** The body of POST /v1/calls, checked field by field with a message naming the field. */
export function parseStartCall(body: unknown): StartCallRequest {
  if (!isObject(body)) bad('body must be a JSON object', '');
  unknownKeys(body, TOP_KEYS, '');
  if (typeof body.callId !== 'string' || !CALL_ID.test(body.callId)) bad('callId is required: 1-256 printable characters, no spaces', 'callId');
  if (!DIRECTIONS.includes(body.direction as (typeof DIRECTIONS)[number])) bad(`direction must be one of ${DIRECTIONS.join(', ')}`, 'direction');
  if (body.codec === undefined) bad(`codec is required: one of ${CODECS.join(', ')}`, 'codec');
  if (!CODECS.includes(body.codec as (typeof CODECS)[number]))
    bad(`unsupported codec ${JSON.stringify(body.codec)}; supported: ${CODECS.join(', ')}`, 'codec');
  return {
    callId: body.callId,
    direction: body.direction as StartCallRequest['direction'],
    codec: body.codec as StartCallRequest['codec'],
    caller: leg(body, 'caller'),
    callee: leg(body, 'callee'),
    payloadType: intIn(body.payloadType, 'payloadType', 0, 127),
    dtmfPayloadType: intIn(body.dtmfPayloadType, 'dtmfPayloadType', 96, 127),
    group: name(body.group, 'group'),
  };
}
