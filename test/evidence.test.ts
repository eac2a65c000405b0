/**
 * Evidence that holds up in an audit (issue: keys and evidence): the signing
 * identity is never silently replaced, the audit actor is who the kernel
 * says, staging files never follow a planted link.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFile, copyFile, lstat, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { writeHeapSnapshot } from 'node:v8';
import { open } from 'lmdb';
import { MIN_SHARE_BITS, passphraseBits, readShareInputs } from '../daemon/cli/shares.js';
import { writeFileDurably } from '../daemon/fsutil.js';
import { KekStore } from '../daemon/keys/kek/KekStore.js';
import { openShare, sealShare } from '../daemon/keys/kek/shares.js';
import { ShareUnwrapper } from '../daemon/keys/kek/unwrappers.js';
import { newEnvelope } from '../daemon/seal/envelope.js';
import { WorkerPool } from '../daemon/seal/WorkerPool.js';
import { cli } from './support/cli.js';
import { DaemonProcess, ROOT } from './support/daemon.js';
import { recordCall } from './support/record.js';
import { selfSigned } from './support/pki.js';

const sha = async (f: string) =>
  createHash('sha256')
    .update(await readFile(f))
    .digest('hex');

test('a signing certificate moved away after recordings were signed: the daemon refuses to start and keeps the old key', async () => {
  let d = await DaemonProcess.start();
  await recordCall(d, { callId: 'ident-1', caller: { freq: 440, durationMs: 300 }, callee: { freq: 1000, durationMs: 300 } });
  assert.equal(await d.stop(), 0);
  const cert = path.join(d.dataDir, 'identity/signing-cert.pem');
  const key = path.join(d.dataDir, 'identity/signing-key.p8.pem');
  const keyBefore = await sha(key);
  await rename(cert, `${cert}.moved`);
  await assert.rejects(
    DaemonProcess.start({ dataDir: d.dataDir, configFile: d.configFile }),
    /exited with 1: [\s\S]*signing certificate .* is missing, but this instance already has a signing identity/,
  );
  assert.equal(await sha(key), keyBefore, 'the key that signed the recordings is untouched');
  await assert.rejects(lstat(cert), 'no new certificate was made');
  // Restored from backup, the instance starts as before.
  await rename(`${cert}.moved`, cert);
  d = await DaemonProcess.start({ dataDir: d.dataDir, configFile: d.configFile });
  assert.equal(await d.stop(), 0);
});

test('the audit actor is the real user, not what SUDO_USER claims', async () => {
  const d = await DaemonProcess.start();
  try {
    const rec = await recordCall(d, { callId: 'actor-1', caller: { freq: 440, durationMs: 300 }, callee: { freq: 1000, durationMs: 300 } });
    const r = cli(d, ['hold', rec.recordingId, '--reason', 'case 7'], { SUDO_USER: 'alice' });
    assert.equal(r.status, 0, r.stderr);
    const entries = cli(d, ['audit', 'list', '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const hold = entries.find((e) => e.action === 'recording.hold' && e.subject === rec.recordingId);
    assert.ok(hold, JSON.stringify(entries.map((e) => e.action)));
    assert.doesNotMatch(hold.actor, /alice/);
    assert.match(hold.actor, new RegExp(`^${os.userInfo().username}\\b`));
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test("a planted temp file or link never receives a durable write: it is replaced, and a link's target is untouched", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-staging-'));
  const victim = path.join(dir, 'victim');
  await writeFile(victim, 'untouched');
  const target = path.join(dir, 'meta.json');
  await symlink(victim, `${target}.tmp`);
  await writeFileDurably(target, '{"ok":true}\n', 0o640);
  assert.equal(await readFile(victim, 'utf8'), 'untouched');
  assert.equal(await readFile(target, 'utf8'), '{"ok":true}\n');
  assert.equal(((await lstat(target)).mode & 0o777).toString(8), '640');
  await writeFile(`${target}.tmp`, 'pre-created by someone else', { mode: 0o666 });
  await writeFileDurably(target, 'second\n', 0o600);
  assert.equal(((await lstat(target)).mode & 0o777).toString(8), '600', "the mode is ours, not the pre-created file's");
});

test('shares: new ones are sealed with scrypt N = 2^17; ones sealed with the earlier N = 2^14 still open; a passphrase is the same in any Unicode form', () => {
  const secret = randomBytes(64);
  const pass = (s: string) => Buffer.from(s, 'utf8');
  const fresh = sealShare('kek-x', 'A', secret, pass('correct horse battery staple'));
  assert.ok(fresh.kdf.N >= 2 ** 17, `N ${fresh.kdf.N}`);
  const old = sealShare('kek-x', 'A', secret, pass('correct horse battery staple'), { N: 2 ** 14, r: 8, p: 1 });
  assert.equal(old.kdf.N, 2 ** 14);
  assert.deepEqual(openShare(JSON.stringify(old), 'kek-x', 'A', pass('correct horse battery staple'), 'old.json'), secret);
  assert.throws(() => openShare(JSON.stringify(old), 'kek-x', 'A', pass('wrong horse battery staple'), 'old.json'), /wrong passphrase/);
  // Sealed with "é" composed, opened with it decomposed (e + U+0301), as another keyboard may send it.
  const accented = sealShare('kek-x', 'B', secret, pass('caf\u00e9 au lait du matin'), { N: 2 ** 14, r: 8, p: 1 });
  assert.deepEqual(openShare(JSON.stringify(accented), 'kek-x', 'B', pass('cafe\u0301 au lait du matin'), 'b.json'), secret);
});

test('share passphrase strength: repeated or low-variety ones rate low, real ones pass', () => {
  assert.ok(passphraseBits('aaaaaaaaaaaaaaaa') < MIN_SHARE_BITS);
  assert.ok(passphraseBits('aaaaaaaaaaaaaaab') < MIN_SHARE_BITS);
  assert.ok(passphraseBits('abababababababab') < MIN_SHARE_BITS);
  assert.ok(passphraseBits('administrator-a-passphrase') >= MIN_SHARE_BITS);
  assert.ok(passphraseBits('correct horse battery staple') >= MIN_SHARE_BITS);
});

test('entries cut from the end of the audit chain are found: the daemon alarms at start, audit verify --head fails; exports are checkpointed at once', async () => {
  let d = await DaemonProcess.start();
  const rec = await recordCall(d, { callId: 'audit-cut', caller: { freq: 440, durationMs: 300 }, callee: { freq: 1000, durationMs: 300 } });
  for (let i = 0; i < 3; i++) {
    const r = cli(d, [
      'export',
      rec.recordingId,
      '--out',
      path.join(d.dataDir, '..', `${path.basename(d.dataDir)}-export-${i}.wav`),
      '--reason',
      `case ${i}`,
    ]);
    assert.equal(r.status, 0, r.stderr);
  }
  const entries = () =>
    cli(d, ['audit', 'list', '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  const all = entries();
  const exports = all.filter((e) => e.action === 'recording.exported');
  assert.equal(exports.length, 3);
  for (const e of exports) assert.equal(all.find((x) => x.seq === e.seq + 1)?.action, 'checkpoint', `export ${e.seq} is checkpointed at once`);
  assert.equal(await d.stop(), 0);

  const head = (await readFile(path.join(d.dataDir, 'audit-head'), 'utf8')).trim();
  const [headSeq] = head.split(':').map(Number) as [number];
  assert.equal(headSeq, entries().at(-1).seq, 'the head kept outside the audit environment is the newest entry');
  // The forger removes the last entries (the stop checkpoint and everything back to the first export).
  const env = open({ path: path.join(d.dataDir, 'audit/audit.mdb'), compression: false });
  const db = env.openDB<unknown, number>({ name: 'entries', keyEncoding: 'uint32' });
  for (let seq = headSeq; seq >= exports[0].seq; seq--) await db.remove(seq);
  await env.close();

  assert.equal(cli(d, ['audit', 'verify']).status, 0, 'a prefix of the chain is still a valid chain');
  const withHead = cli(d, ['audit', 'verify', '--head', head]);
  assert.equal(withHead.status, 1, withHead.stdout);
  assert.match(withHead.stdout, /BROKEN .*entries were removed from its end/);

  d = await DaemonProcess.start({ dataDir: d.dataDir, configFile: d.configFile });
  try {
    await d.waitFor((l) => l.level === 'error' && /audit log tampered with/.test(l.msg));
    const metricsAt = (await d.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
    assert.match(await (await fetch(`http://${metricsAt}/metrics`)).text(), /^callvault_audit_chain_intact 0$/m);
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

/** What someone with write access to the data dir does: a key of their own, the metadata changed, re-sealed with shasum and openssl, their certificate in place of the instance's. */
async function forgeReseal(dataDir: string, recDir: string, id: string): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'callvault-forger-'));
  const key = path.join(work, 'key.pem');
  selfSigned(key, path.join(dataDir, 'identity/signing-cert.pem'), '/CN=callvault forged', 30);
  const metaFile = path.join(recDir, `${id}.json`);
  const meta = JSON.parse(await readFile(metaFile, 'utf8'));
  meta.legs.caller.number = '+15550000000';
  await writeFile(metaFile, `${JSON.stringify(meta, null, 2)}\n`);
  const names = (await readdir(recDir)).filter((n) => !n.endsWith('.sha256') && !n.endsWith('.sig')).sort();
  await writeFile(path.join(recDir, `${id}.sha256`), execFileSync('shasum', ['-a', '256', ...names], { cwd: recDir }));
  const sig = execFileSync('openssl', ['dgst', '-sha256', '-sign', key, path.join(recDir, `${id}.sha256`)]);
  await writeFile(path.join(recDir, `${id}.sha256.SHA256withRSA.sig`), `${sig.toString('base64')}\n`);
}

