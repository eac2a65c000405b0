/**
 * Sealing, measured against this machine's limits in the same run (issue
 * "Tamper-evident recordings"):
 *
 *   - seal a 1-hour stereo call (8 kHz, 2 ch, 16 bit ≈ 115 MB + metadata) through
 *     the real Sealer (Piscina pool, checksum file, signature, LMDB index);
 *   - hashing in the pool vs node:crypto's raw SHA-256 over one in-memory buffer;
 *   - signing in the pool vs `openssl speed rsa2048` (one thread vs one process;
 *     all threads vs `openssl speed -multi <cores>` and Node's own ceiling, for information).
 *
 *   node dist/native-free-bench/seal.js [--check] [--minutes 60] [--runs 5]
 *
 * --check exits 1 if a target is missed: seal < 1 s, hashing ≥ 80 % of raw,
 * one pool thread signing within 10 % of openssl.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, sign } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { SigningIdentity } from '../daemon/keys/SigningIdentity.js';
import { createLogger } from '../daemon/log.js';
import { metadataPath, METADATA_FORMAT, type RecordingMetadata } from '../daemon/record/metadata.js';
import { newRecordingId, recordingDir } from '../daemon/record/recordingId.js';
import { WAV_HEADER_BYTES, wavHeader } from '../daemon/record/wavFormat.js';
import { KekStore } from '../daemon/keys/kek/KekStore.js';
import { Sealer } from '../daemon/seal/Sealer.js';
import { WorkerPool } from '../daemon/seal/WorkerPool.js';
import { entryFromMetadata, RecordingIndex } from '../daemon/store/RecordingIndex.js';
import { check, numberOption } from './args.js';

const opt = numberOption;
const minutes = opt('minutes', 60);
const runs = opt('runs', 5);
const cores = availableParallelism();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** A WAV of `minutes` of stereo noise-like audio, written in 4 MiB blocks. */
async function writeCall(dir: string, id: string): Promise<RecordingMetadata> {
  const dataBytes = minutes * 60 * 8000 * 4;
  const fh = await open(path.join(dir, `${id}.wav`), 'w');
  await fh.write(wavHeader(2, dataBytes), 0, WAV_HEADER_BYTES, 0);
  const block = randomBytes(4 << 20);
  for (let off = 0; off < dataBytes; off += block.length) await fh.write(block, 0, Math.min(block.length, dataBytes - off));
  await fh.close();
  const leg = { number: '+4930123456', ssrcs: [1], firstPacketMs: 0, nonMediaBytes: 0, received: 0, lost: 0, late: 0, duplicate: 0, unknownPayload: 0, malformed: 0, resyncs: 0, jitter: 0 };
  const meta = {
    format: METADATA_FORMAT, recordingId: id, callId: `bench-${id}`, state: 'closed', recovered: false, direction: 'inbound', codec: 'PCMU', channelMode: 'stereo', profile: { name: 'bench', storage: [], encryption: false, retention: null },
    startedAt: new Date().toISOString(), endedAt: new Date().toISOString(), durationMs: minutes * 60_000, endReason: 'api',
    legs: { caller: leg, callee: leg }, dtmf: [], files: [{ name: `${id}.wav`, legs: ['caller', 'callee'], channels: 2, dataBytes, durationMs: minutes * 60_000 }],
  } as unknown as RecordingMetadata;
  await writeFile(metadataPath(dir, id), JSON.stringify(meta, null, 2));
  return meta;
}

function rawSha256MBps(): number {
  const buf = randomBytes(64 << 20);
  createHash('sha256').update(buf.subarray(0, 1 << 20)).digest(); // warm up
  const t0 = performance.now();
  let bytes = 0;
  while (performance.now() - t0 < 2000) {
    createHash('sha256').update(buf).digest();
    bytes += buf.length;
  }
  return bytes / 1e6 / ((performance.now() - t0) / 1000);
}

function nodeSignsPerSecond(identity: SigningIdentity): number {
  const data = randomBytes(300);
  const t0 = performance.now();
  let n = 0;
  for (; performance.now() - t0 < 2000; n++) sign('sha256', data, identity.privateKey);
  return n / ((performance.now() - t0) / 1000);
}

function opensslSignsPerSecond(multi: number): number {
  const args = ['speed', '-seconds', '2', ...(multi > 1 ? ['-multi', String(multi)] : []), 'rsa2048'];
  const out = execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  // "rsa 2048 bits 0.000587s 0.000017s 1703.6 58823.5" (sign, verify, sign/s, verify/s); -multi prints "+F2:…" lines too.
  const m = /rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)/.exec(out);
  if (!m) throw new Error(`cannot parse openssl speed output:\n${out}`);
  return Number(m[1]);
}

