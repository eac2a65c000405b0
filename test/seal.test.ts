import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatChecksums, parseChecksums } from '../daemon/seal/checksumFile.js';
import { resolvePassphrase } from '../daemon/keys/passphrase.js';
import { SigningIdentity } from '../daemon/keys/SigningIdentity.js';
import { DaemonProcess, MAIN, PASSPHRASE, ROOT } from './support/daemon.js';
import { recordCall, type RecordedCall } from './support/record.js';

const run = (cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) => {
  const r = spawnSync(cmd, args, { ...opts, env: { ...process.env, ...opts.env }, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const callvault = (...args: string[]) => run(process.execPath, [MAIN, ...args]);

/** The README's "Verifying a recording without callvault" block, run exactly as written. */
async function readmeVerification(): Promise<string> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const m = /<!-- verify-without-callvault[^>]*-->\n```sh\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has the verification block');
  return m[1] as string;
}

async function flipByte(file: string, at: number): Promise<void> {
  const buf = await readFile(file);
  buf[at] = buf[at]! ^ 0x01;
  await writeFile(file, buf);
}

describe('checksum file format', () => {
  test('is byte for byte what shasum -a 256 prints, and parses back', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cv-sum-'));
    await writeFile(path.join(dir, 'b.wav'), Buffer.alloc(100_000, 7));
    await writeFile(path.join(dir, 'a.json'), '{}\n');
    const entries = ['b.wav', 'a.json'].map((name) => ({
      name,
      sha256: createHash('sha256')
        .update(execFileSync('cat', [path.join(dir, name)]))
        .digest('hex'),
    }));
    const ours = formatChecksums(entries);
    assert.equal(ours, execFileSync('shasum', ['-a', '256', 'a.json', 'b.wav'], { cwd: dir }).toString());
    assert.deepEqual(parseChecksums(ours), [...entries].reverse());
    for (const bad of ['', 'xyz  a\n', `${'0'.repeat(64)}  a`, `${'0'.repeat(64)}  a\n${'1'.repeat(64)}  a\n`, `${'0'.repeat(64)}  ../a\n`]) {
      assert.throws(() => parseChecksums(bad), Error, JSON.stringify(bad));
    }
  });
});

describe('signing identity', () => {
  let dataDir: string;
  let identity: SigningIdentity;
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'cv-id-'));
    identity = await SigningIdentity.loadOrCreate({ dataDir, keyBits: 3072, passphrase: PASSPHRASE });
  });

  test('the certificate is self-signed X.509 v3, CN callvault <instance-id>, 100 years, sign-only key usage', async () => {
    const certFile = path.join(dataDir, 'identity/signing-cert.pem');
    const text = execFileSync('openssl', ['x509', '-in', certFile, '-noout', '-text']).toString();
    const instanceId = (await readFile(path.join(dataDir, 'identity/instance-id'), 'utf8')).trim();
    assert.match(instanceId, /^[0-9a-f-]{36}$/);
    assert.match(text, /Version: 3/);
    assert.match(text, new RegExp(`Subject: CN ?= ?callvault ${instanceId}`));
    assert.match(text, new RegExp(`Issuer: CN ?= ?callvault ${instanceId}`));
    assert.match(text, /Public-Key: \(3072 bit\)/);
    assert.match(text, /Key Usage: critical\s+Digital Signature, Non Repudiation\n/);
    assert.match(text, /Subject Key Identifier/);
    assert.match(text, /CA:FALSE/);
    const years = (Date.parse(identity.info.notAfter) - Date.parse(identity.info.notBefore)) / (365.2425 * 86_400_000);
    assert.ok(Math.abs(years - 100) < 0.01, `${years} years`);
    assert.equal(
      text.match(/Not After : (.*)/)?.[1],
      new Date(identity.info.notAfter)
        .toUTCString()
        .replace(/^\w+, (\d+) (\w+) (\d+) (\S+) GMT$/, (_, d, mo, y, t) => `${mo} ${String(Number(d)).padStart(2, ' ')} ${t} ${y} GMT`),
    );
    // Self-signed: openssl accepts it as its own trust anchor.
    assert.match(execFileSync('openssl', ['verify', '-CAfile', certFile, certFile]).toString(), /OK/);
  });

  test('the key is stored only as scrypt/AES-256 encrypted PKCS#8, mode 0600, and OpenSSL opens it with the passphrase', async () => {
    const keyFile = path.join(dataDir, 'identity/signing-key.p8.pem');
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    const pem = await readFile(keyFile, 'utf8');
    assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    const asn1 = execFileSync('openssl', ['asn1parse', '-in', keyFile]).toString();
    assert.match(asn1, /:PBES2/);
    assert.match(asn1, /:scrypt/);
    assert.match(asn1, /:aes-256-cbc/);
    assert.equal(run('openssl', ['pkey', '-in', keyFile, '-passin', `pass:${PASSPHRASE}`, '-noout']).code, 0);
    assert.notEqual(run('openssl', ['pkey', '-in', keyFile, '-passin', 'pass:not-the-passphrase', '-noout']).code, 0);
  });

  test('loading again gives the same identity; a wrong passphrase is a clear error', async () => {
    const again = await SigningIdentity.loadOrCreate({ dataDir, keyBits: 2048, passphrase: PASSPHRASE });
    assert.equal(again.created, false);
    assert.equal(again.info.fingerprintSha256, identity.info.fingerprintSha256);
    await assert.rejects(
      SigningIdentity.loadOrCreate({ dataDir, keyBits: 2048, passphrase: 'wrong passphrase!' }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'WRONG_PASSPHRASE');
        assert.match(err.message, /wrong passphrase/);
        assert.ok(!err.message.includes('wrong passphrase!'), 'the passphrase is not in the message');
        return true;
      },
    );
  });

  test('passphrase sources: env, then systemd credential, then file, then config, then a generated one; none is an error unless a trial asks to generate', async () => {
    const credDir = await mkdtemp(path.join(os.tmpdir(), 'cv-cred-'));
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cv-gen-'));
    const at = { dataDir };
    const file = path.join(credDir, 'pass.txt');
    await writeFile(path.join(credDir, 'signing-passphrase'), 'from-credential\n');
    await writeFile(file, 'from-file\nsecond line ignored\n');
    const signing = { keyBits: 2048 as const, passphrase: 'from-config-value', passphraseFile: file };
    assert.equal(
      (await resolvePassphrase(signing, at, { CALLVAULT_SIGNING_PASSPHRASE: 'from-env', CREDENTIALS_DIRECTORY: credDir })).value,
      'from-env',
    );
    assert.equal((await resolvePassphrase(signing, at, { CREDENTIALS_DIRECTORY: credDir })).source, 'credential');
    assert.equal((await resolvePassphrase(signing, at, { CREDENTIALS_DIRECTORY: credDir })).value, 'from-credential');
    assert.equal((await resolvePassphrase(signing, at, {})).value, 'from-file');
    assert.equal((await resolvePassphrase({ ...signing, passphraseFile: null }, at, {})).value, 'from-config-value');
    const none = { ...signing, passphraseFile: null, passphrase: null };
    await assert.rejects(resolvePassphrase(none, at, {}), /no passphrase for the signing key/);
    const made = await resolvePassphrase(none, { dataDir, generate: true }, {});
    assert.equal(made.source, 'generated');
    assert.ok(made.value.length >= 43, 'at least 256 random bits');
    assert.equal(((await stat(made.origin)).mode & 0o777).toString(8), '600');
    assert.equal((await resolvePassphrase(none, at, {})).value, made.value, 'found again without --generate-passphrase');
    const other = await mkdtemp(path.join(os.tmpdir(), 'cv-gen-'));
    assert.notEqual((await resolvePassphrase(none, { dataDir: other, generate: true }, {})).value, made.value, 'every trial instance gets its own');
    const example = await readFile(path.join(ROOT, 'config/callvault.example.yaml'), 'utf8');
    assert.match(example, /^ {2}passphrase: null$/m, 'no passphrase is shipped');
  });
});

describe('sealed recordings through the daemon (real call, real shasum/openssl)', () => {
  let d: DaemonProcess;
  let rec: RecordedCall;
  let cert: string;
  let work: string;
  before(async () => {
    d = await DaemonProcess.start();
    rec = await recordCall(d, { callId: 'seal-1', caller: { freq: 440, durationMs: 2000 }, callee: { freq: 1000, durationMs: 2000 } });
    cert = path.join(d.dataDir, 'identity/signing-cert.pem');
    work = await mkdtemp(path.join(os.tmpdir(), 'cv-tamper-'));
  });
  after(async () => {
    assert.equal(await d.stop(), 0);
  });

  test('the daemon logs the certificate at start; callvault cert prints the same PEM and fingerprint', async () => {
    const line = await d.waitFor((l) => l.msg === 'signing certificate');
    const pem = await readFile(cert, 'utf8');
    assert.equal(line.certificate, pem);
    assert.equal(line.level, 'info');
    for (const k of ['subject', 'serial', 'notBefore', 'notAfter', 'fingerprintSha256']) assert.ok(line[k], k);
    const printed = callvault('cert', '--data-dir', d.dataDir);
    assert.equal(printed.code, 0);
    assert.equal(printed.out, pem);
    const fp = callvault('cert', '--data-dir', d.dataDir, '--fingerprint').out.trim();
    assert.equal(fp, line.fingerprintSha256);
    assert.equal(`sha256 Fingerprint=${fp}`, execFileSync('openssl', ['x509', '-in', cert, '-noout', '-fingerprint', '-sha256']).toString().trim());
    assert.ok(!JSON.stringify(d.logs).includes(PASSPHRASE), 'the passphrase is never logged');
  });

  test('a sealed recording: index state sealed, shasum -c passes, the README openssl commands, verify.sh and callvault verify all accept it', async () => {
    const st = (await d.api('GET', `/v1/recordings/${rec.recordingId}`)).body;
    assert.equal(st.state, 'sealed');
    assert.ok(st.sealedAt);
    const id = rec.recordingId;
    const sums = await readFile(path.join(rec.dir, `${id}.sha256`), 'utf8');
    assert.deepEqual(
      parseChecksums(sums).map((e) => e.name),
      [`${id}.json`, `${id}.wav`],
    );
    assert.equal(run('shasum', ['-a', '256', '-c', `${id}.sha256`], { cwd: rec.dir }).code, 0);
    const readme = run('bash', ['-e', '-c', await readmeVerification()], { env: { REC: rec.dir, CERT: cert } });
    assert.equal(readme.code, 0, readme.err);
    assert.match(readme.out, /Verified OK/);
    assert.equal(run(path.join(ROOT, 'scripts/verify.sh'), [rec.dir, cert]).code, 0);
    const v = callvault('verify', rec.dir, '--data-dir', d.dataDir);
    assert.equal(v.code, 0, v.out + v.err);
    const j = JSON.parse(callvault('verify', rec.dir, '--cert', cert, '--json').out);
    assert.equal(j.ok, true);
    assert.equal(j.signature, 'OK');
    assert.deepEqual(
      j.files.map((f: { status: string }) => f.status),
      ['OK', 'OK'],
    );
  });

  const tampered = [
    { what: 'WAV', file: (id: string) => `${id}.wav`, status: 'MODIFIED', signature: 'OK' },
    { what: 'metadata', file: (id: string) => `${id}.json`, status: 'MODIFIED', signature: 'OK' },
    { what: 'checksum file', file: (id: string) => `${id}.sha256`, status: null, signature: 'BAD' },
    { what: 'signature', file: (id: string) => `${id}.sha256.SHA256withRSA.sig`, status: null, signature: 'BAD' },
  ] as const;
  for (const t of tampered) {
    test(`one flipped byte in the ${t.what} is detected by callvault verify, verify.sh and shasum/openssl`, async () => {
      const id = rec.recordingId;
      const copy = path.join(work, t.what.replace(/ /g, '-'), id);
      await mkdir(path.dirname(copy), { recursive: true });
      await cp(rec.dir, copy, { recursive: true });
      const file = path.join(copy, t.file(id));
      // The middle of the file: audio in the WAV, a value in the JSON, a hex digit, base64 text.
      await flipByte(file, Math.floor((await stat(file)).size / 2));
      const j = JSON.parse(callvault('verify', copy, '--cert', cert, '--json').out);
      assert.equal(j.ok, false);
      assert.equal(j.signature, t.signature);
      if (t.status) assert.equal(j.files.find((f: { name: string }) => f.name === t.file(id)).status, t.status);
      const human = callvault('verify', copy, '--cert', cert);
      assert.equal(human.code, 1);
      assert.match(human.err, t.status ? new RegExp(`${t.file(id)}: ${t.status}`) : /signature does not verify|malformed/);
      assert.equal(run(path.join(ROOT, 'scripts/verify.sh'), [copy, cert]).code, 1);
      assert.notEqual(
        run('bash', ['-e', '-c', await readmeVerification()], { env: { REC: copy, CERT: cert } }).code,
        0,
        'shasum or openssl rejects it',
      );
    });
  }

  test('a missing file and an extra file are reported as MISSING and UNLISTED', async () => {
    const id = rec.recordingId;
    const copy = path.join(work, 'missing-extra', id);
    await mkdir(path.dirname(copy), { recursive: true });
    await cp(rec.dir, copy, { recursive: true });
    await rm(path.join(copy, `${id}.json`));
    await writeFile(path.join(copy, 'notes.txt'), 'added later\n');
    const j = JSON.parse(callvault('verify', copy, '--cert', cert, '--json').out);
    assert.deepEqual(j.files.map((f: { name: string; status: string }) => `${f.status} ${f.name}`).sort(), [
      `MISSING ${id}.json`,
      `OK ${id}.wav`,
      'UNLISTED notes.txt',
    ]);
    assert.equal(j.signature, 'OK');
    assert.equal(run(path.join(ROOT, 'scripts/verify.sh'), [copy, cert]).code, 1);
  });

  test('a 150 MB checksum file is refused as malformed in bounded memory, its signature still checked', async () => {
    const id = rec.recordingId;
    const copy = path.join(await mkdtemp(path.join(os.tmpdir(), 'cv-huge-')), id);
    await mkdir(path.dirname(copy), { recursive: true });
    await cp(rec.dir, copy, { recursive: true });
    const line = Buffer.from(`${'0'.repeat(64)}  ${id}.wav\n`);
    await writeFile(path.join(copy, `${id}.sha256`), Buffer.concat(Array(Math.ceil(150e6 / line.length)).fill(line)));
    const r = run('/usr/bin/time', ['-f', 'maxrss_kb=%M', process.execPath, MAIN, 'verify', copy, '--cert', cert, '--json']);
    assert.equal(r.code, 1, r.err);
    const j = JSON.parse(r.out);
    assert.equal(j.signature, 'BAD', 'the signature is checked over the whole file, streamed');
    assert.ok(
      j.problems.some((p: string) => /malformed: it is \d+ bytes, more than any checksum file/.test(p)),
      j.problems.join('; '),
    );
    const rss = Number(/maxrss_kb=(\d+)/.exec(r.err)?.[1]);
    assert.ok(rss < 200 * 1024, `verify used ${Math.round(rss / 1024)} MB`);
  });

  test('verify --all walks a tree: counts every recording and fails if any fails; a wrong certificate fails all', async () => {
    const all = callvault('verify', '--all', work, '--cert', cert, '--json');
    assert.equal(all.code, 1);
    const j = JSON.parse(all.out);
    assert.equal(j.summary.recordings, tampered.length + 1);
    assert.equal(j.summary.failed, tampered.length + 1);
    const ours = callvault('verify', '--all', path.join(d.dataDir, 'recordings'), '--data-dir', d.dataDir);
    assert.equal(ours.code, 0, ours.err);
    assert.match(ours.out, /1 recordings verified: 1 OK, 0 FAILED/);
    const other = await mkdtemp(path.join(os.tmpdir(), 'cv-other-'));
    await SigningIdentity.loadOrCreate({ dataDir: other, keyBits: 2048, passphrase: PASSPHRASE });
    const wrong = callvault('verify', rec.dir, '--cert', path.join(other, 'identity/signing-cert.pem'));
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /signature does not verify/);
    assert.equal(callvault('verify', path.join(work, 'nope'), '--cert', cert).code, 2);
  });
});

test('restart keeps the identity; a wrong passphrase stops the daemon with a clear error; a systemd credential works', async () => {
  const d1 = await DaemonProcess.start();
  const first = await d1.waitFor((l) => l.msg === 'signing certificate');
  assert.equal(first.created, true);
  assert.equal(await d1.stop(), 0);

  const d2 = await DaemonProcess.start({ dataDir: d1.dataDir, configFile: d1.configFile });
  const second = await d2.waitFor((l) => l.msg === 'signing certificate');
  assert.equal(second.created, false);
  assert.equal(second.fingerprintSha256, first.fingerprintSha256);
  assert.equal(second.serial, first.serial);
  assert.equal(await d2.stop(), 0);

  await assert.rejects(
    DaemonProcess.start({ dataDir: d1.dataDir, configFile: d1.configFile, env: { CALLVAULT_SIGNING_PASSPHRASE: 'not the right one' } }),
    (err: Error) => {
      assert.match(err.message, /exited with 1/);
      assert.match(err.message, /cannot decrypt .*signing-key\.p8\.pem: wrong passphrase/);
      assert.ok(!err.message.includes('not the right one'));
      return true;
    },
  );

  const credDir = await mkdtemp(path.join(os.tmpdir(), 'cv-cred-'));
  await writeFile(path.join(credDir, 'signing-passphrase'), `${PASSPHRASE}\n`, { mode: 0o600 });
  const d3 = await DaemonProcess.start({
    dataDir: d1.dataDir,
    configFile: d1.configFile,
    env: { CALLVAULT_SIGNING_PASSPHRASE: '', CREDENTIALS_DIRECTORY: credDir },
  });
  const third = await d3.waitFor((l) => l.msg === 'signing certificate');
  assert.equal(third.passphraseSource, 'credential');
  assert.equal(third.fingerprintSha256, first.fingerprintSha256);
  assert.equal(await d3.stop(), 0);
});
