/**
 * The S3 storage target against a real S3 server: Ceph's radosgw (Debian)
 * over a one-node cluster the test makes. Object Lock (retention, legal
 * hold, a locked deletion refused), versioning and multipart are radosgw's
 * own. radosgw 16 does not know S3's newer flexible checksums: it ignores
 * x-amz-checksum-sha256 (AWS and MinIO check it), so a proxy in front of it
 * checks that header against the sealed SHA-256 on every request, and
 * corrupts bytes on the way to prove the server refuses them by Content-MD5.
 * The daemon's tests: retain-until from the profile's retention, legal hold
 * from `callvault hold` carried to the objects, and a fault run (the server
 * dying mid-upload) with the failure and recovery mail on a real SMTP server.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateBucketCommand,
  GetObjectCommand,
  GetObjectLegalHoldCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { S3TargetConfig } from '../daemon/config/Config.js';
import { S3Target } from '../daemon/upload/S3Target.js';
import type { SealedRecording } from '../daemon/upload/StorageTarget.js';
import { cli, cliAsync } from './support/cli.js';
import { briefCall, DaemonProcess, testConfigYaml } from './support/daemon.js';
import { startFaultProxy, type FaultProxy } from './support/faultProxy.js';
import { freePort } from './support/net.js';
import { parsePrometheusText, sampleValue } from './support/promtext.js';
import { startRadosgw, type Radosgw } from './support/radosgw.js';
import { sealedFixture as sealed } from './support/sealedFixture.js';
import { captureSmtp, mailConfigYaml, type SmtpCapture } from './support/smtp.js';

let gw: Radosgw;
let proxy: FaultProxy;
let s3: S3Client;
/** x-amz-checksum-sha256 of every PUT the proxy saw, by path. */
const sentChecksums = new Map<string, string>();

before(async () => {
  gw = await startRadosgw();
  proxy = await startFaultProxy(Number(new URL(gw.endpoint).port));
  proxy.tap = headerRecorder;
  s3 = gw.client();
  await s3.send(new CreateBucketCommand({ Bucket: 'plain' }));
  await s3.send(new CreateBucketCommand({ Bucket: 'worm', ObjectLockEnabledForBucket: true }));
});

after(async () => {
  await proxy?.close();
  await gw?.stop();
});

/** A tap that notes each request's checksum header (requests on one connection follow each other). */
function headerRecorder() {
  let head = '';
  return (chunk: Buffer) => {
    // A request's head starts a chunk (the SDK writes it before the body); a body chunk never starts with a method.
    const text = chunk.toString('latin1');
    if (/^(PUT|GET|HEAD|POST|DELETE) /.test(text)) head = text;
    else if (head) head += text;
    const end = head.indexOf('\r\n\r\n');
    if (end >= 0) {
      // One head per chunk at most: the rest of this chunk is body.
      const lines = head.slice(0, end).split('\r\n');
      const [method, url] = lines[0]!.split(' ');
      const sum = lines.find((l) => /^x-amz-checksum-sha256:/i.test(l));
      if (method === 'PUT' && sum) sentChecksums.set(decodeURIComponent(new URL(url!, 'http://x').pathname), sum.split(':')[1]!.trim());
      head = '';
    }
    if (head.length > 65536) head = '';
    return chunk;
  };
}

function config(over: Partial<S3TargetConfig> = {}): S3TargetConfig {
  return gw.targetConfig({ endpoint: `http://127.0.0.1:${proxy.port}`, bucket: 'plain', ...over });
}

const key = (rec: SealedRecording, ext: string) => `callvault/2026/12/${rec.recordingId}/${rec.recordingId}.${ext}`;

async function body(bucket: string, k: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: k }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

