/**
 * The SIPREC recording server against a SIP client we did not write: Debian's
 * SIPp (sip-tester) plays the SRC from scenarios of ours (test/sipp/), and
 * the streams' RTP comes from our sender in another process, to the ports
 * callvault's 200 OK gave each a=label.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DigestAuth } from '../daemon/sip/DigestAuth.js';
import { parseSipMessage, type SipRequest } from '../daemon/sip/SipMessage.js';
import { dominates, firstSound, readWav, rms, soundFraction, tonePower } from './support/audio.js';
import { cli } from './support/cli.js';
import { DaemonProcess, sendRtp, testConfigYaml, type LogLine } from './support/daemon.js';
import { parsePrometheusText, sampleValue } from './support/promtext.js';
import { offerSdp, runSipp, siprecBody, type SippRun } from './support/sipp.js';
import { selfSigned } from './support/pki.js';
import { toneStream } from './support/rtpPlan.js';
import { ffmpegTone } from './support/ffmpeg.js';

const sipYaml = (allowed = '[127.0.0.1]') => testConfigYaml(`sip:\n  listen: 127.0.0.1:0\n  allowedSources: ${allowed}\n`);

async function srs(yaml = sipYaml()): Promise<{ d: DaemonProcess; target: string }> {
  const d = await DaemonProcess.start({ yaml });
  const listening = await d.waitFor((l) => l.msg === 'SIP listening');
  return { d, target: listening.sip as string };
}

/** RFC 7865 metadata: participants with their AORs, the streams they send by label. */
function rfcMetadata(parties: readonly { aor: string; sends: string }[], ns = 'urn:ietf:params:xml:ns:recording:1'): string {
  const p = parties.map((x, i) => `  <participant participant_id="P${i}"><nameID aor="${x.aor}"><name>party ${i}</name></nameID></participant>`);
  const s = parties.map((x, i) => `  <stream stream_id="S${i}" session_id="sess1"><label>${x.sends}</label></stream>`);
  const a = parties.map((_, i) => `  <participantstreamassoc participant_id="P${i}"><send>S${i}</send></participantstreamassoc>`);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<recording xmlns='${ns}'>\n  <datamode>complete</datamode>\n  <session session_id="sess1"></session>\n${[...p, ...s, ...a].join('\n')}\n</recording>\n`;
}

/**
 * One recorded SIPREC call: SIPp sends the INVITE and holds the call; once
 * callvault has answered, each label's tone goes to the port it answered
 * for that label; then SIPp hangs up. Returns the sealed recording.
 */
async function recordSiprecCall(
  d: DaemonProcess,
  target: string,
  invite: { body: string; contentType: string; headers?: string[] },
  tones: Record<string, number>,
  run: Partial<SippRun> = {},
  how: { scenario?: 'siprec-call' | 'siprec-auth'; auth?: SippRun['auth'] } = {},
) {
  const seen = d.logs.length;
  const sipp = runSipp(
    { scenario: how.scenario ?? 'siprec-call', ...invite },
    { target, transport: run.transport ?? 'udp', holdMs: run.holdMs ?? 2500, ...(how.auth ? { auth: how.auth } : {}) },
  );
  const answered = await d.waitFor((l: LogLine) => l.msg === 'SIPREC session answered' && d.logs.indexOf(l) >= seen, 15_000);
  const streams = answered.streams as { label: string; port: number }[];
  await sendRtp({
    streams: Object.entries(tones).map(([label, freq]) => toneStream(streams.find((s) => s.label === label)!.port, freq)),
  });
  const done = await sipp;
  assert.equal(done.status, 0, `SIPp: ${done.output.slice(-2000)}\n${done.messages.slice(-3000)}`);
  const st = await d.waitForState(answered.recordingId as string, 'sealed');
  const wav = await readWav(path.join(st.dir, `${st.recordingId}.wav`));
  return { st, wav, answer: done.messages };
}

/** Debian's ffmpeg as an SRTP sender (AES_CM_128_HMAC_SHA1_80, PCMU): a 2 s tone to 127.0.0.1:`port`, its RTCP to `rtcpPort`. */
function ffmpegSrtp(port: number, keyBase64: string, freq: number, rtcpPort: number): Promise<void> {
  return ffmpegTone({ port, freq, seconds: 2, rtcpPort, srtpKeyBase64: keyBase64 });
}

/** An offer of SRTP streams, one per label with its own SDES key. */
function srtpOffer(keys: Readonly<Record<string, string>>): string {
  let sdp = offerSdp(Object.keys(keys)).replaceAll('RTP/AVP', 'RTP/SAVP');
  for (const [label, key] of Object.entries(keys))
    sdp = sdp.replace(`a=label:${label}`, `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${key}\na=label:${label}`);
  return sdp;
}

/** What `callvault recordings list --number N` finds. */
function idsByNumber(d: DaemonProcess, number: string): string[] {
  return JSON.parse(cli(d, ['recordings', 'list', '--number', number, '--json']).stdout).recordings.map(
    (r: { recordingId: string }) => r.recordingId,
  );
}

function assertChannels(wav: Awaited<ReturnType<typeof readWav>>, left: number, right: number): void {
  const [L, R] = wav.channels_ as [Float64Array, Float64Array];
  assert.ok(dominates(L, left, right), `left channel holds ${left} Hz`);
  assert.ok(dominates(R, right, left), `right channel holds ${right} Hz`);
}

test('SIPREC over UDP: SIPp as the SRC, two streams recorded into one stereo WAV, caller left by the metadata; the participants reach the metadata and the index', async () => {
  const { d, target } = await srs();
  try {
    const invite = siprecBody(
      offerSdp(['1', '2']),
      rfcMetadata([
        { aor: 'sip:+4930111222@example.com', sends: '1' },
        { aor: 'sip:+4989000111@example.com', sends: '2' },
      ]),
    );
    const { st, wav, answer } = await recordSiprecCall(d, target, invite, { 1: 440, 2: 1000 });
    assert.equal(wav.channels, 2);
    assertChannels(wav, 440, 1000);
    // A plain SDP answer, each stream's label echoed, recvonly.
    assert.match(answer, /SIP\/2\.0 200 OK[\s\S]*Content-Type: application\/sdp[\s\S]*a=label:1\r\na=recvonly[\s\S]*a=label:2\r\na=recvonly/);
    const meta = st.metadata;
    assert.equal(meta.endReason, 'bye');
    assert.deepEqual([meta.legs.caller.number, meta.legs.callee.number], ['+4930111222', '+4989000111']);
    assert.deepEqual(meta.siprec.labels, { caller: '1', callee: '2' });
    assert.deepEqual(
      meta.siprec.participants.map((p: any) => p.aor),
      ['sip:+4930111222@example.com', 'sip:+4989000111@example.com'],
    );
    assert.match(meta.siprec.decided, /first in the metadata/);
    assert.equal(meta.siprec.src.transport, 'udp');
    assert.deepEqual(idsByNumber(d, '+4930111222'), [st.recordingId], 'recordings list --number finds the SIPREC call');
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('SIPREC shaped as Sonus sends it (namespace without :1, tns: prefixes, label 1 sent by the callee, callData naming the caller), over TCP: the caller is the one the metadata names', async () => {
  const { d, target } = await srs();
  try {
    const metadata = `<?xml version="1.0" encoding="UTF-8"?>
<tns:recording xmlns:tns="urn:ietf:params:xml:ns:recording">
  <tns:datamode>complete</tns:datamode>
  <tns:session session_id="s-42"><tns:callData><tns:fromhdr>&lt;sip:+4930555000@pbx.example&gt;;tag=1</tns:fromhdr><tns:tohdr>&lt;sip:+4940777000@pbx.example&gt;</tns:tohdr><tns:callid>orig-call-1</tns:callid></tns:callData></tns:session>
  <tns:participant participant_id="callee-p"><tns:nameID aor="sip:+4940777000@pbx.example"/></tns:participant>
  <tns:participant participant_id="caller-p"><tns:nameID aor="sip:+4930555000@pbx.example"/></tns:participant>
  <tns:stream stream_id="st-a" session_id="s-42"><tns:label>1</tns:label></tns:stream>
  <tns:stream stream_id="st-b" session_id="s-42"><tns:label>2</tns:label></tns:stream>
  <tns:participantstreamassoc participant_id="callee-p"><tns:send>st-a</tns:send></tns:participantstreamassoc>
  <tns:participantstreamassoc participant_id="caller-p"><tns:send>st-b</tns:send></tns:participantstreamassoc>
</tns:recording>`;
    const invite = siprecBody(offerSdp(['1', '2']), metadata, { boundary: 'unique-boundary-1', metadataType: 'application/rs-metadata' });
    // Label 2 is the caller's (440 Hz), label 1 the callee's (1000 Hz): SDP order would swap them.
    const { st, wav } = await recordSiprecCall(d, target, invite, { 1: 1000, 2: 440 }, { transport: 'tcp' });
    assertChannels(wav, 440, 1000);
    const meta = st.metadata;
    assert.deepEqual(meta.siprec.labels, { caller: '2', callee: '1' });
    assert.match(meta.siprec.decided, /original call's From/);
    assert.equal(meta.siprec.originalCall.callId, 'orig-call-1');
    assert.deepEqual([meta.legs.caller.number, meta.legs.callee.number], ['+4930555000', '+4940777000']);
    assert.equal(meta.siprec.src.transport, 'tcp');
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('SIPREC refusals: OPTIONS is answered 200; a source outside sip.allowedSources gets 403 (counted) until SIGHUP allows it; a session interval under 90 s gets 422; an offer of only G.729 gets 488 with a Warning', async () => {
  const { d, target } = await srs(sipYaml('[192.0.2.10]'));
  try {
    const options = { scenario: 'request' as const, method: 'OPTIONS', body: '', contentType: 'application/sdp' };
    const refused = await runSipp({ ...options, expect: 403 }, { target, transport: 'udp' });
    assert.equal(refused.status, 0, refused.messages);
    const invite = siprecBody(
      offerSdp(['1', '2']),
      rfcMetadata([
        { aor: 'sip:a@x', sends: '1' },
        { aor: 'sip:b@x', sends: '2' },
      ]),
    );
    assert.equal((await runSipp({ scenario: 'request', ...invite, expect: 403 }, { target, transport: 'udp' })).status, 0);
    await writeFile(d.configFile, sipYaml('[127.0.0.1]'));
    process.kill(d.child.pid!, 'SIGHUP');
    await d.waitFor((l) => l.msg === 'config reloaded');
    const allowed = await runSipp({ ...options, expect: 200 }, { target, transport: 'udp' });
    assert.equal(allowed.status, 0, allowed.messages);
    assert.match(allowed.messages, /SIP\/2\.0 200 OK[\s\S]*Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE/);
    // Session timers (RFC 4028): an interval below 90 s is refused with 422 and our Min-SE.
    const short = await runSipp(
      {
        scenario: 'request',
        ...siprecBody(
          offerSdp(['1', '2']),
          rfcMetadata([
            { aor: 'sip:a@x', sends: '1' },
            { aor: 'sip:b@x', sends: '2' },
          ]),
        ),
        headers: ['Session-Expires: 30', 'Supported: timer'],
        expect: 422,
      },
      { target, transport: 'udp' },
    );
    assert.equal(short.status, 0, short.messages);
    assert.match(short.messages, /SIP\/2\.0 422 Session Interval Too Small[\s\S]*Min-SE: 90/);
    const g729 = siprecBody(
      offerSdp(['1', '2'], '18', 'a=rtpmap:18 G729/8000'),
      rfcMetadata([
        { aor: 'sip:a@x', sends: '1' },
        { aor: 'sip:b@x', sends: '2' },
      ]),
    );
    const notAcceptable = await runSipp({ scenario: 'request', ...g729, expect: 488 }, { target, transport: 'udp' });
    assert.equal(notAcceptable.status, 0, notAcceptable.messages);
    assert.match(notAcceptable.messages, /Warning: 399 callvault "no stream offers a codec callvault records \(PCMU, PCMA\); offered: G729"/);
    const at = (await d.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
    const m = parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text());
    assert.equal(sampleValue(m, 'callvault_sip_rejected_total', { reason: 'source' }), 2);
    assert.equal(sampleValue(m, 'callvault_sip_rejected_total', { reason: 'no-codec' }), 1);
    assert.equal(sampleValue(m, 'callvault_sip_requests_total', { method: 'OPTIONS', response: '200' }), 1);
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('malformed SIP (garbage, truncated, a Content-Length longer than the body, 64 KB of headers) is dropped and counted; the SRS keeps answering', async () => {
  const { d, target } = await srs();
  try {
    const [host, port] = [target.split(':')[0]!, Number(target.split(':')[1])];
    const sock = createSocket('udp4');
    const send = (b: Buffer) => new Promise<void>((r) => sock.send(b, port, host, () => r()));
    await send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]));
    await send(Buffer.from('INVITE sip:srs@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\nCall-ID: x'));
    await send(Buffer.from('OPTIONS sip:srs@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK2\r\nContent-Length: 500\r\n\r\nshort'));
    await send(
      Buffer.from(`OPTIONS sip:srs@127.0.0.1 SIP/2.0\r\n${'X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(1800)}\r\n`.slice(0, 65_000)),
    );
    sock.close();
    const ok = await runSipp(
      { scenario: 'request', method: 'OPTIONS', body: '', contentType: 'application/sdp', expect: 200 },
      { target, transport: 'udp' },
    );
    assert.equal(ok.status, 0, ok.messages);
    assert.equal(d.child.exitCode, null, 'the daemon lives');
    const at = (await d.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
    const m = parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text());
    assert.ok(sampleValue(m, 'callvault_sip_malformed_total', { transport: 'udp' }) >= 3, 'the unreadable datagrams are counted');
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('SIPREC mid-call, as Avaya SBCE does it: a dummy participant first, a hold by re-INVITE (a=inactive) longer than the RTP timeout, resume, the real participants in an UPDATE — the recording keeps the call length, marks the pause, and indexes the real numbers', async () => {
  const { d, target } = await srs(sipYaml().replace('calls:\n', 'calls:\n  rtpTimeoutSeconds: 2\n'));
  try {
    const dummy = `<?xml version="1.0" encoding="UTF-8"?>\n<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>partial</datamode><session session_id="av1"/><participant participant_id="d1"><nameID aor="sip:ASBCE@asbce.com"/></participant><stream stream_id="s1" session_id="av1"><label>1</label></stream><stream stream_id="s2" session_id="av1"><label>2</label></stream></recording>\n`;
    const invite = siprecBody(offerSdp(['1', '2']), dummy);
    const update = siprecBody(
      offerSdp(['1', '2']),
      rfcMetadata([
        { aor: 'sip:+4930999888@pbx.example', sends: '1' },
        { aor: 'tel:+4969555444', sends: '2' },
      ]),
    );
    const seen = d.logs.length;
    const after = (l: LogLine) => d.logs.indexOf(l) >= seen;
    const sipp = runSipp(
      {
        scenario: 'siprec-hold',
        ...invite,
        hold: {
          holdBody: offerSdp(['1', '2'], undefined, undefined, 'inactive'),
          resumeBody: offerSdp(['1', '2']),
          updateBody: update.body,
          updateContentType: update.contentType,
          holdMs: 3000,
        },
      },
      { target, transport: 'udp', holdMs: 1500 },
    );
    const answered = await d.waitFor((l) => l.msg === 'SIPREC session answered' && after(l), 15_000);
    const port = (label: string) => (answered.streams as { label: string; port: number }[]).find((s) => s.label === label)!.port;
    const burst = () =>
      sendRtp({
        streams: [
          ['1', 440],
          ['2', 1000],
        ].map(([label, freq]) => ({
          port: port(label as string),
          law: 'PCMU' as const,
          payloadType: 0,
          ssrc: 7 + Number(label),
          seqStart: randomInt(0, 60000),
          tsStart: randomInt(0, 2 ** 31),
          freq: freq as number,
          durationMs: 1000,
        })),
      });
    await burst();
    await d.waitFor((l) => l.msg === 'SIPREC session changed' && after(l) && (l.paused as any).caller === true, 10_000);
    const resumed = await d.waitFor((l) => l.msg === 'SIPREC session changed' && after(l) && (l.paused as any).caller === false, 10_000);
    assert.ok(resumed);
    await burst();
    const done = await sipp;
    assert.equal(done.status, 0, `${done.output.slice(-1500)}\n${done.messages.slice(-3000)}`);
    assert.match(done.messages, /a=label:1\r\na=inactive/, 'the hold is answered inactive');
    const st = await d.waitForState(answered.recordingId as string, 'sealed');
    const meta = st.metadata;
    assert.equal(meta.endReason, 'bye', 'a 3 s hold with a 2 s RTP timeout did not end the call');
    const pauses = meta.pauses.filter((p: any) => p.leg === 'caller');
    assert.equal(pauses.length, 1, JSON.stringify(meta.pauses));
    assert.ok(pauses[0].toMs - pauses[0].fromMs >= 2500, `pause of ${pauses[0].toMs - pauses[0].fromMs} ms`);
    const wav = await readWav(path.join(st.dir, `${st.recordingId}.wav`));
    assert.ok(Math.abs(wav.dataBytes / 32 - meta.durationMs) <= 40, 'the file is as long as the call');
    assert.ok(meta.durationMs >= 5000, `the call lasted ${meta.durationMs} ms`);
    assertChannels(wav, 440, 1000);
    // After the resume the RTP comes from a new source port (a new sender socket): the legs learned it again.
    const [L, R] = wav.channels_ as [Float64Array, Float64Array];
    const resumedAt = Math.round(pauses[0].toMs * 8) + 8 * 200;
    assert.ok(
      tonePower(L, 440, resumedAt, resumedAt + 8 * 600) > 100 * tonePower(L, 1000, resumedAt, resumedAt + 8 * 600),
      'the caller is heard again after the resume',
    );
    assert.ok(tonePower(R, 1000, resumedAt, resumedAt + 8 * 600) > 100 * tonePower(R, 440, resumedAt, resumedAt + 8 * 600), 'and the callee');
    assert.equal(meta.siprec.updates.length, 1);
    assert.equal(meta.siprec.updates[0].method, 'UPDATE');
    assert.deepEqual([meta.legs.caller.number, meta.legs.callee.number], ['+4930999888', '+4969555444']);
    assert.equal(meta.siprec.participants[0].aor, 'sip:ASBCE@asbce.com', 'the first metadata is kept as it came');
    assert.deepEqual(idsByNumber(d, '+4969555444'), [st.recordingId], 'the index has the numbers the UPDATE named');
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('SIPREC as other SRCs shape it: Cisco CUBE (a third application/gtd part, Session-ID), Oracle (draft schema, no :1, callingParty extension), BroadWorks (metadata part first, one mixed stream), AudioCodes (bare-LF body, raw over UDP)', async () => {
  const { d, target } = await srs();
  try {
    // CUBE: an extra part, the vendor's Session-ID header, participants in RFC form.
    const cube = siprecBody(
      offerSdp(['1', '2']),
      rfcMetadata([
        { aor: 'sip:+4930123001@cube.example', sends: '1' },
        { aor: 'sip:+4930123002@cube.example', sends: '2' },
      ]),
      { boundary: 'uniqueBoundary' },
    );
    const gtd = `\n--uniqueBoundary\nContent-Type: application/gtd\nContent-Disposition: signal;handling=optional\n\nIAM,\nPRN,isdn*,,NET5*,\n`;
    const cubeInvite = {
      body: cube.body.replace('\n--uniqueBoundary--', `${gtd}--uniqueBoundary--`),
      contentType: cube.contentType,
      headers: ['Session-ID: ab30317f1a784dc48ff824d0d3715d86;remote=00000000000000000000000000000000'],
    };
    const c = await recordSiprecCall(d, target, cubeInvite, { 1: 440, 2: 1000 });
    assertChannels(c.wav, 440, 1000);
    assert.equal(c.st.metadata.siprec.vendorCallIds['Session-ID'], 'ab30317f1a784dc48ff824d0d3715d86');

    // Oracle: the older draft form, the namespace without :1, the calling party marked by an extension.
    const oracle = `<?xml version='1.0' encoding='UTF-8'?>
<recording xmlns='urn:ietf:params:xml:ns:recording' xmlns:apkt='http://acmepacket.com/siprec/extensiondata'>
  <datamode>complete</datamode>
  <session id="OracleSession1"><start-time>2026-12-01T10:00:00</start-time></session>
  <participant id="pA" session="OracleSession1"><nameID aor="sip:+4940100200@oracle.example"><name>Callee</name></nameID><send>strB</send><extensiondata><apkt:callingParty>false</apkt:callingParty></extensiondata></participant>
  <participant id="pB" session="OracleSession1"><nameID aor="sip:+4940100100@oracle.example"><name>Caller</name></nameID><send>strA</send><extensiondata><apkt:callingParty>true</apkt:callingParty></extensiondata></participant>
  <stream id="strA" session="OracleSession1"><label>10</label></stream>
  <stream id="strB" session="OracleSession1"><label>11</label></stream>
</recording>`;
    const o = await recordSiprecCall(d, target, siprecBody(offerSdp(['11', '10']), oracle), { 10: 440, 11: 1000 }, { transport: 'tcp' });
    assertChannels(o.wav, 440, 1000);
    assert.deepEqual(o.st.metadata.siprec.labels, { caller: '10', callee: '11' });
    assert.match(o.st.metadata.siprec.decided, /calling party by a vendor extension/);
    assert.equal(o.st.metadata.legs.caller.number, '+4940100100');

    // BroadWorks: the metadata part first, its own namespace, one mixed stream: recorded on the caller's channel.
    const bw = `<?xml version="1.0" encoding="UTF-8"?><recording xmlns="urn:ietf:params:xml:ns:siprec"><datamode>complete</datamode><session session_id="bw1"/><participant participant_id="u1"><nameID aor="sip:2025551000@bw.example"/></participant><stream stream_id="m1" session_id="bw1"><label>mixed</label></stream><participantstreamassoc participant_id="u1"><send>m1</send></participantstreamassoc></recording>`;
    const b = await recordSiprecCall(d, target, siprecBody(offerSdp(['mixed']), bw, { metadataFirst: true }), { mixed: 700 });
    const [BL, BR] = b.wav.channels_ as [Float64Array, Float64Array];
    assert.ok(tonePower(BL, 700) > 100 * tonePower(BR, 700), 'the mixed stream on the left, silence on the right');

    // AudioCodes: a body with bare LF line ends, its Content-Length exact: parsed without rewriting.
    const [host, port] = [target.split(':')[0]!, Number(target.split(':')[1])];
    const body = siprecBody(
      offerSdp(['1', '2']),
      rfcMetadata([
        { aor: 'sip:+4930777001@ac.example', sends: '1' },
        { aor: 'sip:+4930777002@ac.example', sends: '2' },
      ]),
      { boundary: 'boundary_ac1' },
    );
    const raw = Buffer.from(
      `INVITE sip:srs@${target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:39999;branch=z9hG4bKac1\r\nFrom: <sip:ac@127.0.0.1>;tag=ac1\r\nTo: <sip:srs@${target}>\r\nCall-ID: audiocodes-1@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:ac@127.0.0.1:39999>;src\r\nContent-Type: ${body.contentType}\r\nContent-Length: ${Buffer.byteLength(body.body)}\r\n\r\n${body.body}`,
    );
    const sock = createSocket('udp4');
    const replies: string[] = [];
    sock.on('message', (m) => replies.push(m.toString()));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    sock.send(raw, port, host);
    for (let i = 0; i < 50 && !replies.some((r) => r.startsWith('SIP/2.0 200')); i++) await new Promise((r) => setTimeout(r, 100));
    sock.close();
    const ok200 = replies.find((r) => r.startsWith('SIP/2.0 200'));
    assert.ok(ok200, replies.join('\n---\n'));
    assert.match(
      ok200,
      /a=label:1\r\na=recvonly\r\nm=audio \d+ RTP\/AVP 0 101\r\na=rtpmap:0 PCMU\/8000\r\na=rtpmap:101 telephone-event\/8000\r\na=label:2\r\na=recvonly/,
    );
    const ac = await d.waitFor((l) => l.msg === 'SIPREC session answered' && l.sipCallId === 'audiocodes-1@127.0.0.1');
    assert.ok(ac.recordingId);
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('SIPREC under load and at the limit: 50 concurrent sessions (one SIPp, UDP) each recorded with its own tones; past calls.maxConcurrent the SRS answers 503 with Retry-After so the SRC fails over', async () => {
  const { d, target } = await srs(sipYaml().replace('calls:\n', 'calls:\n  maxConcurrent: 50\n'));
  try {
    const n = 50;
    const seen = d.logs.length;
    const invite = siprecBody(
      offerSdp(['1', '2']),
      rfcMetadata([
        { aor: 'sip:+4930100000@x', sends: '1' },
        { aor: 'sip:+4989200000@x', sends: '2' },
      ]),
    );
    const load = runSipp({ scenario: 'siprec-call', ...invite }, { target, transport: 'udp', holdMs: 6000, calls: n, rate: 25 });
    let answered: LogLine[] = [];
    for (let i = 0; i < 150 && answered.length < n; i++) {
      answered = d.logs.filter((l, k) => k >= seen && l.msg === 'SIPREC session answered');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(answered.length, n);
    const full = await runSipp({ scenario: 'request', ...invite, expect: 503 }, { target, transport: 'tcp' });
    assert.equal(full.status, 0, full.messages);
    assert.match(full.messages, /SIP\/2\.0 503 Service Unavailable[\s\S]*Retry-After: \d+/);
    // Each session's own pair of tones, sent from one process as one SBC would.
    const freq = (k: number, leg: 0 | 1) => 250 + 25 * k + leg * 1500;
    await sendRtp({
      streams: answered.flatMap((a, k) =>
        (a.streams as { label: string; port: number }[]).map((s) => ({
          port: s.port,
          law: 'PCMU' as const,
          payloadType: 0,
          ssrc: 1000 + 2 * k + Number(s.label),
          seqStart: 1,
          tsStart: 1,
          freq: freq(k, s.label === '1' ? 0 : 1),
          durationMs: 1500,
        })),
      ),
    });
    const done = await load;
    assert.equal(done.status, 0, done.output.slice(-2000));
    for (const [k, a] of answered.entries()) {
      const st = await d.waitForState(a.recordingId as string, 'sealed', 30_000);
      assertChannels(await readWav(path.join(st.dir, `${st.recordingId}.wav`)), freq(k, 0), freq(k, 1));
    }
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('SIP over TLS: openssl s_client as the SRC gets a 200 OK with an SDP answer from the TLS listener', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-siptls-'));
  selfSigned(path.join(dir, 'key.pem'), path.join(dir, 'cert.pem'), '/CN=localhost');
  const yaml = sipYaml().replace(
    '  allowedSources: [127.0.0.1]\n',
    `  allowedSources: [127.0.0.1]\n  tls:\n    listen: 127.0.0.1:0\n    certFile: ${path.join(dir, 'cert.pem')}\n    keyFile: ${path.join(dir, 'key.pem')}\n`,
  );
  const { d } = await srs(yaml);
  try {
    const tlsAt = (await d.waitFor((l) => l.msg === 'SIP listening')).tls as string;
    const body = siprecBody(
      offerSdp(['1', '2']),
      rfcMetadata([
        { aor: 'sip:+4930444001@tls.example', sends: '1' },
        { aor: 'sip:+4930444002@tls.example', sends: '2' },
      ]),
    );
    const invite = `INVITE sip:srs@${tlsAt};transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKtls1\r\nFrom: <sip:src@127.0.0.1>;tag=tls1\r\nTo: <sip:srs@${tlsAt}>\r\nCall-ID: tls-call-1@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:src@127.0.0.1:5999;transport=tls>;+sip.src\r\nContent-Type: ${body.contentType}\r\nContent-Length: ${Buffer.byteLength(body.body)}\r\n\r\n${body.body}`;
    const client = spawn(
      'openssl',
      ['s_client', '-connect', tlsAt, '-CAfile', path.join(dir, 'cert.pem'), '-verify_return_error', '-quiet', '-ign_eof'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let out = '';
    client.stdout.on('data', (c: Buffer) => (out += c.toString()));
    client.stdin.write(invite);
    for (let i = 0; i < 100 && !/SIP\/2\.0 200 OK[\s\S]*a=label:2\r\na=recvonly/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    client.kill();
    assert.match(out, new RegExp(`SIP/2\\.0 200 OK[\\s\\S]*Contact: <sip:callvault@${tlsAt.replaceAll('.', '\\.')};transport=tls>`), out);
    assert.match(out, /SIP\/2\.0 200 OK[\s\S]*a=label:1\r\na=recvonly[\s\S]*a=label:2\r\na=recvonly/, out);
    const answered = await d.waitFor((l) => l.msg === 'SIPREC session answered' && l.sipCallId === 'tls-call-1@127.0.0.1');
    assert.match(answered.src as string, /^tls:/);
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('SDES-SRTP (RTP/SAVP, a=crypto, as Oracle records SRTP calls): answered with our own key per stream, and ffmpeg SRTP senders are decrypted and recorded', async () => {
  const { d, target } = await srs();
  const rtcpSink = createSocket('udp4');
  await new Promise<void>((r) => rtcpSink.bind(0, '127.0.0.1', () => r()));
  try {
    const keys = { 1: randomBytes(30).toString('base64'), 2: randomBytes(30).toString('base64') };
    const invite = siprecBody(
      srtpOffer(keys),
      rfcMetadata([
        { aor: 'sip:+4930666001@oracle.example', sends: '1' },
        { aor: 'sip:+4930666002@oracle.example', sends: '2' },
      ]),
    );
    const seen = d.logs.length;
    const sipp = runSipp({ scenario: 'siprec-call', ...invite }, { target, transport: 'udp', holdMs: 4000 });
    const answered = await d.waitFor((l) => l.msg === 'SIPREC session answered' && d.logs.indexOf(l) >= seen, 15_000);
    const port = (label: string) => (answered.streams as { label: string; port: number }[]).find((s) => s.label === label)!.port;
    const ff = (label: '1' | '2', freq: number) => ffmpegSrtp(port(label), keys[label], freq, rtcpSink.address().port);
    await Promise.all([ff('1', 440), ff('2', 1000)]);
    const done = await sipp;
    assert.equal(done.status, 0, done.messages.slice(-3000));
    const ours = [...done.messages.matchAll(/a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+/=]+)/g)].map((m) => m[1]);
    const answer = done.messages.slice(done.messages.indexOf('SIP/2.0 200 OK'));
    assert.match(answer, /m=audio \d+ RTP\/SAVP 0 101[\s\S]*a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:[\s\S]*a=label:1/);
    assert.ok(ours.length >= 4 && !ours.slice(2).includes(keys[1]) && !ours.slice(2).includes(keys[2]), 'the answer carries keys of our own');
    const st = await d.waitForState(answered.recordingId as string, 'sealed');
    const wav = await readWav(path.join(st.dir, `${st.recordingId}.wav`));
    assertChannels(wav, 440, 1000);
    // ffmpeg packs about 175 ms of G.711 into each packet: 2 s are a dozen packets or so, none lost.
    for (const leg of ['caller', 'callee']) {
      assert.ok(st.metadata.legs[leg].received >= 10 && st.metadata.legs[leg].lost === 0, `${leg}: ${JSON.stringify(st.metadata.legs[leg])}`);
    }
    const [L] = wav.channels_ as [Float64Array];
    assert.ok(soundFraction(L, firstSound(L), firstSound(L) + 8 * 1800) > 0.95, 'the decrypted audio is continuous');
  } finally {
    rtcpSink.close();
    assert.equal(await d.stop(), 0);
  }
});

test('SDES re-key mid-call: a re-INVITE with new a=crypto keys is answered 200, the legs take the new keys, and ffmpeg senders under them are decrypted and recorded; the re-key is in siprec.streamChanges', async () => {
  const { d, target } = await srs();
  const rtcpSink = createSocket('udp4');
  await new Promise<void>((r) => rtcpSink.bind(0, '127.0.0.1', () => r()));
  try {
    const before = { 1: randomBytes(30).toString('base64'), 2: randomBytes(30).toString('base64') };
    const after = { 1: randomBytes(30).toString('base64'), 2: randomBytes(30).toString('base64') };
    const invite = siprecBody(
      srtpOffer(before),
      rfcMetadata([
        { aor: 'sip:+4930666011@x', sends: '1' },
        { aor: 'sip:+4930666012@x', sends: '2' },
      ]),
    );
    const seen = d.logs.length;
    const sipp = runSipp(
      {
        scenario: 'siprec-hold',
        ...invite,
        hold: {
          holdBody: srtpOffer(after),
          resumeBody: srtpOffer(after),
          updateBody: srtpOffer(after),
          updateContentType: 'application/sdp',
          holdMs: 3000,
        },
      },
      { target, transport: 'udp', holdMs: 2800 },
    );
    const answered = await d.waitFor((l) => l.msg === 'SIPREC session answered' && d.logs.indexOf(l) >= seen, 15_000);
    const port = (label: string) => (answered.streams as { label: string; port: number }[]).find((s) => s.label === label)!.port;
    const rtcp = rtcpSink.address().port;
    await Promise.all([ffmpegSrtp(port('1'), before[1], 440, rtcp), ffmpegSrtp(port('2'), before[2], 1000, rtcp)]);
    await d.waitFor((l) => l.msg === 'SIPREC session changed' && d.logs.indexOf(l) >= seen, 15_000);
    await Promise.all([ffmpegSrtp(port('1'), after[1], 440, rtcp), ffmpegSrtp(port('2'), after[2], 1000, rtcp)]);
    const done = await sipp;
    assert.equal(done.status, 0, done.messages.slice(-3000));
    const st = await d.waitForState(answered.recordingId as string, 'sealed');
    const changes = st.metadata.siprec.streamChanges.map((c: any) => `${c.method} ${c.change} ${c.leg} ${c.label}`);
    assert.deepEqual(changes, ['INVITE key caller 1', 'INVITE key callee 2'], 'the re-key once; the same keys again are no change');
    const wav = await readWav(path.join(st.dir, `${st.recordingId}.wav`));
    const [L, R] = wav.channels_ as [Float64Array, Float64Array];
    const rekeyed = Math.round(st.metadata.siprec.streamChanges[0].atMs * 8);
    assert.ok(soundFraction(L, rekeyed, L.length) > 0.2 && soundFraction(R, rekeyed, R.length) > 0.2, 'audio under the new keys was recorded');
    assert.ok(
      tonePower(L, 440, rekeyed, L.length) > 100 * tonePower(L, 1000, rekeyed, L.length) &&
        tonePower(R, 1000, rekeyed, R.length) > 100 * tonePower(R, 440, rekeyed, R.length),
      'each on its channel',
    );
  } finally {
    rtcpSink.close();
    assert.equal(await d.stop(), 0);
  }
});

test('CANCEL before the answer: the CANCEL gets 200, the INVITE 487, and a recording being set up for it is ended (reason cancel), never left running', async () => {
  const { d, target } = await srs();
  try {
    const invite = siprecBody(
      offerSdp(['1', '2']),
      rfcMetadata([
        { aor: 'sip:+4930888001@x', sends: '1' },
        { aor: 'sip:+4930888002@x', sends: '2' },
      ]),
    );
    const r = await runSipp({ scenario: 'siprec-cancel', ...invite }, { target, transport: 'udp' });
    assert.equal(r.status, 0, r.messages.slice(-3000));
    assert.match(r.messages, /SIP\/2\.0 487 Request Terminated[\s\S]*CSeq: 1 INVITE/);
    // The CANCEL arrives while the recording is being set up (ports, files): set-up finishes, then it is ended.
    const started = await d.waitFor((l) => l.msg === 'call recording started');
    const st = await d.waitForState(started.recordingId as string, 'sealed');
    assert.equal(st.metadata.endReason, 'cancel');
    const at = (await d.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
    assert.equal(
      sampleValue(parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text()), 'callvault_active_calls'),
      0,
      'no call is left being recorded',
    );
    assert.ok(!d.logs.some((l) => l.msg === 'SIPREC session answered'), 'the cancelled INVITE was never answered 200');
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test("profiles match SIPREC calls by the participants' numbers: an excluded call is answered 200 with every stream declined (port 0), and nothing is recorded", async () => {
  const yaml = `${sipYaml()}profiles:\n  - name: private-lines\n    match: { numbers: ["+4930999*"] }\n    record: false\n  - name: default\n`;
  const { d, target } = await srs(yaml);
  try {
    const invite = siprecBody(
      offerSdp(['1', '2']),
      rfcMetadata([
        { aor: 'sip:+4930999123@x', sends: '1' },
        { aor: 'sip:+4989000000@x', sends: '2' },
      ]),
    );
    const r = await runSipp({ scenario: 'siprec-call', ...invite }, { target, transport: 'udp', holdMs: 500 });
    assert.equal(r.status, 0, r.messages.slice(-2000));
    const answer = r.messages.slice(r.messages.indexOf('SIP/2.0 200 OK'));
    assert.match(answer, /m=audio 0 RTP\/AVP 0\r\na=label:1\r\nm=audio 0 RTP\/AVP 0\r\na=label:2/);
    assert.ok(d.logs.some((l) => l.msg === 'call not recorded: excluded by its profile' && l.profile === 'private-lines'));
    assert.ok(!d.logs.some((l) => l.msg === 'call recording started'));
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('digest authentication (sip.digest): an INVITE without credentials is challenged (401, SHA-256 and MD5), SIPp answers the challenge and records; wrong credentials get 403', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-sipauth-'));
  await writeFile(path.join(dir, 'sbc1.pass'), 'sbc1-digest-secret-42\n', { mode: 0o600 });
  const yaml = sipYaml().replace(
    '  allowedSources: [127.0.0.1]\n',
    `  allowedSources: [127.0.0.1]\n  digest:\n    realm: callvault\n    algorithms: [MD5, SHA-256]\n    users:\n      - { username: sbc1, passwordFile: ${path.join(dir, 'sbc1.pass')} }\n`,
  );
  const { d, target } = await srs(yaml);
  try {
    const invite = siprecBody(
      offerSdp(['1', '2']),
      rfcMetadata([
        { aor: 'sip:+4930333001@x', sends: '1' },
        { aor: 'sip:+4930333002@x', sends: '2' },
      ]),
    );
    const bare = await runSipp({ scenario: 'request', ...invite, expect: 401 }, { target, transport: 'udp' });
    assert.equal(bare.status, 0, bare.messages);
    // Both challenges, in the configured order: SIPp, like many SBCs, answers only the first, and only MD5.
    assert.match(
      bare.messages,
      /WWW-Authenticate: Digest realm="callvault", nonce="[^"]+", qop="auth", algorithm=MD5[\s\S]*WWW-Authenticate: Digest realm="callvault", nonce="[^"]+", qop="auth", algorithm=SHA-256/,
    );
    const { st, wav } = await recordSiprecCall(
      d,
      target,
      invite,
      { 1: 440, 2: 1000 },
      {},
      { scenario: 'siprec-auth', auth: { username: 'sbc1', password: 'sbc1-digest-secret-42' } },
    );
    assertChannels(wav, 440, 1000);
    assert.equal(st.metadata.legs.caller.number, '+4930333001');
    const wrong = await runSipp(
      { scenario: 'siprec-auth', ...invite },
      { target, transport: 'udp', auth: { username: 'sbc1', password: 'not-the-secret' } },
    );
    assert.notEqual(wrong.status, 0);
    assert.match(wrong.messages, /SIP\/2\.0 403 Forbidden/);
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('digest with SHA-256 (RFC 8760), which SIPp cannot answer: a response computed as the RFC says is accepted, a wrong password or a forged nonce is not, an old nonce is stale', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-digest-'));
  await writeFile(path.join(dir, 'p'), 'a-long-sbc-password\n', { mode: 0o600 });
  const auth = (await DigestAuth.load({
    realm: 'callvault',
    algorithms: ['SHA-256', 'MD5'],
    users: [{ username: 'sbc2', passwordFile: path.join(dir, 'p') }],
  }))!;
  const nonce = /nonce="([^"]+)"/.exec(auth.challenge()[0]!)![1]!;
  const h = (s: string) => createHash('sha256').update(s).digest('hex');
  const request = (password: string, n = nonce) => {
    const ha1 = h(`sbc2:callvault:${password}`);
    const ha2 = h('INVITE:sip:srs@127.0.0.1');
    const response = h(`${ha1}:${n}:00000001:c0ffee:auth:${ha2}`);
    const msg = `INVITE sip:srs@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bKd\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:srs@127.0.0.1>\r\nCall-ID: d1\r\nCSeq: 2 INVITE\r\nAuthorization: Digest username="sbc2", realm="callvault", nonce="${n}", uri="sip:srs@127.0.0.1", response="${response}", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c0ffee"\r\nContent-Length: 0\r\n\r\n`;
    return parseSipMessage(Buffer.from(msg), true) as SipRequest;
  };
  assert.equal(auth.verify(request('a-long-sbc-password')), 'ok');
  assert.equal(auth.verify(request('a-wrong-password')), 'wrong');
  assert.equal(auth.verify(request('a-long-sbc-password', `${nonce.split('.')[0]}.forgedforgedforgedforgedforged00`)), 'wrong');
  assert.equal(auth.verify(request('a-long-sbc-password'), Date.now() + 301_000), 'stale');
});

test("SIPREC streams changed mid-call: a G.729-only re-offer is refused (488); both streams switch to PCMA and are recorded so; a transfer replaces the callee's stream with a new one (label 3) that takes its channel, a fourth stream is declined, and the new party is indexed", async () => {
  const { d, target } = await srs();
  try {
    const invite = siprecBody(
      offerSdp(['1', '2']),
      rfcMetadata([
        { aor: 'sip:+4930555111@x', sends: '1' },
        { aor: 'sip:+4930555222@x', sends: '2' },
      ]),
    );
    const pcma = offerSdp(['1', '2'], '8 101', 'a=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000');
    const g729 = offerSdp(['1', '2'], '18', 'a=rtpmap:18 G729/8000');
    // The transfer: label 1 goes on in PCMA, label 2 is removed (port 0), label 3 (the new party, PCMU) and label 4 are added.
    const sdp = ['v=0', 'o=- 2890844526 2890844530 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0'];
    const stream = (port: number, fmt: string, map: string, label: string) => [
      `m=audio ${port} RTP/AVP ${fmt}`,
      map,
      `a=label:${label}`,
      'a=sendonly',
    ];
    const transfer = `${[...sdp, ...stream(41000, '8', 'a=rtpmap:8 PCMA/8000', '1'), ...stream(0, '8', 'a=rtpmap:8 PCMA/8000', '2'), ...stream(41004, '0', 'a=rtpmap:0 PCMU/8000', '3'), ...stream(41006, '0', 'a=rtpmap:0 PCMU/8000', '4')].join('\n')}\n`;
    const update = siprecBody(
      transfer,
      rfcMetadata([
        { aor: 'sip:+4930555111@x', sends: '1' },
        { aor: 'sip:+4930555333@x', sends: '3' },
      ]),
    );
    const seen = d.logs.length;
    const after = (l: LogLine) => d.logs.indexOf(l) >= seen;
    const sipp = runSipp(
      {
        scenario: 'siprec-hold',
        ...invite,
        hold: { holdBody: g729, holdExpect: 488, resumeBody: pcma, updateBody: update.body, updateContentType: update.contentType, holdMs: 200 },
        afterUpdateMs: 2500,
      },
      { target, transport: 'udp', holdMs: 2500 },
    );
    const answered = await d.waitFor((l) => l.msg === 'SIPREC session answered' && after(l), 15_000);
    const port = (label: string) => (answered.streams as { label: string; port: number }[]).find((s) => s.label === label)!.port;
    // The same sender socket before and after the switch to PCMA: the stream did not move, so the leg keeps its source.
    const fromPort = { 1: 42000 + randomInt(0, 500) * 2, 2: 43000 + randomInt(0, 500) * 2 };
    const tones = (law: 'PCMU' | 'PCMA') =>
      [
        ['1', 440],
        ['2', 1000],
      ].map(([label, freq]) => ({
        port: port(label as string),
        fromPort: fromPort[label as '1' | '2'],
        law,
        payloadType: law === 'PCMU' ? 0 : 8,
        ssrc: 30 + Number(label),
        seqStart: law === 'PCMU' ? 1 : 200,
        tsStart: law === 'PCMU' ? 1 : 40_000,
        freq: freq as number,
        durationMs: 1000,
      }));
    await sendRtp({ streams: tones('PCMU') });
    await d.waitFor((l) => l.msg === 'SIPREC session changed' && after(l) && l.method === 'INVITE', 15_000);
    await sendRtp({ streams: tones('PCMA') });
    await d.waitFor((l) => l.msg === 'SIPREC session changed' && after(l) && l.method === 'UPDATE', 15_000);
    await sendRtp({
      streams: [
        { ...tones('PCMA')[0]!, seqStart: 400, tsStart: 80_000 },
        { port: port('2'), law: 'PCMU', payloadType: 0, ssrc: 77, seqStart: 9, tsStart: 9, freq: 1500, durationMs: 1000 },
      ],
    });
    const done = await sipp;
    assert.equal(done.status, 0, done.messages.slice(-4000));
    assert.match(done.messages, /SIP\/2\.0 488 Not Acceptable Here[\s\S]*Warning: 399 callvault "stream 1 offers no codec callvault records/);
    assert.match(done.messages, /m=audio \d+ RTP\/AVP 8 101\r\na=rtpmap:8 PCMA\/8000/, 'the switch to PCMA is answered in PCMA');
    const updateOk = done.messages.split(/-{10,}/).find((m) => /SIP\/2\.0 200 OK/.test(m) && /CSeq: 4 UPDATE/.test(m))!;
    assert.ok(updateOk, 'the UPDATE was answered 200');
    assert.match(updateOk, /m=audio 0 RTP\/AVP 8\r\na=label:2\r\n/, 'the removed stream is answered removed');
    assert.match(
      updateOk,
      new RegExp(`m=audio ${port('2')} RTP/AVP 0\\r\\na=rtpmap:0 PCMU/8000\\r\\na=label:3\\r\\na=recvonly`),
      "label 3 is received at the callee leg's port",
    );
    assert.match(updateOk, /m=audio 0 RTP\/AVP 0\r\na=label:4/, 'label 4 is declined');
    const st = await d.waitForState(answered.recordingId as string, 'sealed');
    const meta = st.metadata;
    assert.equal(meta.endReason, 'bye');
    const changes = meta.siprec.streamChanges.map((c: any) => `${c.method} ${c.change} ${c.leg} ${c.label}${c.codec ? ` ${c.codec}` : ''}`);
    assert.deepEqual(changes, [
      'INVITE codec caller 1 PCMA',
      'INVITE codec callee 2 PCMA',
      'UPDATE stream callee 3',
      'UPDATE codec callee 3 PCMU',
      'UPDATE declined null 4',
    ]);
    assert.deepEqual(meta.siprec.labels, { caller: '1', callee: '2' }, 'the labels as the session began');
    assert.equal(meta.legs.callee.number, '+4930555333', "the new party, from the UPDATE's metadata by label 3");
    assert.deepEqual(idsByNumber(d, '+4930555333'), [st.recordingId]);
    const wav = await readWav(path.join(st.dir, `${st.recordingId}.wav`));
    const [L, R] = wav.channels_ as [Float64Array, Float64Array];
    const at = (c: any) => Math.round(c.atMs * 8);
    const [switched, transferred] = [at(meta.siprec.streamChanges[0]), at(meta.siprec.streamChanges[2])];
    const before = [0, switched] as const;
    const inPcma = [switched, transferred] as const;
    assert.ok(
      tonePower(L, 440, ...inPcma) > 100 * tonePower(L, 1000, ...inPcma) && tonePower(R, 1000, ...inPcma) > 100 * tonePower(R, 440, ...inPcma),
      'PCMA: the caller left, the callee right',
    );
    // Decoded in the right law, the PCMA tone is as loud as the PCMU one (A-law read as μ-law would not be).
    const level = (x: Float64Array, r: readonly [number, number]) => rms(x, ...r) / Math.sqrt(soundFraction(x, ...r));
    assert.ok(Math.abs(level(L, inPcma) / level(L, before) - 1) < 0.2, `PCMA level ${level(L, inPcma)} vs PCMU ${level(L, before)}`);
    assert.ok(
      tonePower(R, 1500, transferred, R.length) > 100 * tonePower(R, 1000, transferred, R.length),
      'after the transfer the new party is on the right',
    );
    assert.ok(tonePower(L, 440, transferred, L.length) > 100 * tonePower(L, 1500, transferred, L.length), 'and the caller still on the left');
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('the SRS ends sessions itself, with BYE: a session the SRC does not refresh ends a third before its Session-Expires (RFC 4028); one whose SRC lacks timer support we refresh by UPDATE and end at shutdown; one whose RTP stops ends at the RTP timeout — each SRC is told why', async () => {
  const a = await srs();
  const b = await srs(sipYaml().replace('calls:\n', 'calls:\n  rtpTimeoutSeconds: 2\n'));
  let refreshed: ReturnType<typeof runSipp> | undefined;
  try {
    const body = siprecBody(
      offerSdp(['1', '2']),
      rfcMetadata([
        { aor: 'sip:+4930666001@x', sends: '1' },
        { aor: 'sip:+4930666002@x', sends: '2' },
      ]),
    );
    const answeredOn = (d: DaemonProcess, seen: number) => d.waitFor((l) => l.msg === 'SIPREC session answered' && d.logs.indexOf(l) >= seen, 15_000);
    const seenA = a.d.logs.length;
    // The SRC refreshes (it supports timers) but never does: our BYE comes at 90 − 30 = 60 s.
    const unrefreshed = runSipp(
      { scenario: 'siprec-srs-ends', ...body, headers: ['Session-Expires: 90', 'Supported: timer'], await: ['BYE'] },
      { target: a.target, transport: 'udp', timeoutS: 80 },
    );
    const first = await answeredOn(a.d, seenA);
    // No timer support: we refresh at 45 s; the session lasts until the daemon stops.
    refreshed = runSipp(
      { scenario: 'siprec-srs-ends', ...body, headers: ['Session-Expires: 90'], await: ['UPDATE', 'BYE'] },
      { target: a.target, transport: 'tcp', timeoutS: 100 },
    );
    const silent = runSipp({ scenario: 'siprec-srs-ends', ...body, await: ['BYE'] }, { target: b.target, transport: 'udp', timeoutS: 30 });
    const timedOut = await silent;
    assert.equal(timedOut.status, 0, timedOut.messages.slice(-3000));
    assert.match(timedOut.messages, /BYE sip:src@127\.0\.0\.1:\d+ SIP\/2\.0[\s\S]*?Reason: SIP;text="rtp-timeout"/);
    const bye = await b.d.waitFor((l) => l.msg === 'SIPREC session ended by the SRS; sending BYE');
    assert.equal((await b.d.waitForState(bye.recordingId as string, 'sealed')).metadata.endReason, 'rtp-timeout');

    const expired = await unrefreshed;
    assert.equal(expired.status, 0, expired.messages.slice(-3000));
    assert.match(expired.messages, /SIP\/2\.0 200 OK[\s\S]*?Session-Expires: 90;refresher=uac\r\nRequire: timer/);
    assert.match(expired.messages, /Reason: SIP;text="session-expired"/);
    const st = await a.d.waitForState(first.recordingId as string, 'sealed');
    assert.equal(st.metadata.endReason, 'session-expired');
    assert.ok(st.metadata.durationMs >= 55_000 && st.metadata.durationMs <= 65_000, `ended after ${st.metadata.durationMs} ms`);
    const at = (await a.d.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
    const scrape = parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text());
    assert.equal(sampleValue(scrape, 'callvault_sip_sent_total', { method: 'UPDATE', response: '200' }), 1, 'one refresh so far');
    assert.equal(sampleValue(scrape, 'callvault_sip_sent_total', { method: 'BYE', response: '200' }), 1);
  } finally {
    assert.equal(await a.d.stop(), 0);
    assert.equal(await b.d.stop(), 0);
  }
  const shutdown = await refreshed!;
  assert.equal(shutdown.status, 0, shutdown.messages.slice(-3000));
  assert.match(shutdown.messages, /SIP\/2\.0 200 OK[\s\S]*?Session-Expires: 90;refresher=uas/);
  assert.doesNotMatch(shutdown.messages, /Require: timer/, 'no Require: timer to an SRC without timer support');
  assert.match(shutdown.messages, /UPDATE sip:src@127\.0\.0\.1:\d+ SIP\/2\.0[\s\S]*?Session-Expires: 90;refresher=uas/);
  assert.match(shutdown.messages, /Reason: SIP;text="shutdown"/);
});

test("dialog rules, as an attacker or a confused SRC would test them: a request below the dialog's CSeq gets 500; two offers at once (the same resume twice) get one 200 and one 500 with Retry-After; a PRACK with no reliable provisional gets 481; Require: 100rel is answered without one, never 420; after BYE the dialog is gone (481)", async () => {
  const { d, target } = await srs();
  const [host, port] = [target.split(':')[0]!, Number(target.split(':')[1])];
  const sock = createSocket('udp4');
  const replies: string[] = [];
  sock.on('message', (m) => replies.push(m.toString()));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const local = `127.0.0.1:${sock.address().port}`;
  const callId = `rules-${randomBytes(4).toString('hex')}@127.0.0.1`;
  let toTag = '';
  const send = (method: string, cseq: number, branch: string, body = '', contentType = 'application/sdp', extra: string[] = []) =>
    sock.send(
      Buffer.from(
        [
          `${method} sip:srs@${target} SIP/2.0`,
          `Via: SIP/2.0/UDP ${local};branch=z9hG4bK${branch}`,
          `From: <sip:src@${local}>;tag=src1`,
          `To: <sip:srs@${target}>${toTag ? `;tag=${toTag}` : ''}`,
          `Call-ID: ${callId}`,
          `CSeq: ${cseq} ${method}`,
          `Contact: <sip:src@${local}>;+sip.src`,
          'Max-Forwards: 70',
          ...extra,
          ...(body ? [`Content-Type: ${contentType}`] : []),
          `Content-Length: ${Buffer.byteLength(body)}`,
          '',
          body,
        ].join('\r\n'),
      ),
      port,
      host,
    );
  /** The final response to `cseq METHOD` (waits up to 5 s). */
  const final = async (cseq: number, method: string, count = 1): Promise<string[]> => {
    const match = (r: string) => /^SIP\/2\.0 [2-6]\d\d/.test(r) && new RegExp(`CSeq: ${cseq} ${method}\\r\\n`).test(r);
    for (let i = 0; i < 50 && replies.filter(match).length < count; i++) await new Promise((r) => setTimeout(r, 100));
    return [...new Set(replies.filter(match))];
  };
  try {
    const invite = siprecBody(
      offerSdp(['1', '2']),
      rfcMetadata([
        { aor: 'sip:+4930777101@x', sends: '1' },
        { aor: 'sip:+4930777102@x', sends: '2' },
      ]),
    );
    send('INVITE', 10, 'inv1', invite.body, invite.contentType, ['Require: siprec, 100rel', 'Supported: 100rel']);
    const [ok] = await final(10, 'INVITE');
    assert.match(ok ?? '', /^SIP\/2\.0 200 OK/, `Require: 100rel: ${ok}`);
    assert.ok(!replies.some((r) => /^SIP\/2\.0 1[0-9][0-9]/.test(r) && !r.startsWith('SIP/2.0 100')), 'no provisional response but 100 Trying');
    toTag = /To: [^\r\n]*;tag=([^;\r\n]+)/.exec(ok!)![1]!;
    send('ACK', 10, 'ack1');

    send('INVITE', 5, 'old5', offerSdp(['1', '2']));
    assert.match((await final(5, 'INVITE'))[0] ?? '', /^SIP\/2\.0 500 [\s\S]*Warning: 399 callvault "CSeq 5 is not above 10/);
    send('ACK', 5, 'old5');

    send('INVITE', 11, 'hold11', offerSdp(['1', '2'], undefined, undefined, 'inactive'));
    assert.match((await final(11, 'INVITE'))[0] ?? '', /^SIP\/2\.0 200/);
    send('ACK', 11, 'ack11');

    // The same resume twice at once, as two UPDATEs: the first is still being applied (the legs re-armed) when the second comes.
    send('UPDATE', 12, 'up12', offerSdp(['1', '2']));
    send('UPDATE', 13, 'up13', offerSdp(['1', '2']));
    const [r12, r13] = [(await final(12, 'UPDATE'))[0] ?? '', (await final(13, 'UPDATE'))[0] ?? ''];
    assert.match(r12, /^SIP\/2\.0 200/, r12);
    assert.match(r13, /^SIP\/2\.0 500 [\s\S]*Retry-After: ([0-9]|10)\r\n/, r13);
    assert.match(r13, /another offer in this dialog is being answered/);

    send('PRACK', 14, 'pr14', '', '', ['RAck: 1 10 INVITE']);
    assert.match((await final(14, 'PRACK'))[0] ?? '', /^SIP\/2\.0 481/);

    send('BYE', 15, 'bye15');
    assert.match((await final(15, 'BYE'))[0] ?? '', /^SIP\/2\.0 200/);
    send('UPDATE', 16, 'up16', offerSdp(['1', '2']));
    assert.match((await final(16, 'UPDATE'))[0] ?? '', /^SIP\/2\.0 481/);
    const started = await d.waitFor((l) => l.msg === 'SIPREC session answered' && l.sipCallId === callId);
    const st = await d.waitForState(started.recordingId as string, 'sealed');
    assert.equal(st.metadata.endReason, 'bye');
    assert.equal(st.metadata.pauses.length, 2, 'one hold, one resume per leg — applied once');
  } finally {
    sock.close();
    assert.equal(await d.stop(), 0);
  }
});
