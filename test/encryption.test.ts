import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { randomInt } from 'node:crypto';
import { statSync } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { newRecordingId, recordingDir } from '../daemon/record/recordingId.js';
import { readWav, tonePower } from './support/audio.js';
import { cli } from './support/cli.js';
import { DaemonProcess, MAIN, sendRtp, startCall, testConfigYaml } from './support/daemon.js';
import { parsePrometheusText, sampleValue } from './support/promtext.js';
import type { StreamPlan } from './support/rtpPlan.js';
import { selfSigned } from './support/pki.js';

const PROFILES = `profiles:
  - name: ivr
    match: { calleeNumbers: ["+4930222*"] }
    encryption: true
    dtmfDigits: encrypted
  - name: pci
    match: { calleeNumbers: ["+49301*"] }
    encryption: true
  - name: default
`;

/** The config with these KEK fingerprints pinned (encryption.trustedKeks). */
function withTrust(yaml: string, fingerprints: string[]): string {
  return `${yaml}encryption:\n  trustedKeks: [${fingerprints.map((f) => JSON.stringify(f)).join(', ')}]\n`;
}

interface Instance {
  readonly dataDir: string;
  readonly configFile: string;
  readonly passA: string;
  readonly passB: string;
  readonly shares: string[];
}

async function instance(yaml: string): Promise<Instance> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'callvault-enc-'));
  const inst = {
    dataDir: path.join(root, 'data'),
    configFile: path.join(root, 'callvault.yaml'),
    passA: path.join(root, 'a.pass'),
    passB: path.join(root, 'b.pass'),
  };
  await writeFile(inst.configFile, yaml);
  await writeFile(inst.passA, 'administrator-a-passphrase\n', { mode: 0o600 });
  await writeFile(inst.passB, 'administrator-b-passphrase\n', { mode: 0o600 });
  return { ...inst, shares: ['--share-a-pass-file', inst.passA, '--share-b-pass-file', inst.passB] };
}