describe('S3 target (radosgw)', () => {
  test('a recording is put as one object per file with its sealed SHA-256 sent; a second put finds the copy and sends nothing', async () => {
    const target = new S3Target('s3', config());
    const rec = await sealed(200_000);
    const first = await target.put(rec);
    assert.ok(first.bytesSent > 200_000);
    assert.deepEqual(await body('plain', key(rec, 'wav')), rec.audio);
    for (const ext of ['json', 'sha256', 'sha256.SHA256withRSA.sig'])
      assert.ok(await s3.send(new HeadObjectCommand({ Bucket: 'plain', Key: key(rec, ext) })), `${ext} is there`);
    assert.equal(
      sentChecksums.get(`/plain/${key(rec, 'wav')}`),
      createHash('sha256').update(rec.audio).digest('base64'),
      'x-amz-checksum-sha256 is the sealed SHA-256',
    );
    const again = await target.put(rec);
    assert.equal(again.bytesSent, 0);
    assert.equal(again.completedAt.getTime(), first.completedAt.getTime());
    assert.equal((await target.find(rec))?.getTime(), first.completedAt.getTime());
  });

  test('bytes corrupted on the way are refused by the server (Content-MD5): the put fails, nothing is stored, the retry stores it whole', async () => {
    const target = new S3Target('s3', config());
    const rec = await sealed(300_000);
    // Flip the 100th byte of the audio object's body, once.
    proxy.tap = () => {
      let state: 'head' | 'body' | 'done' = 'head';
      let skip = 100;
      return (chunk: Buffer) => {
        let from = 0;
        if (state === 'head') {
          const at = chunk.indexOf('\r\n\r\n');
          if (at < 0 || !/^PUT [^ ]+\.wav/.test(chunk.toString('latin1', 0, at))) return chunk;
          state = 'body';
          from = at + 4;
        }
        if (state !== 'body' || from + skip >= chunk.length) {
          if (state === 'body') skip -= chunk.length - from;
          return chunk;
        }
        const c = Buffer.from(chunk);
        c[from + skip] = c[from + skip]! ^ 0xff;
        state = 'done';
        return c;
      };
    };
    try {
      await assert.rejects(target.put(rec), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'COPY_MISMATCH');
        assert.match(err.message, /corrupted in transit/);
        return true;
      });
    } finally {
      proxy.tap = headerRecorder;
    }
    await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: 'plain', Key: key(rec, 'wav') })), /NotFound/);
    assert.equal(await target.find(rec), undefined);
    await target.put(rec);
    assert.deepEqual(await body('plain', key(rec, 'wav')), rec.audio);
  });

  test('a file above the threshold goes in parts, each checked; a connection killed mid-upload aborts it, leaving no parts', async () => {
    const target = new S3Target('s3', config({ multipartThresholdMiB: 5, partSizeMiB: 5 }));
    const rec = await sealed(12 * 1024 * 1024 + 123);
    proxy.mode = 'cut';
    proxy.cutAfter = 7 * 1024 * 1024;
    await assert.rejects(target.put(rec));
    assert.equal(proxy.cuts >= 1, true);
    const pending = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'plain', Prefix: key(rec, 'wav') }));
    assert.equal(pending.Uploads?.length ?? 0, 0, 'the failed multipart upload was aborted');
    const done = await target.put(rec);
    assert.ok(done.bytesSent >= rec.audio.length);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'plain', Key: key(rec, 'wav') }));
    assert.match(head.ETag!, /-3"$/, 'three parts');
    assert.deepEqual(await body('plain', key(rec, 'wav')), rec.audio);
    assert.ok(await target.find(rec));
  });

  test('a local file that no longer matches its seal is not uploaded', async () => {
    const target = new S3Target('s3', config());
    const rec = await sealed(10_000);
    await writeFile(path.join(rec.dir, `${rec.recordingId}.wav`), randomBytes(10_000));
    await assert.rejects(target.put(rec), /no longer matches its seal/);
    await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: 'plain', Key: key(rec, 'wav') })), /NotFound/);
  });

  test('Object Lock: every object carries the mode, retain-until from retention and the legal hold; a removal reports what the lock keeps and forces nothing', async () => {
    const target = new S3Target('s3', config({ bucket: 'worm', objectLock: { mode: 'GOVERNANCE' } }));
    const until = new Date(Date.now() + 3 * 86400_000);
    const rec = await sealed(50_000, { retainUntil: until.toISOString(), legalHold: true });
    await target.put(rec);
    for (const ext of ['wav', 'json', 'sha256', 'sha256.SHA256withRSA.sig']) {
      const r = await s3.send(new GetObjectRetentionCommand({ Bucket: 'worm', Key: key(rec, ext) }));
      assert.equal(r.Retention?.Mode, 'GOVERNANCE');
      assert.equal(r.Retention?.RetainUntilDate?.toISOString(), until.toISOString());
      assert.equal((await s3.send(new GetObjectLegalHoldCommand({ Bucket: 'worm', Key: key(rec, ext) }))).LegalHold?.Status, 'ON');
    }
    await target.setLegalHold(rec, false);
    assert.equal((await s3.send(new GetObjectLegalHoldCommand({ Bucket: 'worm', Key: key(rec, 'wav') }))).LegalHold?.Status, 'OFF');
    const out = await target.remove(rec);
    assert.equal(out.kept.length, 4, JSON.stringify(out));
    for (const k of out.kept) assert.match(k.reason, new RegExp(`GOVERNANCE.*until ${until.toISOString().slice(0, 16)}`));
    assert.deepEqual(await body('worm', key(rec, 'wav')), rec.audio, 'still there: not forced');
  });

  test('without a retention end the objects go when released from legal hold: every version is deleted', async () => {
    const target = new S3Target('s3', config({ bucket: 'worm', objectLock: { mode: 'COMPLIANCE' } }));
    const rec = await sealed(20_000, { legalHold: true });
    await target.put(rec);
    const held = await target.remove(rec);
    assert.equal(held.kept.length, 4, 'a legal hold keeps them');
    assert.match(held.kept[0]!.reason, /legal hold/);
    await target.setLegalHold(rec, false);
    assert.deepEqual((await target.remove(rec)).kept, []);
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: 'worm', Prefix: key(rec, '').replace(/\.$/, '') }));
    assert.equal((versions.Versions ?? []).length + (versions.DeleteMarkers ?? []).length, 0);
  });

  test('a server that is down fails the put with the endpoint named; no secret in the error', async () => {
    const target = new S3Target('s3', config({ endpoint: `http://127.0.0.1:${proxy.port}`, timeoutSeconds: 2 }));
    const rec = await sealed(1000);
    proxy.mode = 'refuse';
    try {
      await assert.rejects(target.put(rec), (err: Error) => {
        assert.match(err.message, /storage target s3 \(s3:\/\/plain\//);
        assert.doesNotMatch(`${err.message}${JSON.stringify(err)}`, new RegExp(gw.secretAccessKey));
        return true;
      });
    } finally {
      proxy.mode = 'pass';
    }
  });
});

