/**
 * Storage targets, measured against plain tools in the same run (issue
 * "Storage targets"):
 *
 *   - upload throughput per target type on loopback — directory, SFTP (Debian's
 *     OpenSSH), SMB (Debian's Samba, SMB3 encrypted), S3 (Ceph's radosgw) —
 *     against a plain copy of the same audio with the same kind of tool: cp,
 *     scp, smbclient put, curl's one SigV4 PUT. A target's copy carries the
 *     seal files too and is checked there, so it moves a little more;
 *   - 1,000 recordings' uploads draining after an outage while new calls are
 *     sealed: seal latency (closed → sealed) p99 during the drain against p99
 *     with the target down (nothing uploading), same run.
 *
 *   scripts/node dist/native-free-bench/uploads.js [--check] [--mb 64] [--runs 3] [--backlog 1000] [--seals 100] [--skip-servers]
 *
 * --check exits 1 if the seal p99 during the drain is more than 10 % above the
 * one without it. OneDrive is left out: no real Graph is reachable here, and a
 * figure against the local test server would measure that server.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { retryUploads } from '../daemon/archive/uploadStatus.js';
import { newJob } from '../daemon/archive/JobTypes.js';
import { apply, startedEntry } from '../daemon/archive/lifecycle.js';
import { StageRunner } from '../daemon/archive/StageRunner.js';
import { SealStage } from '../daemon/archive/stages/SealStage.js';
import { UploadStage } from '../daemon/archive/stages/UploadStage.js';
import type { StorageTargetConfig } from '../daemon/config/Config.js';
import { KekStore } from '../daemon/keys/kek/KekStore.js';
import { SigningIdentity } from '../daemon/keys/SigningIdentity.js';
import { createLogger } from '../daemon/log.js';
import { newRecordingId, recordingDir } from '../daemon/record/recordingId.js';
import { WAV_HEADER_BYTES } from '../daemon/record/wavFormat.js';
import { WorkerPool } from '../daemon/seal/WorkerPool.js';
import { RecordingIndex } from '../daemon/store/RecordingIndex.js';
import { createTargets, type SealedRecording } from '../daemon/upload/StorageTarget.js';
import { startRadosgw } from '../test/support/radosgw.js';
import { sealedFixture } from '../test/support/sealedFixture.js';
import { startSmbd } from '../test/support/smbd.js';
import { startSshd } from '../test/support/sshd.js';
import { flag, numberOption } from './args.js';
import { writeCall } from './fixtures.js';
import { report, type Row } from './report.js';

const mb = numberOption('mb', 64);
const runs = numberOption('runs', 3);
const backlog = numberOption('backlog', 1000);
const seals = numberOption('seals', 100);
const skipServers = flag('skip-servers');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] as number;
const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Median MB/s of `runs` fresh recordings through a target, and of the plain tool over the same audio. */
async function throughput(
  kind: string,
  config: StorageTargetConfig,
  dataDir: string,
  pool: WorkerPool,
  plain: (rec: SealedRecording & { audio: Buffer }, i: number) => void | Promise<void>,
): Promise<Row[]> {
  const target = createTargets({ bench: config }, pool, dataDir).get('bench')!;
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const rec = await sealedFixture(mb * 1e6);
    ours.push(mbps(rec.audio.length, await timed(() => target.put(rec))));
    theirs.push(mbps(rec.audio.length, await timed(() => plain(rec, i))));
    await rm(rec.dir, { recursive: true, force: true });
  }
  const [a, b] = [median(ours), median(theirs)];
  return [
    {
      measure: `${kind}: upload, ${mb} MB recording`,
      figure: `${a.toFixed(0)} MB/s`,
      baseline: `${b.toFixed(0)} MB/s plain (${((a / b) * 100).toFixed(0)} %)`,
    },
  ];
}