function ok(inst: Instance, args: string[]): any {
  const r = cli(inst, [...args, '--json']);
  assert.equal(r.status, 0, `callvault ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** One short two-leg call (a tone per leg), ended and waited for in `state`. */
async function recordCall(d: DaemonProcess, callId: string, callee: string, state: string, callerDtmf: StreamPlan['dtmf'] = undefined): Promise<any> {
  const c = await startCall(d, { callId, callee: { number: callee } });
  await sendRtp({
    streams: (['caller', 'callee'] as const).map((r, i) => ({
      port: c.legs[r].port,
      law: 'PCMU' as const,
      payloadType: 0,
      ssrc: randomInt(1, 2 ** 31),
      seqStart: randomInt(0, 65536),
      tsStart: randomInt(0, 2 ** 32),
      freq: 440 * (i + 1),
      durationMs: callerDtmf ? 4000 : 600,
      ...(r === 'caller' && callerDtmf ? { dtmf: callerDtmf } : {}),
    })),
  });
  assert.equal((await d.api('DELETE', `/v1/calls/${callId}`)).status, 202);
  return d.waitForState(c.recordingId, state);
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

/** Files under the recordings tree that hold audio in the clear: a .wav, a staged leftover, or anything starting like a WAV. */
async function plaintextAudio(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const f of await walk(dir)) {
    const head = (await readFile(f)).subarray(0, 4).toString('latin1');
    if (f.endsWith('.wav') || f.endsWith('.partial') || head === 'RIFF' || head === 'RF64') found.push(f);
  }
  return found;
}

test('encryption at rest: fail closed without a KEK; dual-control shares; envelopes sealed with no plaintext left; verify with no key, --decrypt and export with both shares; rotation and revoke', async () => {
  const inst = await instance(testConfigYaml(PROFILES));
  await assert.rejects(DaemonProcess.start(inst), /exited with 1: [\s\S]*profile pci sets encryption: true but there is no key-encryption key/);

  // Dual control: one administrator alone, or one person holding both passphrases, cannot make or open a KEK.
  const alone = cli(inst, ['keys', 'init', '--share-a-pass-file', inst.passA]);
  assert.equal(alone.status, 2);
  assert.match(alone.stderr, /share B needs administrator B's passphrase.*--share-b-pass-file/);
  const same = cli(inst, ['keys', 'init', '--share-a-pass-file', inst.passA, '--share-b-pass-file', inst.passA]);
  assert.match(same.stderr, /both shares would have the same passphrase/);
  const safeA = path.join(inst.dataDir, '..', 'safe-a');
  const safeB = path.join(inst.dataDir, '..', 'safe-b');
  assert.notEqual(
    cli(inst, ['keys', 'init', ...inst.shares, '--backup-dir-a', safeA, '--backup-dir-b', safeA]).status,
    0,
    'one backup place for both custodians is refused',
  );
  for (const [a, b] of [
    ['aaaaaaaaaaaaaaaa', 'aaaaaaaaaaaaaaab'],
    ['short-pass-a', 'short-pass-b'],
  ]) {
    await writeFile(path.join(inst.dataDir, '..', 'weak-a'), `${a}\n`, { mode: 0o600 });
    await writeFile(path.join(inst.dataDir, '..', 'weak-b'), `${b}\n`, { mode: 0o600 });
    const weak = cli(inst, [
      'keys',
      'init',
      '--share-a-pass-file',
      path.join(inst.dataDir, '..', 'weak-a'),
      '--share-b-pass-file',
      path.join(inst.dataDir, '..', 'weak-b'),
    ]);
    assert.notEqual(weak.status, 0, `weak passphrases ${a} / ${b} refused`);
    assert.match(weak.stderr, /too guessable|at least 16 characters/);
  }
  const first = ok(inst, ['keys', 'init', ...inst.shares, '--backup-dir-a', safeA, '--backup-dir-b', safeB]);
  assert.deepEqual(await readdir(safeA), [`${first.kekId}.share-a.json`], "A's safe holds A's share only");
  assert.deepEqual(await readdir(safeB), [`${first.kekId}.share-b.json`]);
  const shareKdf = JSON.parse(await readFile(path.join(safeA, `${first.kekId}.share-a.json`), 'utf8')).kdf;
  assert.ok(shareKdf.N >= 2 ** 17, `scrypt N ${shareKdf.N}`);
  for (const share of first.shares as string[]) {
    assert.equal(statSync(share).mode & 0o777, 0o600, `${share} is readable by its owner only`);
    assert.doesNotMatch(await readFile(share, 'utf8'), /PRIVATE KEY/);
  }

  // The KEK exists but nothing outside the data dir vouches for it yet: still fail closed.
  await assert.rejects(DaemonProcess.start(inst), /exited with 1: [\s\S]*is in .* but not in encryption\.trustedKeks/);
  await writeFile(inst.configFile, withTrust(testConfigYaml(PROFILES), [first.fingerprintSha256]));
  const d = await DaemonProcess.start(inst);
  try {
    const pci = await recordCall(d, 'pci-1', '+4930111222', 'encrypted');
    const plain = await recordCall(d, 'plain-1', '+4989000000', 'sealed');
    assert.equal(pci.kekId, first.kekId);
    assert.deepEqual(
      pci.files.filter((f: string) => f.endsWith('.enc')),
      [`${pci.recordingId}.wav.enc`],
    );
    // Nothing in the clear is left of the encrypted call: the plain call's WAV is the only audio found.
    assert.deepEqual(await plaintextAudio(path.join(inst.dataDir, 'recordings')), [path.join(plain.dir, `${plain.recordingId}.wav`)]);

    // The seal covers the envelopes as stored: shasum and verify need no key.
    const sums = spawnSync('shasum', ['-a', '256', '-c', `${pci.recordingId}.sha256`], { cwd: pci.dir, encoding: 'utf8' });
    assert.equal(sums.status, 0, sums.stdout + sums.stderr);
    assert.equal(cli(inst, ['verify', pci.dir]).status, 0);
    const oneShare = cli(inst, ['verify', pci.dir, '--decrypt', '--share-a-pass-file', inst.passA]);
    assert.equal(oneShare.status, 2);
    assert.match(oneShare.stderr, /share B needs administrator B's passphrase/);
    const wrongB = cli(inst, ['verify', pci.dir, '--decrypt', '--share-a-pass-file', inst.passA, '--share-b-pass-file', inst.configFile]);
    assert.match(wrongB.stderr, /cannot open share B of KEK .*wrong passphrase/);
    assert.equal(ok(inst, ['verify', pci.dir, '--decrypt', ...inst.shares]).ok, true);

    const out = path.join(inst.dataDir, '..', 'export.wav');
    ok(inst, ['export', pci.recordingId, '--out', out, '--reason', 'ticket 42', ...inst.shares]);
    const wav = await readWav(out);
    assert.equal(wav.channels, 2);
    assert.ok(wav.dataBytes >= 8000 * 4 * 0.5, `exported ${wav.dataBytes} bytes of audio`);
    const exported = cli(inst, ['audit', 'list', '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e: any) => e.action === 'recording.exported');
    assert.equal(exported.length, 1);
    assert.equal(exported[0].subject, pci.recordingId);
    assert.equal(exported[0].details.reason, 'ticket 42');

    // Links planted where a staging file could be expected are never written through: the plaintext is
    // staged in a fresh 0700 directory of its own, and lands as a regular file readable by its owner only.
    const planted = path.join(inst.dataDir, '..', 'planted.wav');
    const victim = path.join(inst.dataDir, '..', 'victim');
    await writeFile(victim, 'untouched');
    await symlink(victim, `${planted}.partial`);
    await symlink(victim, `${planted}.tmp`);
    ok(inst, ['export', pci.recordingId, '--out', planted, ...inst.shares]);
    assert.equal(await readFile(victim, 'utf8'), 'untouched');
    const landed = await lstat(planted);
    assert.ok(landed.isFile() && (landed.mode & 0o777) === 0o600, `the export is a 0600 regular file (${(landed.mode & 0o777).toString(8)})`);
    assert.deepEqual(
      (await readdir(path.dirname(planted))).filter((n) => n.startsWith('.callvault-export-')),
      [],
      'no staging directory left behind',
    );

    const scrape = parsePrometheusText(
      await (await fetch(`http://${d.logs.find((l) => l.msg === 'metrics listening')!.metrics as string}/metrics`)).text(),
    );
    const left = sampleValue(scrape, 'callvault_kek_expiry_seconds', { kek: first.kekId });
    assert.ok(Math.abs(left - 365 * 86_400) < 600, `KEK expiry ${left} s`);

    // Rotation: a new KEK in the data dir is not used until its fingerprint is pinned — it might as well
    // have been planted by anyone who can write there. It is reported (log, metric, audit) instead.
    const second = ok(inst, ['keys', 'rotate', ...inst.shares]);
    assert.equal(second.previous, first.kekId);
    process.kill(d.child.pid!, 'SIGHUP');
    await d.waitFor((l) => l.level === 'error' && /not in encryption.trustedKeks and is not used/.test(l.msg) && l.kekId === second.kekId);
    const unpinned = await recordCall(d, 'pci-unpinned', '+4930111555', 'encrypted');
    assert.equal(unpinned.kekId, first.kekId, 'the unpinned KEK is never used');
    const alarm = parsePrometheusText(
      await (await fetch(`http://${d.logs.find((l) => l.msg === 'metrics listening')!.metrics as string}/metrics`)).text(),
    );
    assert.equal(sampleValue(alarm, 'callvault_kek_untrusted'), 1);
    assert.equal(sampleValue(alarm, 'callvault_kek_set_changes_total'), 1);
    const changed = cli(inst, ['audit', 'list', '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e: any) => e.action === 'key.set-changed');
    assert.deepEqual(
      changed.map((e: any) => e.details.added.map((a: any) => [a.kekId, a.trusted])),
      [[[second.kekId, false]]],
    );
    assert.equal(ok(inst, ['keys', 'status']).keys.find((k: any) => k.id === second.kekId).trusted, false);
    // Pinned (both custodians checked the fingerprint) and reloaded: new recordings use it, no restart.
    await writeFile(inst.configFile, withTrust(testConfigYaml(PROFILES), [first.fingerprintSha256, second.fingerprintSha256]));
    const reloads = d.logs.filter((l) => l.msg === 'config reloaded').length;
    process.kill(d.child.pid!, 'SIGHUP');
    await d.waitFor(() => d.logs.filter((l) => l.msg === 'config reloaded').length > reloads);
    const pci2 = await recordCall(d, 'pci-2', '+4930111333', 'encrypted');
    assert.equal(pci2.kekId, second.kekId);
    const status = ok(inst, ['keys', 'status']);
    assert.deepEqual(
      status.keys.map((k: any) => [k.id, k.state, k.recordings, k.trusted]),
      [
        [first.kekId, 'active', 2, true],
        [second.kekId, 'current', 1, true],
      ],
    );

    // Card digits keyed on an encrypting profile: that keys were pressed is kept, which keys nowhere in the clear.
    const card = [4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3].map((event, k) => ({ atMs: 200 + k * 180, event, durationMs: 100 }));
    const dtmfCall = await recordCall(d, 'pci-dtmf', '+4930111999', 'encrypted', card);
    assert.equal(dtmfCall.metadata.dtmf.length, card.length);
    const clear = [
      await readFile(path.join(dtmfCall.dir, `${dtmfCall.recordingId}.json`), 'utf8'),
      JSON.stringify((await d.api('GET', `/v1/recordings/${dtmfCall.recordingId}`)).body),
      cli(inst, ['recordings', 'show', dtmfCall.recordingId, '--json']).stdout,
      JSON.stringify(d.logs),
    ];
    for (const text of clear) {
      assert.doesNotMatch(text, /"digit"|4111|"#"/, 'no digit value in metadata, API, index or logs');
    }
    assert.equal(
      cli(inst, ['export', dtmfCall.recordingId, '--out', path.join(inst.dataDir, '..', 'x.wav'), '--dtmf', ...inst.shares]).status,
      2,
      'a profile that discards digits has none to give',
    );

    // A profile that keeps the keys pressed keeps them only in an envelope, read back with both shares.
    const menu = [1, 2, 3, 11].map((event, k) => ({ atMs: 300 + k * 400, event, durationMs: 100 }));
    const ivr = await recordCall(d, 'ivr-1', '+4930222001', 'encrypted', menu);
    const digitsFile = `${ivr.recordingId}.dtmf.json.enc`;
    assert.ok(ivr.files.includes(digitsFile), JSON.stringify(ivr.files));
    assert.match(
      await readFile(path.join(ivr.dir, `${ivr.recordingId}.sha256`), 'utf8'),
      new RegExp(`  ${digitsFile}\n`),
      'sealed with the recording',
    );
    for (const text of [
      await readFile(path.join(ivr.dir, `${ivr.recordingId}.json`), 'utf8'),
      JSON.stringify((await d.api('GET', `/v1/recordings/${ivr.recordingId}`)).body),
      JSON.stringify(d.logs),
      await readFile(path.join(ivr.dir, digitsFile), 'latin1'),
    ]) {
      assert.doesNotMatch(text, /"key"|"#"|callvault-dtmf/, 'the keys are nowhere in the clear');
    }
    const keysOf = () =>
      ok(inst, ['export', ivr.recordingId, '--out', path.join(inst.dataDir, '..', `ivr-${randomInt(1e9)}.wav`), '--dtmf', ...inst.shares]).dtmf.map(
        (k: any) => [k.leg, k.key],
      );
    assert.deepEqual(keysOf(), [
      ['caller', '1'],
      ['caller', '2'],
      ['caller', '3'],
      ['caller', '#'],
    ]);
    assert.equal(ok(inst, ['verify', ivr.dir, '--decrypt', ...inst.shares]).ok, true);

    // One administrator alone cannot revoke: nothing changes, nothing is audited.
    const auditBefore = cli(inst, ['audit', 'list', '--json']).stdout;
    const alone = cli(inst, ['keys', 'revoke', first.kekId, '--share-a-pass-file', inst.passA]);
    assert.notEqual(alone.status, 0, 'one share is not enough');
    assert.deepEqual(
      ok(inst, ['keys', 'status']).keys.map((k: any) => k.state),
      ['active', 'current'],
      'the KEK is still active',
    );
    assert.equal(cli(inst, ['audit', 'list', '--json']).stdout, auditBefore, 'no audit entry for a revoke that did not happen');

    // Revoke the first KEK: its data key is re-wrapped under the second, the audio chunks untouched.
    const before = await readFile(path.join(pci.dir, `${pci.recordingId}.wav.enc`));
    const job = ok(inst, ['keys', 'revoke', first.kekId, ...inst.shares]);
    assert.deepEqual([job.kind, job.total, job.done, job.failed], ['rewrap', 2, 2, 0]);
    const after = await readFile(path.join(pci.dir, `${pci.recordingId}.wav.enc`));
    assert.deepEqual(after.subarray(after.length - 1000), before.subarray(before.length - 1000));
    assert.equal((await d.api('GET', `/v1/recordings/${pci.recordingId}`)).body.kekId, second.kekId);
    assert.equal(ok(inst, ['verify', pci.dir, '--decrypt', ...inst.shares]).ok, true);
    assert.deepEqual(
      ok(inst, ['keys', 'status']).keys.map((k: any) => [k.state, k.recordings]),
      [
        ['revoked', 0],
        ['current', 5],
      ],
    );
    // Nothing is left under it, so its shares leave the data dir: destroyed, and audited.
    assert.deepEqual(
      (await readdir(path.join(inst.dataDir, 'keys/kek', first.kekId))).filter((n) => n.startsWith('share-')),
      [],
    );
    const audited = () =>
      cli(inst, ['audit', 'list', '--json'])
        .stdout.trim()
        .split('\n')
        .map((l) => JSON.parse(l));
    assert.equal(audited().find((e: any) => e.action === 'key.shares-destroyed')?.subject, first.kekId);

    // A suspected compromise: revoke the second KEK with fresh data keys, its shares to the custodians' escrow.
    const third = ok(inst, ['keys', 'rotate', ...inst.shares]);
    await writeFile(inst.configFile, withTrust(testConfigYaml(PROFILES), [second.fingerprintSha256, third.fingerprintSha256]));
    const reloads2 = d.logs.filter((l) => l.msg === 'config reloaded').length;
    process.kill(d.child.pid!, 'SIGHUP');
    await d.waitFor(() => d.logs.filter((l) => l.msg === 'config reloaded').length > reloads2);
    const escrowA = path.join(inst.dataDir, '..', 'escrow-a');
    const escrowB = path.join(inst.dataDir, '..', 'escrow-b');
    assert.notEqual(
      cli(inst, ['keys', 'revoke', second.kekId, '--reencrypt', ...inst.shares, '--escrow-dir-a', escrowA, '--escrow-dir-b', escrowA]).status,
      0,
      'one escrow place for both shares is refused',
    );
    assert.equal(ok(inst, ['keys', 'status']).keys.find((k: any) => k.id === second.kekId).state, 'active', 'and changed nothing');
    const oldCopy = await readFile(path.join(pci.dir, `${pci.recordingId}.wav.enc`));
    const re = ok(inst, ['keys', 'revoke', second.kekId, '--reencrypt', ...inst.shares, '--escrow-dir-a', escrowA, '--escrow-dir-b', escrowB]);
    assert.deepEqual([re.kind, re.done, re.failed], ['reencrypt', 5, 0]);
    const fresh = await readFile(path.join(pci.dir, `${pci.recordingId}.wav.enc`));
    // Bytes 14-54: file nonce and key commitment. A new data key: an old copy's key slot opens nothing here.
    assert.notDeepEqual(fresh.subarray(14, 54), oldCopy.subarray(14, 54), 'a fresh data key');
    assert.equal(ok(inst, ['verify', pci.dir, '--decrypt', ...inst.shares]).ok, true);
    assert.deepEqual(await readdir(escrowA), [`${second.kekId}.share-a.json`]);
    assert.deepEqual(await readdir(escrowB), [`${second.kekId}.share-b.json`]);
    assert.deepEqual(
      (await readdir(path.join(inst.dataDir, 'keys/kek', second.kekId))).filter((n) => n.startsWith('share-')),
      [],
    );
    assert.deepEqual(audited().find((e: any) => e.action === 'key.shares-escrowed' && e.subject === second.kekId)?.details.escrowed.length, 2);
    const reExported = path.join(inst.dataDir, '..', 'after-reencrypt.wav');
    ok(inst, ['export', pci.recordingId, '--out', reExported, ...inst.shares]);
    assert.equal((await readWav(reExported)).channels, 2);
    assert.deepEqual(
      keysOf(),
      [
        ['caller', '1'],
        ['caller', '2'],
        ['caller', '3'],
        ['caller', '#'],
      ],
      'the keys pressed moved with the recording through rewrap and re-encryption',
    );
    // Encryption turned off: the audio comes back in the clear, the keys pressed do not — they go.
    const off = ok(inst, ['keys', 'decrypt-all', ...inst.shares]);
    assert.equal(off.failed, 0);
    assert.deepEqual(
      (await readdir(ivr.dir)).filter((n) => n.includes('dtmf')),
      [],
    );
    assert.equal(cli(inst, ['verify', ivr.dir]).status, 0, 'the recording verifies without it');
    const gone = cli(inst, ['export', ivr.recordingId, '--out', path.join(inst.dataDir, '..', 'ivr-off.wav'), '--dtmf']);
    assert.equal(gone.status, 2);
    assert.match(gone.stderr, /keys decrypt-all. removed them/);
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

/** Every file under `dir` whose bytes anywhere hold a WAV/RF64 header: audio in the clear. */
async function filesWithWavHeaders(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const f of await walk(dir)) {
    const bytes = await readFile(f);
    if (['RIFF', 'RF64', 'WAVEfmt'].some((m) => bytes.includes(m, 0, 'latin1'))) found.push(f);
  }
  return found;
}

test('an encrypting profile never writes plaintext: a scan during the call finds only the growing envelope; SIGKILL mid-call leaves an envelope recovery closes, which verifies and exports', async () => {
  const inst = await instance(testConfigYaml(PROFILES));
  const kek = ok(inst, ['keys', 'init', ...inst.shares]);
  await writeFile(inst.configFile, withTrust(testConfigYaml(PROFILES), [kek.fingerprintSha256]));
  const d1 = await DaemonProcess.start(inst);
  const c = await startCall(d1, { callId: 'pci-stream', callee: { number: '+4930111999' }, callerSsrc: 11, calleeSsrc: 22 });
  const sending = sendRtp({
    streams: [
      { port: c.legs.caller.port, law: 'PCMU', payloadType: 0, ssrc: 11, seqStart: 1, tsStart: 1, freq: 440, durationMs: 4000 },
      { port: c.legs.callee.port, law: 'PCMU', payloadType: 0, ssrc: 22, seqStart: 1, tsStart: 1, freq: 1000, durationMs: 4000 },
    ],
  });
  const envelope = path.join(recordingDir(inst.dataDir, c.recordingId), `${c.recordingId}.wav.enc`);
  const sizes: number[] = [];
  for (const atMs of [1200, 2400]) {
    await new Promise((r) => setTimeout(r, atMs - (sizes.length ? 1200 : 0)));
    assert.deepEqual(await filesWithWavHeaders(inst.dataDir), [], `no WAV header anywhere in the data dir ${atMs} ms into the call`);
    assert.deepEqual(
      (await walk(inst.dataDir)).filter((f) => /\.(wav|partial)$/.test(f)),
      [],
    );
    sizes.push(statSync(envelope).size);
  }
  assert.ok(sizes[1]! > sizes[0]! && sizes[0]! > 32 << 10, `the envelope grows as the call runs: ${sizes.join(' → ')} bytes`);
  d1.child.kill('SIGKILL');
  await d1.exited;
  await sending;

  const d2 = await DaemonProcess.start(inst);
  try {
    const st = await d2.waitForState(c.recordingId, 'encrypted');
    assert.equal(st.metadata.recovered, true);
    assert.deepEqual(st.files.sort(), [`${c.recordingId}.json`, `${c.recordingId}.wav.enc`]);
    assert.deepEqual(await filesWithWavHeaders(inst.dataDir), [], 'recovery and the seal wrote no plaintext either');
    assert.equal(cli(inst, ['verify', st.dir]).status, 0);
    assert.equal(ok(inst, ['verify', st.dir, '--decrypt', ...inst.shares]).ok, true);
    const out = path.join(inst.dataDir, '..', 'recovered.wav');
    ok(inst, ['export', c.recordingId, '--out', out, '--reason', 'crash check', ...inst.shares]);
    const wav = await readWav(out);
    const [L, R] = wav.channels_ as [Float64Array, Float64Array];
    const seconds = L.length / 8000;
    // Whole chunks reached the disk: all but the last second or so before the kill.
    assert.ok(seconds >= 1 && seconds <= 2.5, `recovered ${seconds} s`);
    assert.equal(st.metadata.durationMs, Math.round(seconds * 1000));
    assert.ok(tonePower(L, 440) > 100 * tonePower(L, 1000) && tonePower(R, 1000) > 100 * tonePower(R, 440), 'caller left, callee right');
  } finally {
    assert.equal(await d2.stop(), 0);
  }
});

test('encrypt-existing names the recordings whose copies on storage targets are still in the clear', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'callvault-copies-'));
  const archive = path.join(root, 'archive');
  const yaml = testConfigYaml(
    `storage:\n  archive:\n    type: directory\n    path: ${archive}\nprofiles:\n  - name: archived\n    match: { calleeNumbers: ["+4940*"] }\n    storage: [archive]\n  - name: default\n`,
  );
  const inst = await instance(yaml);
  const d = await DaemonProcess.start(inst);
  let copied: any;
  let local: any;
  try {
    copied = await recordCall(d, 'copied-1', '+4940111222', 'uploaded');
    local = await recordCall(d, 'local-1', '+4989000000', 'sealed');
  } finally {
    assert.equal(await d.stop(), 0);
  }
  const kek = ok(inst, ['keys', 'init', ...inst.shares]);
  await writeFile(inst.configFile, withTrust(yaml, [kek.fingerprintSha256]));
  const r = cli(inst, ['keys', 'encrypt-existing', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const job = JSON.parse(r.stdout);
  assert.equal(job.done, 2);
  assert.deepEqual(job.plaintextCopies, [{ recordingId: copied.recordingId, targets: ['archive'] }]);
  assert.match(
    r.stderr,
    new RegExp(
      `1 of these recordings were copied to storage targets \\(archive\\) before they were encrypted; those copies are still in the clear .*${copied.recordingId}`,
    ),
  );
  assert.doesNotMatch(r.stderr, new RegExp(local.recordingId));
  assert.ok(
    (await walk(archive)).some((f) => f.endsWith(`${copied.recordingId}.wav`)),
    'the copy itself is left as it was',
  );
});

test('key jobs: encrypt-existing killed (SIGKILL) halfway resumes at the recording where it stopped; decrypt-all turns encryption off; every recording verifies throughout', async () => {
  const inst = await instance(testConfigYaml());
  const d = await DaemonProcess.start(inst);
  const ids: string[] = [];
  try {
    for (let i = 0; i < 10; i++) ids.push((await recordCall(d, `old-${i}`, '+4989000000', 'sealed')).recordingId);
  } finally {
    assert.equal(await d.stop(), 0);
  }
  const kek = ok(inst, ['keys', 'init', ...inst.shares]);
  await writeFile(inst.configFile, withTrust(testConfigYaml(), [kek.fingerprintSha256]));
  const recordings = path.join(inst.dataDir, 'recordings');
  const envelopes = async () => (await walk(recordings)).filter((f) => f.endsWith('.wav.enc')).length;
  // Killed while converting: after its third recording, mid-flight on others.
  const job = spawn('setsid', ['-w', process.execPath, MAIN, 'keys', 'encrypt-existing', '--config', inst.configFile, '--data-dir', inst.dataDir], {
    stdio: 'ignore',
    env: { ...process.env, CALLVAULT_SIGNING_PASSPHRASE: 'test-signing-passphrase-42' },
  });
  const deadline = Date.now() + 60_000;
  while ((await envelopes()) < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  killTree(job);
  assert.ok((await envelopes()) < 10, 'the job was stopped before it finished');
  const resumed = cli(inst, ['keys', 'encrypt-existing', '--json']);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming job/);
  const finished = JSON.parse(resumed.stdout);
  assert.deepEqual([finished.total, finished.done, finished.failed], [10, 10, 0]);
  assert.equal(await envelopes(), 10);
  assert.deepEqual(await plaintextAudio(recordings), []);
  assert.equal(ok(inst, ['verify', recordings, '--all', '--decrypt', ...inst.shares]).summary.ok, 10);
  assert.deepEqual(new Set(ok(inst, ['recordings', 'list']).recordings.map((r: any) => r.state)), new Set(['encrypted']));

  const off = ok(inst, ['keys', 'decrypt-all', ...inst.shares]);
  assert.deepEqual([off.total, off.done, off.failed], [10, 10, 0]);
  assert.equal(await envelopes(), 0);
  assert.equal(ok(inst, ['verify', recordings, '--all']).summary.ok, 10);
  assert.deepEqual(new Set(ok(inst, ['recordings', 'list']).recordings.map((r: any) => `${r.state}/${r.kekId}`)), new Set(['sealed/null']));
});

function killTree(child: ChildProcess): void {
  // setsid -w made the child a session (and group) leader: kill the whole group, the CLI included.
  process.kill(-child.pid!, 'SIGKILL');
}

/** `callvault lkm serve` in a child process; resolves with its "listening" log line. */
async function keyManager(root: string, extra: string[] = []): Promise<{ child: ChildProcess; listening: any; lkmDir: string; tokens: string }> {
  const lkmDir = path.join(root, 'lkm');
  const tokens = path.join(root, 'lkm-tokens');
  await writeFile(path.join(root, 'lkm.pass'), 'key-manager-passphrase\n', { mode: 0o600 });
  const child = spawn(
    process.execPath,
    [
      MAIN,
      'lkm',
      'serve',
      '--data-dir',
      lkmDir,
      '--listen',
      '127.0.0.1:0',
      '--tokens-dir',
      tokens,
      '--passphrase-file',
      path.join(root, 'lkm.pass'),
      '--key-bits',
      '2048',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const listening = await new Promise<any>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      for (const line of buf.split('\n')) if (line.includes('key manager listening')) resolve(JSON.parse(line));
    });
    child.once('exit', (code) => reject(new Error(`lkm serve exited with ${code}`)));
  });
  return { child, listening, lkmDir, tokens };
}