describe('daemon with an S3 Object Lock target (radosgw)', () => {
  let d: DaemonProcess;
  let daemonProxy: FaultProxy;
  let smtp: SmtpCapture;

  before(async () => {
    daemonProxy = await startFaultProxy(Number(new URL(gw.endpoint).port));
    const smtpPort = await freePort();
    smtp = captureSmtp(smtpPort);
    await smtp.listen();
    const yaml = testConfigYaml(
      `storage:\n  worm:\n    type: s3\n    endpoint: http://127.0.0.1:${daemonProxy.port}\n    bucket: worm\n    path: archive\n    pathStyle: true\n    credentialsFile: ${gw.credentialsFile}\n    objectLock:\n      mode: GOVERNANCE\n    template: $id\n    timeoutSeconds: 5\nprofiles:\n  - name: all\n    retention: 7d\n    storage: [worm]\n${mailConfigYaml(smtpPort)}`,
    );
    d = await DaemonProcess.start({ yaml });
  });

  after(async () => {
    assert.equal(await d?.stop(), 0);
    await daemonProxy?.close();
    await smtp?.close();
  });

  const objectKey = (id: string, ext: string) => `archive/${id}/${id}.${ext}`;

  test('a recording is archived with retain-until its retention end; callvault hold puts the objects under legal hold and release lifts it; bytes are counted', async () => {
    const id = await briefCall(d, { callId: 's3-1' });
    const st = await d.waitForState(id, 'uploaded', 30_000);
    assert.equal(st.stage, 'archived');
    const local = await readFile(path.join(st.dir, `${id}.wav`));
    assert.deepEqual(await body('worm', objectKey(id, 'wav')), local);
    const r = await s3.send(new GetObjectRetentionCommand({ Bucket: 'worm', Key: objectKey(id, 'wav') }));
    assert.equal(r.Retention?.Mode, 'GOVERNANCE');
    const [entry] = (await d.api('GET', '/v1/recordings?callId=s3-1')).body.recordings;
    assert.ok(entry.retainUntil);
    assert.equal(r.Retention?.RetainUntilDate?.toISOString(), entry.retainUntil);
    const hold = async () => (await s3.send(new GetObjectLegalHoldCommand({ Bucket: 'worm', Key: objectKey(id, 'json') }))).LegalHold?.Status;
    assert.equal(await hold(), 'OFF');
    const until = async (want: string) => {
      for (let i = 0; i < 300 && (await hold()) !== want; i++) await new Promise((res) => setTimeout(res, 100));
      return hold();
    };
    assert.equal(cli(d, ['hold', id, '--reason', 'case 9']).status, 0);
    assert.equal(await until('ON'), 'ON', 'the hold reaches the objects (the daemon sees the CLI’s lock jobs within its rescan)');
    assert.equal(cli(d, ['hold', id, '--release']).status, 0);
    assert.equal(await until('OFF'), 'OFF');
    const at = (await d.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
    const m = parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text());
    assert.ok((sampleValue(m, 'callvault_upload_bytes_total', { target: 'worm' }) ?? 0) >= local.length);
  });

  test('fault run: the server dies mid-upload and comes back; the recording arrives once and whole; one failure mail, one recovery mail', async () => {
    daemonProxy.afterCut = 'refuse';
    daemonProxy.cutAfter = 20_000;
    daemonProxy.mode = 'cut';
    const id = await briefCall(d, { callId: 's3-fault' });
    const failing = await smtp.waitMail(/storage target worm is failing/, 30_000);
    assert.ok(failing, 'a failure mail');
    assert.equal(daemonProxy.cuts, 1, 'the upload was cut in the middle');
    assert.match(failing.text, new RegExp(id));
    await new Promise((r) => setTimeout(r, 3000)); // more failed attempts meanwhile
    daemonProxy.mode = 'pass';
    const st = await d.waitForState(id, 'uploaded', 60_000);
    assert.ok(await smtp.waitMail(/storage target worm works again/, 30_000), 'a recovery mail');
    assert.ok(d.logs.filter((l) => l.msg === 'upload failed; will retry' && l.recordingId === id).length >= 2);
    assert.equal(smtp.count(/worm is failing/), 1);
    assert.equal(smtp.count(/worm works again/), 1);
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: 'worm', Prefix: `archive/${id}/` }));
    assert.deepEqual(
      (versions.Versions ?? []).map((v) => v.Key).sort(),
      (await readdir(st.dir))
        .filter((n) => !n.endsWith('.partial'))
        .map((n) => `archive/${id}/${n}`)
        .sort(),
      'each file once: no second version, nothing missing',
    );
    for (const v of versions.Versions ?? [])
      assert.deepEqual(await body('worm', v.Key!), await readFile(path.join(st.dir, path.posix.basename(v.Key!))), `${v.Key} whole`);
  });

  test('retention past the local end, while the objects are still locked on the server: deleted here, the locked objects reported and left', async () => {
    const [entry] = (await d.api('GET', '/v1/recordings?callId=s3-fault')).body.recordings;
    const id = entry.recordingId;
    // Our clock says retention is over; radosgw's says the lock (until retainUntil, a week on) is not.
    const r = await cliAsync(d, ['retention', 'run', '--now', new Date(Date.now() + 8 * 86400_000).toISOString(), '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((await d.api('GET', `/v1/recordings/${id}`)).body.state, 'deleted');
    assert.ok(await s3.send(new HeadObjectCommand({ Bucket: 'worm', Key: objectKey(id, 'wav') })), 'the object is still there: not forced');
    type Entry = { action: string; subject: string; details: { keptUnderLock?: { target: string; object: string; reason: string }[] } };
    const audit = cli(d, ['audit', 'list', '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Entry);
    const deleted = audit.find((e) => e.action === 'recording.deleted' && e.subject === id)!;
    assert.equal(deleted.details.keptUnderLock?.length, 4, JSON.stringify(deleted.details));
    for (const k of deleted.details.keptUnderLock!) {
      assert.equal(k.target, 'worm');
      assert.match(k.reason, new RegExp(`GOVERNANCE.*until ${entry.retainUntil.slice(0, 16)}`));
    }
  });
});
