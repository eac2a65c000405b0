import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './daemon.js';

/** What a scenario template is filled with: the INVITE (or other request) body, its type, extra headers. */
export interface SippRequest {
  readonly scenario: 'siprec-call' | 'siprec-hold' | 'siprec-cancel' | 'siprec-auth' | 'siprec-srs-ends' | 'request';
  readonly body: string;
  readonly contentType: string;
  readonly headers?: readonly string[];
  /** request.xml: the method and the final response it must get. */
  readonly method?: string;
  readonly expect?: number;
  /** siprec-hold: the offers that pause and resume, the UPDATE's body, and how long the pause lasts. */
  /** siprec-srs-ends: the requests the SRS must send in the dialog, in order, each answered 200 OK. */
  readonly await?: readonly string[];
  /** siprec-hold: how long after the UPDATE the SRC hangs up (default 300 ms). */
  readonly afterUpdateMs?: number;
  readonly hold?: {
    readonly holdBody: string;
    readonly resumeBody: string;
    readonly updateBody: string;
    readonly updateContentType: string;
    readonly holdMs: number;
    readonly holdExpect?: number;
  };
}

export interface SippRun {
  readonly target: string;
  readonly transport: 'udp' | 'tcp';
  /** How long the call is held between ACK and BYE (siprec-call). */
  readonly holdMs?: number;
  /** Calls to make (each its own Call-ID), and how many a second; at most all of them at once. */
  readonly calls?: number;
  readonly rate?: number;
  /** How long SIPp waits for any one message (default 30 s). */
  readonly timeoutS?: number;
  /** Digest credentials SIPp answers a 401 with. */
  readonly auth?: { readonly username: string; readonly password: string };
}

export interface SippResult {
  readonly status: number | null;
  readonly output: string;
  /** Every message SIPp sent and received, as it logged them. */
  readonly messages: string;
}

let nextPort = 31000 + Math.floor(Math.random() * 2000);

/**
 * Run Debian's SIPp (sip-tester) as the SRC against `target`, one call of a
 * scenario of ours (test/sipp/*.xml) with the body filled in. Resolves when
 * SIPp exits; status 0 means every expected response came.
 */
export async function runSipp(req: SippRequest, run: SippRun): Promise<SippResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-sipp-'));
  const template = await readFile(path.join(ROOT, 'test/sipp', `${req.scenario}.xml`), 'utf8');
  const scenario = template
    .replaceAll('@@BODY@@', req.body.replace(/\n$/, ''))
    .replaceAll('@@CONTENT_TYPE@@', req.contentType)
    .replaceAll('@@HEADERS@@', (req.headers ?? []).map((h) => `${h}\n`).join(''))
    .replaceAll('@@METHOD@@', req.method ?? 'INVITE')
    .replaceAll('@@EXPECT@@', String(req.expect ?? 200))
    .replaceAll('@@HOLD_BODY@@', req.hold?.holdBody.replace(/\n$/, '') ?? '')
    .replaceAll('@@RESUME_BODY@@', req.hold?.resumeBody.replace(/\n$/, '') ?? '')
    .replaceAll('@@UPDATE_BODY@@', req.hold?.updateBody.replace(/\n$/, '') ?? '')
    .replaceAll('@@UPDATE_CONTENT_TYPE@@', req.hold?.updateContentType ?? 'application/sdp')
    .replaceAll('@@HOLD_MS@@', String(req.hold?.holdMs ?? 1000))
    .replaceAll('@@HOLD_EXPECT@@', String(req.hold?.holdExpect ?? 200))
    .replaceAll('@@AFTER_UPDATE_MS@@', String(req.afterUpdateMs ?? 300))
    .replaceAll('@@AWAIT@@', (req.await ?? []).map(awaitRequest).join(''));
  const file = path.join(dir, 'scenario.xml');
  await writeFile(file, scenario);
  const messages = path.join(dir, 'messages.log');
  const port = nextPort++;
  const calls = run.calls ?? 1;
  const args = [
    '-sf',
    file,
    '-m',
    String(calls),
    '-l',
    String(calls),
    '-r',
    String(run.rate ?? 10),
    '-d',
    String(run.holdMs ?? 1000),
    '-i',
    '127.0.0.1',
    '-p',
    String(port),
    '-t',
    run.transport === 'tcp' ? 't1' : 'u1',
    '-nostdin',
    '-timeout',
    `${run.timeoutS ?? 30}s`,
    '-timeout_error',
    '-trace_msg',
    '-message_file',
    messages,
    ...(run.auth ? ['-au', run.auth.username, '-ap', run.auth.password] : []),
    run.target,
  ];
  const child = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const status = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { status, output, messages: await readFile(messages, 'utf8').catch(() => '') };
}

/** A request the SRS sends, awaited and answered 200 OK (an UPDATE's with the Session-Expires it carried). */
function awaitRequest(method: string): string {
  return `  <recv request="${method}"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
${method === 'UPDATE' ? '[last_Session-Expires:]\n' : ''}Content-Length: 0

]]>
  </send>
`;
}

/** A SIPREC INVITE body: multipart/mixed with an SDP offer and the metadata, in that order unless `metadataFirst`. */
export function siprecBody(
  sdp: string,
  metadata: string,
  opts: { boundary?: string; metadataType?: string; metadataFirst?: boolean } = {},
): { body: string; contentType: string } {
  const boundary = opts.boundary ?? 'callvault-test-boundary';
  const sdpPart = `Content-Type: application/sdp\n\n${sdp}`;
  const metaPart = `Content-Type: ${opts.metadataType ?? 'application/rs-metadata+xml'}\nContent-Disposition: recording-session\n\n${metadata}`;
  const parts = opts.metadataFirst ? [metaPart, sdpPart] : [sdpPart, metaPart];
  return { body: `--${boundary}\n${parts.join(`\n--${boundary}\n`)}\n--${boundary}--`, contentType: `multipart/mixed;boundary="${boundary}"` };
}

/** An SDP offer of sendonly G.711 streams, one per label (`formats` per stream: default PCMU + telephone-event). */
export function offerSdp(
  labels: readonly string[],
  formats = '0 101',
  rtpmap = 'a=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000',
  direction = 'sendonly',
): string {
  const media = labels.map((label, i) => `m=audio ${41000 + 2 * i} RTP/AVP ${formats}\n${rtpmap}\na=label:${label}\na=${direction}`);
  return `${['v=0', 'o=- 2890844526 2890844526 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', ...media].join('\n')}\n`;
}