test('a forged re-seal under a planted certificate: caught with a pinned fingerprint or a certificate kept elsewhere; unpinned, verify says loudly what it trusts', async () => {
  let d = await DaemonProcess.start();
  const rec = await recordCall(d, { callId: 'forge-1', caller: { freq: 440, durationMs: 300 }, callee: { freq: 1000, durationMs: 300 } });
  const warned = await d.waitFor((l) => /signing certificate is not pinned/.test(l.msg));
  const pin = cli(d, ['cert', '--fingerprint']).stdout.trim();
  assert.equal(warned.fingerprintSha256, pin);
  const kept = path.join(d.dataDir, '..', `${path.basename(d.dataDir)}-cert.pem`);
  await writeFile(kept, cli(d, ['cert']).stdout);
  const clean = cli(d, ['verify', rec.dir]);
  assert.equal(clean.status, 0, clean.stderr);
  assert.match(clean.stderr, /WARNING: trusting .*signing-cert\.pem only because it is in the data dir/);
  assert.equal(await d.stop(), 0);

  await forgeReseal(d.dataDir, rec.dir, rec.recordingId);
  assert.equal(cli(d, ['verify', rec.dir]).status, 0, 'unpinned, the forgery passes: which is why it warns');
  const byPin = cli(d, ['verify', rec.dir, '--fingerprint', pin.replaceAll(':', '').toLowerCase()]);
  assert.equal(byPin.status, 2, byPin.stdout);
  assert.match(byPin.stderr, /not the pinned/);
  const byCert = cli(d, ['verify', rec.dir, '--cert', kept, '--json']);
  assert.equal(byCert.status, 1);
  assert.equal(JSON.parse(byCert.stdout).signature, 'BAD');
  assert.equal(JSON.parse(byCert.stdout).trust.source, 'given');

  // Pinned in the config: verify, audit verify and export refuse the planted certificate, and so does the daemon.
  await appendFile(d.configFile, `signing:\n  fingerprint: "${pin}"\n`);
  for (const args of [
    ['verify', rec.dir],
    ['audit', 'verify'],
    ['export', rec.recordingId, '--out', `${kept}.wav`],
  ]) {
    const r = cli(d, args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}`);
    assert.match(r.stderr, /not the pinned/, args.join(' '));
  }
  await assert.rejects(DaemonProcess.start({ dataDir: d.dataDir, configFile: d.configFile }), /exited with 1: [\s\S]*not the pinned/);
  // The original certificate restored: the forged recording fails its signature, the pinned daemon starts and does not warn.
  await writeFile(path.join(d.dataDir, 'identity/signing-cert.pem'), await readFile(kept));
  const restored = cli(d, ['verify', rec.dir, '--json']);
  assert.equal(restored.status, 1);
  assert.equal(JSON.parse(restored.stdout).signature, 'BAD');
  assert.equal(JSON.parse(restored.stdout).trust.source, 'pinned');
  assert.doesNotMatch(restored.stderr, /WARNING/);
  d = await DaemonProcess.start({ dataDir: d.dataDir, configFile: d.configFile });
  try {
    assert.ok(!d.logs.some((l) => /not pinned/.test(l.msg)));
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test("a recording is bound to its place: another's files copied in are refused by verify and export; a directory deleted behind the index is reported missing", async () => {
  const d = await DaemonProcess.start();
  try {
    const [a, b, c] = await Promise.all(
      ['bind-a', 'bind-b', 'bind-c'].map((callId) =>
        recordCall(d, { callId, caller: { freq: 440, durationMs: 300 }, callee: { freq: 1000, durationMs: 300 } }),
      ),
    );
    assert.equal(
      JSON.parse(await readFile(path.join(a!.dir, `${a!.recordingId}.json`), 'utf8')).instanceId,
      (await readFile(path.join(d.dataDir, 'identity/instance-id'), 'utf8')).trim(),
    );
    assert.equal(cli(d, ['verify', '--all', path.join(d.dataDir, 'recordings')]).status, 0);
    // A's sealed files, as they are, in B's directory.
    for (const n of await readdir(b!.dir)) await rm(path.join(b!.dir, n));
    for (const n of await readdir(a!.dir)) await copyFile(path.join(a!.dir, n), path.join(b!.dir, n));
    const v = cli(d, ['verify', b!.dir, '--json']);
    assert.equal(v.status, 1);
    const problems: string[] = JSON.parse(v.stdout).problems;
    assert.ok(
      problems.some((p) => p.includes(`recording ${b!.recordingId}'s, but holds recording ${a!.recordingId}`)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.includes(`the index has recording ${a!.recordingId} at`)),
      problems.join('\n'),
    );
    const script = spawnSync('bash', [path.join(ROOT, 'scripts/verify.sh'), b!.dir, path.join(d.dataDir, 'identity/signing-cert.pem')], {
      encoding: 'utf8',
    });
    assert.equal(script.status, 1, script.stdout);
    assert.match(script.stderr, new RegExp(`directory is recording ${b!.recordingId}'s, but holds recording ${a!.recordingId}`));
    const ex = cli(d, ['export', b!.recordingId, '--out', path.join(d.dataDir, '..', `${path.basename(d.dataDir)}-b.wav`)]);
    assert.equal(ex.status, 2);
    assert.match(ex.stderr, /does not verify, refusing to export/);
    // Renamed to B's names as well: the names are signed, so the signature fails.
    for (const n of await readdir(b!.dir)) await rename(path.join(b!.dir, n), path.join(b!.dir, n.replace(a!.recordingId, b!.recordingId)));
    const sums = path.join(b!.dir, `${b!.recordingId}.sha256`);
    await writeFile(sums, (await readFile(sums, 'utf8')).replaceAll(a!.recordingId, b!.recordingId));
    const renamed = JSON.parse(cli(d, ['verify', b!.dir, '--json']).stdout);
    assert.equal(renamed.signature, 'BAD');
    assert.ok(
      renamed.problems.some((p: string) => p.includes(`signed metadata is recording "${a!.recordingId}"'s`)),
      renamed.problems.join('\n'),
    );
    // C's directory removed outside callvault: the index still has it sealed.
    await rm(c!.dir, { recursive: true });
    const all = cli(d, ['verify', '--all', path.join(d.dataDir, 'recordings'), '--json']);
    assert.equal(all.status, 1);
    const report = JSON.parse(all.stdout);
    assert.deepEqual(
      report.missing.map((m: { recordingId: string }) => m.recordingId),
      [c!.recordingId],
    );
    assert.equal(report.summary.missing, 1);
    const audited = cli(d, ['audit', 'list', '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(
      audited.some((e) => e.action === 'verify.failed' && e.subject === c!.recordingId),
      'the missing recording is audited as a failed verification',
    );
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

/** Random letters as bytes, never a JavaScript string: what a custodian's passphrase file holds. */
function passphraseBytes(): Buffer {
  const b = randomBytes(28);
  for (let i = 0; i < b.length; i++) b[i] = 0x61 + (b[i]! % 26);
  return b;
}

test('share passphrases never become JavaScript strings: after the shares open a KEK and the unwrapper closes, the passphrase bytes are zero and a heap snapshot holds neither passphrase', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-heap-'));
  const passA = passphraseBytes();
  const passB = passphraseBytes();
  await writeFile(path.join(dir, 'a.pass'), Buffer.concat([passA, Buffer.from([0x0a])]), { mode: 0o600 });
  await writeFile(path.join(dir, 'b.pass'), Buffer.concat([passB, Buffer.from([0x0a])]), { mode: 0o600 });
  const store = new KekStore(dir);
  const kek = await store.create({ bits: 2048, shares: { A: { passphrase: Buffer.from(passA) }, B: { passphrase: Buffer.from(passB) } } });
  const inputs = await readShareInputs(
    { 'share-a-pass-file': path.join(dir, 'a.pass'), 'share-b-pass-file': path.join(dir, 'b.pass') },
    'heap test',
    { creating: false },
  );
  const pool = new WorkerPool(1);
  try {
    const unwrapper = new ShareUnwrapper(store, inputs, pool);
    const { dek, header } = newEnvelope(kek);
    assert.deepEqual(await unwrapper.unwrap(kek.id, header.wrappedDek), dek, 'the shares opened the KEK');
    unwrapper.close();
  } finally {
    await pool.close();
  }
  for (const letter of ['A', 'B'] as const)
    assert.ok(
      inputs[letter].passphrase.every((b) => b === 0),
      `passphrase ${letter} is wiped`,
    );
  const snapshot = await readFile(writeHeapSnapshot(path.join(dir, 'heap.heapsnapshot')));
  assert.ok(snapshot.length > 1_000_000, 'a real heap snapshot');
  assert.equal(snapshot.includes(passA), false, 'passphrase A is not a string anywhere in the heap');
  assert.equal(snapshot.includes(passB), false, 'passphrase B is not a string anywhere in the heap');
});