/** One HTTPS request to the key manager, as any client could make it. */
function lkmRequest(
  at: string,
  opts: { ca: string; token: string; method?: string; route: string; body?: unknown; cert?: string; key?: string },
): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const data = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const req = httpsRequest(
      `https://${at}${opts.route}`,
      {
        method: opts.method ?? 'GET',
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        headers: { authorization: `Bearer ${opts.token}`, ...(data ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

const lkmYaml = (url: string, ca: string, token: string, extra = '') =>
  `encryption:\n  provider: lkm\n  lkm:\n    url: https://${url}\n    caFile: ${ca}\n    tokenFile: ${token}\n${extra}`;

test("lkm provider: the daemon encrypts under the key manager's KEK with the recorder's credential, which cannot unwrap; export unwraps with the unwrap credential, audited on both sides; unwraps are rate-limited; the KEK's expiry is watched", async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'callvault-lkm-'));
  const km = await keyManager(root, ['--unwrap-per-minute', '4']);
  const token = (role: string) => path.join(km.tokens, `${role}.token`);
  const ca = path.join(km.lkmDir, 'tls-cert.pem');
  try {
    for (const role of ['recorder', 'unwrap', 'admin']) assert.equal(statSync(token(role)).mode & 0o777, 0o600, `${role}.token is 0600`);
    assert.notEqual(await readFile(token('recorder'), 'utf8'), await readFile(token('unwrap'), 'utf8'), 'one credential per role');
    // A 1-day cryptoperiod with a 2-day warning: the KEK is in its warning window from the start.
    const notified = path.join(root, 'notified');
    const expiry = `  cryptoperiodDays: 1\n  expiryWarningDays: 2\n  notifyCommand: [/bin/sh, -c, 'echo "$CALLVAULT_KEK_ID $CALLVAULT_KEK_SECONDS_LEFT" > ${notified}']\n`;
    const yaml = (t: string) => testConfigYaml(PROFILES + lkmYaml(km.listening.listen, ca, t, expiry));
    const inst = await instance(yaml(token('recorder')));
    const d = await DaemonProcess.start(inst);
    let pci: any;
    try {
      pci = await recordCall(d, 'pci-lkm', '+4930111444', 'encrypted');
      assert.equal(pci.kekId, km.listening.kekId);
      await d.waitFor((l) => l.level === 'warn' && /near the end of its cryptoperiod/.test(l.msg));
      const [hookKek, hookLeft] = (await readFile(notified, 'utf8')).trim().split(' ');
      assert.equal(hookKek, km.listening.kekId);
      assert.ok(Number(hookLeft) > 0 && Number(hookLeft) <= 86_400, `hook saw ${hookLeft} s left`);
      assert.deepEqual(await plaintextAudio(pci.dir), []);
    } finally {
      assert.equal(await d.stop(), 0);
    }
    assert.equal(ok(inst, ['keys', 'status']).keys[0].provider, 'lkm');

    // The recorder's credential, which the daemon's host holds, cannot unwrap.
    const none = cli(inst, ['export', pci.recordingId, '--out', path.join(root, 'x.wav')]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /needs the key manager's unwrap credential: --lkm-token-file/);
    const asRecorder = cli(inst, ['export', pci.recordingId, '--out', path.join(root, 'x.wav'), '--lkm-token-file', token('recorder')]);
    assert.equal(asRecorder.status, 2);
    assert.match(asRecorder.stderr, /refused POST \/v1\/unwrap: 403 the recorder credential may not POST \/v1\/unwrap/);
    const wrong = path.join(root, 'bad.token');
    await writeFile(wrong, 'not-the-token\n');
    assert.match(
      cli(inst, ['export', pci.recordingId, '--out', path.join(root, 'x.wav'), '--lkm-token-file', wrong]).stderr,
      /refused POST \/v1\/unwrap: 401/,
    );

    const out = path.join(root, 'lkm-export.wav');
    ok(inst, ['export', pci.recordingId, '--out', out, '--lkm-token-file', token('unwrap')]);
    assert.equal((await readWav(out)).channels, 2);
    assert.equal(ok(inst, ['verify', pci.dir, '--decrypt', '--lkm-token-file', token('unwrap')]).ok, true);

    // Both sides recorded each unwrap: the recording, the wrapped key's hash, who asked.
    const ours = cli(inst, ['audit', 'list', '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e: any) => e.action === 'key.unwrapped');
    assert.equal(ours.length, 2);
    const theirs = (await readFile(path.join(km.lkmDir, 'unwrap-audit.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      theirs.map((e: any) => [e.role, e.outcome]),
      [
        ['recorder', 'forbidden'],
        ['unwrap', 'unwrapped'],
        ['unwrap', 'unwrapped'],
      ],
    );
    for (const [i, e] of ours.entries()) {
      assert.equal(e.subject, pci.recordingId);
      assert.equal(theirs[i + 1].recordingId, pci.recordingId);
      assert.equal(theirs[i + 1].wrappedDekSha256, e.details.wrappedDekSha256);
      assert.match(theirs[i + 1].client, /^127\.0\.0\.1:\d+$/);
    }
    assert.deepEqual(
      ours.map((e: any) => e.details.purpose),
      [`export ${pci.recordingId}`, 'verify --decrypt'],
    );

    // Limits: an unwrap names its recording; past 4 a minute the key manager refuses, saying when to retry.
    const unwrapToken = (await readFile(token('unwrap'), 'utf8')).trim();
    const caPem = await readFile(ca, 'utf8');
    const asked = { kekId: km.listening.kekId, wrappedDek: Buffer.alloc(256).toString('base64') };
    assert.equal(
      (await lkmRequest(km.listening.listen, { ca: caPem, token: unwrapToken, method: 'POST', route: '/v1/unwrap', body: asked })).status,
      400,
    );
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push(
        (
          await lkmRequest(km.listening.listen, {
            ca: caPem,
            token: unwrapToken,
            method: 'POST',
            route: '/v1/unwrap',
            body: { ...asked, recordingId: newRecordingId() },
          })
        ).status,
      );
    const limited = statuses.indexOf(429);
    assert.equal(limited, 2, `two unwraps were left this minute: ${statuses.join(', ')}`);
    const r429 = await lkmRequest(km.listening.listen, {
      ca: caPem,
      token: unwrapToken,
      method: 'POST',
      route: '/v1/unwrap',
      body: { ...asked, recordingId: newRecordingId() },
    });
    assert.equal(r429.status, 429);
    assert.ok(Number(r429.headers['retry-after']) >= 1 && Number(r429.headers['retry-after']) <= 60);
    // Rotation is the administrator's.
    const recorderToken = (await readFile(token('recorder'), 'utf8')).trim();
    assert.equal((await lkmRequest(km.listening.listen, { ca: caPem, token: recorderToken, method: 'POST', route: '/v1/rotate' })).status, 403);
  } finally {
    km.child.kill('SIGTERM');
  }
});

test('lkm provider with mutual TLS: a client without a certificate from the configured CA is refused in the handshake; the daemon and export with theirs work', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'callvault-mtls-'));
  const pki = (args: string[]) => execFileSync('openssl', args, { cwd: root, stdio: 'ignore' });
  selfSigned(path.join(root, 'ca.key'), path.join(root, 'ca.pem'), '/CN=callvault test client CA');
  pki(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=recorder-host-1']);
  pki(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '2']);
  const km = await keyManager(root, ['--client-ca', path.join(root, 'ca.pem')]);
  const ca = path.join(km.lkmDir, 'tls-cert.pem');
  try {
    assert.equal(km.listening.mutualTls, true);
    const recorderToken = (await readFile(path.join(km.tokens, 'recorder.token'), 'utf8')).trim();
    await assert.rejects(
      lkmRequest(km.listening.listen, { ca: await readFile(ca, 'utf8'), token: recorderToken, route: '/v1/kek' }),
      'no client certificate: refused',
    );
    const mtls = `    clientCertFile: ${path.join(root, 'client.pem')}\n    clientKeyFile: ${path.join(root, 'client.key')}\n`;
    const inst = await instance(testConfigYaml(PROFILES + lkmYaml(km.listening.listen, ca, path.join(km.tokens, 'recorder.token'), mtls)));
    const d = await DaemonProcess.start(inst);
    let pci: any;
    try {
      pci = await recordCall(d, 'pci-mtls', '+4930111666', 'encrypted');
      assert.equal(pci.kekId, km.listening.kekId);
    } finally {
      assert.equal(await d.stop(), 0);
    }
    ok(inst, ['export', pci.recordingId, '--out', path.join(root, 'mtls.wav'), '--lkm-token-file', path.join(km.tokens, 'unwrap.token')]);
    const theirs = (await readFile(path.join(km.lkmDir, 'unwrap-audit.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.match(theirs.at(-1).certificate, /^recorder-host-1 \(SHA-256 [0-9A-F:]+\)$/, "the client certificate is in the key manager's audit");
  } finally {
    km.child.kill('SIGTERM');
  }
});