async function throughputRows(pool: WorkerPool): Promise<Row[]> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'callvault-bench-up-'));
  const rows: Row[] = [];
  const template = '$id';
  const base = { template, timeZone: 'UTC' };
  rows.push(
    ...(await throughput('directory', { type: 'directory', path: path.join(work, 'dir'), ...base }, work, pool, async (rec, i) => {
      await mkdir(path.join(work, 'cp'), { recursive: true });
      const to = path.join(work, 'cp', `${i}.wav`);
      await copyFile(path.join(rec.dir, `${rec.recordingId}.wav`), to);
      execFileSync('sync', ['-f', to]);
    })),
  );
  if (skipServers) return rows;
  const sshd = await startSshd();
  try {
    rows.push(
      ...(await throughput(
        'sftp (OpenSSH)',
        {
          type: 'sftp',
          host: '127.0.0.1',
          port: sshd.port,
          username: sshd.user,
          hostKey: sshd.hostKey,
          privateKeyFile: sshd.clientKey,
          passwordFile: null,
          path: 'bench',
          timeoutSeconds: 60,
          ...base,
        },
        work,
        pool,
        (rec, i) => {
          execFileSync('scp', [
            '-q',
            '-P',
            String(sshd.port),
            '-i',
            sshd.clientKey,
            '-o',
            'StrictHostKeyChecking=no',
            '-o',
            'UserKnownHostsFile=/dev/null',
            path.join(rec.dir, `${rec.recordingId}.wav`),
            `${sshd.user}@127.0.0.1:scp-${i}.wav`,
          ]);
        },
      )),
    );
  } finally {
    await sshd.stop();
  }
  const smbd = await startSmbd();
  try {
    const auth = path.join(work, 'smb-auth');
    await writeFile(auth, `username = ${smbd.user}\npassword = ${(await readFile(smbd.passwordFile, 'utf8')).trim()}\n`, { mode: 0o600 });
    rows.push(
      ...(await throughput(
        'smb (Samba, SMB3 encrypted)',
        {
          type: 'smb',
          host: '127.0.0.1',
          port: smbd.port,
          share: smbd.share,
          username: smbd.user,
          domain: 'WORKGROUP',
          passwordFile: smbd.passwordFile,
          encrypt: true,
          path: 'bench',
          timeoutSeconds: 60,
          ...base,
        },
        work,
        pool,
        (rec, i) => {
          execFileSync(
            'smbclient',
            [
              `//127.0.0.1/${smbd.share}`,
              '-p',
              String(smbd.port),
              '-A',
              auth,
              '-m',
              'SMB3',
              '--client-protection=encrypt',
              '-c',
              `lcd "${rec.dir}"; put ${rec.recordingId}.wav plain-${i}.wav`,
            ],
            { stdio: ['ignore', 'ignore', 'pipe'] },
          );
        },
      )),
    );
  } finally {
    await smbd.stop();
  }
  const gw = await startRadosgw();
  try {
    const s3 = gw.client();
    await s3.send(new CreateBucketCommand({ Bucket: 'bench' }));
    rows.push(
      ...(await throughput('s3 (radosgw)', gw.targetConfig({ bucket: 'bench', timeoutSeconds: 120, ...base }), work, pool, (rec, i) => {
        execFileSync('curl', [
          '-sS',
          '--fail',
          '-T',
          path.join(rec.dir, `${rec.recordingId}.wav`),
          '-H',
          'x-amz-content-sha256: UNSIGNED-PAYLOAD',
          '--aws-sigv4',
          'aws:amz:us-east-1:s3',
          '--user',
          `${gw.accessKeyId}:${gw.secretAccessKey}`,
          `${gw.endpoint}/bench/plain-${i}.wav`,
        ]);
      })),
    );
  } finally {
    await gw.stop();
  }
  await rm(work, { recursive: true, force: true });
  return rows;
}