async function poolSignsPerSecond(pool: WorkerPool, identity: SigningIdentity): Promise<number> {
  const data = randomBytes(300);
  await Promise.all(Array.from({ length: 50 }, () => pool.sign(data, identity.privateKey)));
  const t0 = performance.now();
  let n = 0;
  // A burst of hang-ups: 64 signatures outstanding per thread, as when hundreds of calls end together.
  const lane = async () => {
    while (performance.now() - t0 < 2000) {
      await pool.sign(data, identity.privateKey);
      n++;
    }
  };
  await Promise.all(Array.from({ length: pool.threads * 64 }, lane));
  return n / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'callvault-bench-seal-'));
  const log = createLogger('silent');
  try {
    const identity = await SigningIdentity.loadOrCreate({ dataDir, keyBits: 2048, passphrase: 'bench-only-passphrase' });
    const index = RecordingIndex.open(dataDir);
    const pool = new WorkerPool('auto');
    const sealer = new Sealer(dataDir, pool, identity, new KekStore(dataDir), index, log);

    const id = newRecordingId();
    const dir = recordingDir(dataDir, id);
    await mkdir(dir, { recursive: true });
    const meta = await writeCall(dir, id);
    const wavBytes = meta.files[0]!.dataBytes + WAV_HEADER_BYTES;
    await index.put(entryFromMetadata(meta, dataDir, 'finalizing'));

    const raw = rawSha256MBps();
    const hashMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await pool.hashFile(path.join(dir, `${id}.wav`));
      hashMs.push(performance.now() - t0);
    }
    const hashMBps = wavBytes / 1e6 / (median(hashMs) / 1000);

    const sealMs: number[] = [];
    for (let i = 0; i < runs; i++) sealMs.push((await sealer.seal(meta)).ms);

    await pool.close();
    await index.close();

    // Each pool measured alone, next to its openssl baseline, so drift in the machine hits both alike.
    const signRate = async (threads: number) => {
      const p = new WorkerPool(threads);
      try {
        return await poolSignsPerSecond(p, identity);
      } finally {
        await p.close();
      }
    };
    // Three alternating rounds, medians: this VM's speed drifts by ±10 % between seconds.
    const rounds = { openssl1: [] as number[], node1: [] as number[], ours1: [] as number[] };
    for (let r = 0; r < 3; r++) {
      rounds.openssl1.push(opensslSignsPerSecond(1));
      rounds.node1.push(nodeSignsPerSecond(identity));
      rounds.ours1.push(await signRate(1));
    }
    const [openssl1, node1, ours1] = [median(rounds.openssl1), median(rounds.node1), median(rounds.ours1)];
    const opensslN = cores > 1 ? opensslSignsPerSecond(cores) : openssl1;
    const oursN = await signRate(cores);

    // The bar compares like with like: one pool thread against `openssl speed rsa2048` (one process).
    // The whole pool against `openssl speed -multi` is reported, not gated: on a 2-core
    // machine the main thread that feeds the pool shares the cores openssl has to itself.
    const rows: [string, string, string, boolean | null][] = [
      [`seal ${minutes}-min stereo call (${(wavBytes / 1e6).toFixed(0)} MB), median of ${runs}`, `${median(sealMs).toFixed(0)} ms`, '< 1000 ms', median(sealMs) < 1000],
      ['SHA-256 in the pool (1 file, page cache)', `${hashMBps.toFixed(0)} MB/s`, `≥ 80 % of raw ${raw.toFixed(0)} MB/s: ${((100 * hashMBps) / raw).toFixed(0)} %`, hashMBps >= 0.8 * raw],
      ['RSA-2048 sign, pool of 1 thread (median of 3 rounds)', `${ours1.toFixed(0)} /s`, `openssl 1 process ${openssl1.toFixed(0)} /s: ${((100 * ours1) / openssl1).toFixed(0)} %`, ours1 >= 0.9 * openssl1],
      ['RSA-2048 sign, node:crypto loop on one thread (ceiling)', `${node1.toFixed(0)} /s`, `openssl 1 process: ${((100 * node1) / openssl1).toFixed(0)} %`, null],
      [`RSA-2048 sign, pool of ${cores} threads`, `${oursN.toFixed(0)} /s`, `openssl -multi ${cores} ${opensslN.toFixed(0)} /s: ${((100 * oursN) / opensslN).toFixed(0)} %`, null],
    ];
    console.log(`\nSealing on ${cpus()[0]?.model ?? 'unknown CPU'} (${cores} cores), Node ${process.version}\n`);
    console.log('| measure | callvault | target / baseline (same run) | met |\n|---|---|---|---|');
    for (const [what, ours, target, met] of rows) console.log(`| ${what} | ${ours} | ${target} | ${met === null ? '(info)' : met ? 'yes' : 'NO'} |`);
    console.log(JSON.stringify({ bench: 'seal', sealMs, hashMBps, rawSha256MBps: raw, sign: { pool1: ours1, poolN: oursN, node1, openssl1, opensslN } }));
    if (check && rows.some((r) => r[3] === false)) process.exitCode = 1;
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