/** Seal latency (closed → sealed) with uploads down, then while `backlog` uploads drain. */
async function drainRows(): Promise<{ rows: Row[]; figures: Record<string, number> }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'callvault-bench-drain-'));
  const log = createLogger('silent');
  const identity = await SigningIdentity.loadOrCreate({ dataDir, keyBits: 2048, passphrase: 'bench-only-passphrase' });
  const index = RecordingIndex.open(dataDir);
  const pool = new WorkerPool('auto');
  const uploads = new UploadStage(dataDir, index, pool, log);
  const runner = new StageRunner({ index, log, owner: `${os.hostname()}:${process.pid}`, backoff: { baseMs: 60_000, maxMs: 3_600_000 } })
    .register(new SealStage(dataDir, pool, identity, new KekStore(dataDir), index, log))
    .register(uploads);
  const down = path.join(dataDir, 'mount-missing');
  await writeFile(down, 'the mount is not there');
  const archive = path.join(dataDir, 'archive');
  uploads.configure({ archive: { type: 'directory', path: down, template: '$Y/$M/$D/$id', timeZone: 'UTC' } });
  const sealedAt = new Map<string, (ms: number) => void>();
  let uploaded = 0;
  runner.observer.on('done', (stage, _lane, id) => {
    if (stage === 'seal') sealedAt.get(id)?.(performance.now());
    else if (stage === 'upload') uploaded++;
  });
  await runner.start();
  let wavBytes = 0;
  /** A call closes: its recording and seal job journaled together, as the recorder does; resolves with closed → sealed ms. */
  const close = async (): Promise<number> => {
    const id = newRecordingId();
    const dir = recordingDir(dataDir, id);
    await mkdir(dir, { recursive: true });
    const meta = await writeCall(dir, id, { seconds: 10, storage: ['archive'] });
    wavBytes = meta.files[0]!.dataBytes + WAV_HEADER_BYTES;
    const done = new Promise<number>((r) => sealedAt.set(id, r));
    const t0 = performance.now();
    await index.create(apply(startedEntry(meta, dataDir), { type: 'closed', endedAt: meta.endedAt, durationMs: meta.durationMs }), [
      { put: newJob('seal', id, '', null) },
    ]);
    runner.poke();
    return (await done) - t0;
  };
  /** `n` calls closing 20 per second, as a busy contact centre's do. */
  const cadence = async (n: number) => {
    const out: Promise<number>[] = [];
    for (let i = 0; i < n; i++) {
      out.push(close());
      await new Promise((r) => setTimeout(r, 50));
    }
    return Promise.all(out);
  };
  // The outage: recordings pile up, sealed, their copies owed.
  const t0 = performance.now();
  for (let i = 0; i < backlog; i += 50) await Promise.all(Array.from({ length: Math.min(50, backlog - i) }, () => close()));
  const pileMs = performance.now() - t0;
  const quiet = await cadence(seals);
  // The mount is back: every owed copy is due at once.
  uploads.configure({ archive: { type: 'directory', path: archive, template: '$Y/$M/$D/$id', timeZone: 'UTC' } });
  const drainStart = performance.now();
  const owed = await retryUploads(index);
  runner.poke();
  const busy = await cadence(seals);
  const duringDrain = uploaded;
  // Owed: the backlog and the calls sealed while the target was down; then the calls sealed during the drain.
  for (const deadline = Date.now() + 3_600_000; uploaded < owed + seals && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
  const drainMs = performance.now() - drainStart;
  await runner.drain();
  await pool.close();
  await index.close();
  await rm(dataDir, { recursive: true, force: true });
  const [p99q, p99b, p50q, p50b] = [quantile(quiet, 0.99), quantile(busy, 0.99), quantile(quiet, 0.5), quantile(busy, 0.5)];
  return {
    rows: [
      { measure: `backlog: ${backlog} recordings sealed during the outage`, figure: `${(pileMs / 1000).toFixed(1)} s`, baseline: 'information' },
      {
        measure: `drain: ${owed} owed copies (${(wavBytes / 1e3).toFixed(0)} kB each) + ${seals} new, to a directory target`,
        figure: `${(drainMs / 1000).toFixed(1)} s (${((owed * wavBytes) / 1e6 / (drainMs / 1000)).toFixed(0)} MB/s)`,
        baseline: `${duringDrain} copies made while the ${seals} new calls were sealed`,
      },
      {
        measure: 'seal latency p50, closed → sealed',
        figure: `${p50b.toFixed(0)} ms while draining`,
        baseline: `${p50q.toFixed(0)} ms with the target down`,
      },
      {
        measure: 'seal latency p99, closed → sealed',
        figure: `${p99b.toFixed(0)} ms while draining`,
        baseline: `${p99q.toFixed(0)} ms with the target down; ≤ ${(p99q * 1.1).toFixed(0)} ms (+10 %)`,
        met: p99b <= p99q * 1.1,
      },
    ],
    figures: { pileMs, drainMs, owed, p50q, p50b, p99q, p99b, copiesDuringSeals: duringDrain },
  };
}

async function main(): Promise<void> {
  const pool = new WorkerPool('auto');
  const tp = await throughputRows(pool);
  await pool.close();
  const drain = await drainRows();
  report('uploads', 'Storage targets: throughput vs plain tools; seals while a backlog drains', [...tp, ...drain.rows], {
    mb,
    runs,
    ...drain.figures,
  });
}

await main();
