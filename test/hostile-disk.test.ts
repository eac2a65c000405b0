/**
 * Storage going wrong under a running daemon: a data dir that fills up while
 * calls run, descriptors running out while a recording is sealed, a damaged
 * index or audit environment, leftovers of a crash during set-up.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { access, cp, mkdir, mkdtemp, open, readdir, readFile, rm, statfs, truncate, unlink, writeFile } from 'node:fs/promises';
import { request, Agent } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { newRecordingId, recordingDir } from '../daemon/record/recordingId.js';
import { readWav, rms, tonePower } from './support/audio.js';
import { asVersion1Index } from './support/v1index.js';
import { DaemonProcess, MAIN, PASSPHRASE, sendRtp, startCall, testConfigYaml, TOKEN } from './support/daemon.js';
import { parsePrometheusText } from './support/promtext.js';
import { recordCall } from './support/record.js';
import { toneStream, type StreamPlan } from './support/rtpPlan.js';

const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const callvault = (...args: string[]) =>
  spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { ...process.env, CALLVAULT_SIGNING_PASSPHRASE: PASSPHRASE } });

const stream = (port: number, freq: number, durationMs: number): StreamPlan => toneStream(port, freq, { durationMs });

async function fillTo(file: string, dir: string, leaveBytes: number): Promise<void> {
  const fs = await statfs(dir);
  const n = Math.max(0, fs.bavail * fs.bsize - leaveBytes);
  const fh = await open(file, 'a');
  const chunk = Buffer.alloc(MB, 1);
  try {
    for (let done = 0; done < n; done += MB) await fh.write(chunk, 0, Math.min(MB, n - done));
  } catch {
    // a full disk is the point
  } finally {
    await fh.close();
  }
}

async function metrics(d: DaemonProcess) {
  const at = (await d.waitFor((l) => l.msg === 'metrics listening')).metrics as string;
  return parsePrometheusText(await (await fetch(`http://${at}/metrics`)).text());
}

describe('a data dir that fills up while calls run (tmpfs)', () => {
  const base = path.join(os.tmpdir(), `callvault-full-${process.pid}`);
  const mnt = path.join(base, 'mnt');
  const filler = path.join(mnt, 'filler');
  let d: DaemonProcess | undefined;
  after(async () => {
    if (d) await d.stop();
    for (let i = 0; i < 20 && spawnSync('umount', [mnt]).status !== 0; i++) await sleep(100);
    await rm(base, { recursive: true, force: true });
  });

  test('running calls survive ENOSPC: audio resumes when space returns, the gap is in the metadata, the file keeps the call length; a call that ends on a full disk is still closed and sealed', async () => {
    await mkdir(mnt, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt]);
    const dataDir = path.join(mnt, 'data');
    const configFile = path.join(base, 'full.yaml');
    await writeFile(configFile, testConfigYaml().replace('minFreeDiskMB: 1\n  diskReserveMB: 1', 'minFreeDiskMB: 0\n  diskReserveMB: 2'));
    const dd = await DaemonProcess.start({ dataDir, configFile });
    d = dd;
    await access(path.join(dataDir, 'space-reserve'));

    // Two calls, then the disk fills under them; space comes back 2 s later.
    const calls = await Promise.all(['full-a', 'full-b'].map((callId) => startCall(dd, { callId })));
    const sending = sendRtp({
      streams: calls.flatMap((c, i) => [stream(c.legs.caller.port, 440 + 100 * i, 7000), stream(c.legs.callee.port, 1000 + 100 * i, 7000)]),
    });
    await sleep(1000);
    await fillTo(filler, mnt, 100 * 1024);
    await dd.waitFor((l) => l.msg.startsWith('disk full: space reserve released'), 8000);
    assert.equal(dd.child.exitCode, null, 'the daemon lives');
    await sleep(1500);
    await truncate(filler, 0);
    await dd.waitFor((l) => l.msg === 'trying to write audio again', 5000);
    await sending;
    for (const [i, c] of calls.entries()) {
      assert.equal((await dd.api('DELETE', `/v1/calls/full-${'ab'[i]}`)).status, 202);
      const st = await dd.waitForState(c.recordingId, 'sealed');
      const meta = st.metadata;
      assert.ok(meta.gaps.length >= 1, `call ${i} has its gap marked: ${JSON.stringify(meta.gaps)}`);
      const gap = meta.gaps[0];
      assert.equal(gap.code, 'ENOSPC');
      assert.ok(gap.fromMs > 500 && gap.toMs > gap.fromMs && gap.toMs < meta.durationMs - 1000, JSON.stringify({ gap, durationMs: meta.durationMs }));
      const wav = await readWav(path.join(st.dir, meta.files[0].name));
      assert.ok(
        Math.abs(wav.dataBytes / 4 / 8 - meta.durationMs) <= 40,
        `the file is as long as the call: ${wav.dataBytes / 32} ms vs ${meta.durationMs}`,
      );
      const left = wav.channels_[0] as Float64Array;
      const resumedAt = Math.round(gap.toMs * 8) + 1600;
      assert.ok(rms(left, resumedAt, resumedAt + 4000) > 0.05, 'audio again after the gap');
      assert.ok(tonePower(left, 440 + 100 * i, resumedAt, resumedAt + 4000) > 100 * tonePower(left, 2000, resumedAt, resumedAt + 4000));
      assert.ok(rms(left, Math.round(gap.fromMs * 8) + 80, Math.round(gap.toMs * 8) - 80) < 0.001, 'the gap itself is silence');
      const v = callvault('verify', st.dir, '--data-dir', dataDir);
      assert.equal(v.status, 0, v.stdout + v.stderr);
    }
    const m = await metrics(dd);
    assert.ok((m.get('callvault_audio_write_errors_total')?.samples ?? []).some((s) => s.labels.code === 'ENOSPC' && s.value >= 1));
    assert.equal(m.get('callvault_recordings_write_suspended')?.samples[0]?.value, 0);

    // Full until the call ends: the released reserve lets it close and be sealed.
    for (
      let i = 0;
      i < 50 &&
      !(await access(path.join(dataDir, 'space-reserve')).then(
        () => true,
        () => false,
      ));
      i++
    )
      await sleep(100);
    await access(path.join(dataDir, 'space-reserve'));
    const c = await startCall(dd, { callId: 'full-end' });
    const s2 = sendRtp({ streams: [stream(c.legs.caller.port, 440, 3000), stream(c.legs.callee.port, 1000, 3000)] });
    await sleep(500);
    await fillTo(filler, mnt, 0);
    await s2;
    assert.equal((await dd.api('DELETE', '/v1/calls/full-end')).status, 202);
    const st = await dd.waitForState(c.recordingId, 'sealed', 40_000);
    assert.ok(st.metadata.gaps.length >= 1 && st.metadata.gaps.at(-1).toMs >= st.metadata.durationMs - 40, JSON.stringify(st.metadata.gaps));
    assert.equal(dd.child.exitCode, null);
    await truncate(filler, 0);
  });
});

describe('an encrypting profile on a data dir that fills up (tmpfs)', () => {
  const base = path.join(os.tmpdir(), `callvault-full-enc-${process.pid}`);
  const mnt = path.join(base, 'mnt');
  let d: DaemonProcess | undefined;
  after(async () => {
    if (d) await d.stop();
    for (let i = 0; i < 20 && spawnSync('umount', [mnt]).status !== 0; i++) await sleep(100);
    await rm(base, { recursive: true, force: true });
  });

  test('chunks that cannot be written are a gap in the metadata; the envelope verifies and exports with the gap as silence and the audio after it in place', async () => {
    await mkdir(mnt, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt]);
    const dataDir = path.join(mnt, 'data');
    const configFile = path.join(base, 'full-enc.yaml');
    const shares = ['a', 'b'].flatMap((x) => [`--share-${x}-pass-file`, path.join(base, `${x}.pass`)]);
    await writeFile(path.join(base, 'a.pass'), 'custodian-a correct horse battery\n', { mode: 0o600 });
    await writeFile(path.join(base, 'b.pass'), 'custodian-b staple orbit lantern\n', { mode: 0o600 });
    const yaml = testConfigYaml('profiles:\n  - name: pci\n    encryption: true\n').replace(
      'minFreeDiskMB: 1\n  diskReserveMB: 1',
      'minFreeDiskMB: 0\n  diskReserveMB: 2',
    );
    await writeFile(configFile, yaml);
    const init = callvault('keys', 'init', '--json', '--config', configFile, '--data-dir', dataDir, ...shares);
    assert.equal(init.status, 0, init.stderr);
    await writeFile(configFile, `${yaml}encryption:\n  trustedKeks: ["${JSON.parse(init.stdout).fingerprintSha256}"]\n`);
    const dd = await DaemonProcess.start({ dataDir, configFile });
    d = dd;
    const filler = path.join(mnt, 'filler');
    const c = await startCall(dd, { callId: 'full-enc' });
    const sending = sendRtp({ streams: [stream(c.legs.caller.port, 440, 7000), stream(c.legs.callee.port, 1000, 7000)] });
    await sleep(1500);
    await fillTo(filler, mnt, 0);
    await dd.waitFor((l) => l.msg.startsWith('disk full: space reserve released'), 8000);
    await sleep(1500);
    await truncate(filler, 0);
    await dd.waitFor((l) => l.msg === 'trying to write audio again', 5000);
    await sending;
    assert.equal((await dd.api('DELETE', '/v1/calls/full-enc')).status, 202);
    const st = await dd.waitForState(c.recordingId, 'encrypted');
    const gap = st.metadata.gaps[0];
    assert.equal(gap?.code, 'ENOSPC', JSON.stringify(st.metadata.gaps));
    assert.ok(
      gap.chunks[1] > gap.chunks[0] && gap.fromMs > 500 && gap.toMs < st.metadata.durationMs - 1000,
      JSON.stringify({ gap, durationMs: st.metadata.durationMs }),
    );
    const v = callvault('verify', st.dir, '--decrypt', '--config', configFile, '--data-dir', dataDir, ...shares);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    const out = path.join(base, 'full-enc.wav');
    const ex = callvault('export', c.recordingId, '--out', out, '--config', configFile, '--data-dir', dataDir, ...shares);
    assert.equal(ex.status, 0, ex.stderr);
    const wav = await readWav(out);
    assert.ok(
      Math.abs(wav.dataBytes / 32 - st.metadata.durationMs) <= 40,
      `the file is as long as the call: ${wav.dataBytes / 32} ms vs ${st.metadata.durationMs}`,
    );
    const left = wav.channels_[0] as Float64Array;
    assert.ok(rms(left, Math.round(gap.fromMs * 8) + 80, Math.round(gap.toMs * 8) - 80) < 0.001, 'the gap is silence');
    const resumedAt = Math.round(gap.toMs * 8) + 1600;
    assert.ok(
      tonePower(left, 440, resumedAt, resumedAt + 4000) > 100 * tonePower(left, 2000, resumedAt, resumedAt + 4000),
      'audio again after the gap',
    );
  });
});

describe('sealing when descriptors or the index fail', () => {
  test('out of file descriptors while a call ends: the seal is retried and succeeds once descriptors are back', async () => {
    const d = await DaemonProcess.start();
    try {
      const c = await startCall(d, { callId: 'emfile-1' });
      await sendRtp({ streams: [stream(c.legs.caller.port, 440, 800), stream(c.legs.callee.port, 1000, 800)] });
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const call = (method: string, route: string) =>
        new Promise<number>((resolve, reject) => {
          const req = request(d.controlUrl + route, { method, agent, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end();
        });
      assert.equal(await call('GET', '/v1/recordings?limit=1'), 200); // the connection the DELETE will reuse
      // The daemon (index, markers) and the media shard that writes the call's files, both out of descriptors.
      const pids = [String(d.child.pid), String(d.shardPid())];
      const [soft, hard] = /Max open files\s+(\d+)\s+(\d+)/.exec(await readFile(`/proc/${pids[0]}/limits`, 'utf8'))!.slice(1) as [string, string];
      // EMFILE is about descriptor numbers: below the ones in use, every new open fails.
      for (const pid of pids) execFileSync('prlimit', ['--pid', pid, `--nofile=8:${hard}`]);
      try {
        assert.equal(await call('DELETE', '/v1/calls/emfile-1'), 202);
        await d.waitFor((l) => /retrying|trying again/.test(l.msg) && JSON.stringify(l).includes('EMFILE'), 10_000);
      } finally {
        for (const pid of pids) execFileSync('prlimit', ['--pid', pid, `--nofile=${soft}:${hard}`]);
      }
      const st = await d.waitForState(c.recordingId, 'sealed', 30_000);
      assert.equal(st.error, null);
      agent.destroy();
    } finally {
      assert.equal(await d.stop(), 0);
    }
  });

  test('a recording left failed by a transient error (as earlier versions did) is resealed at the next start', async () => {
    let d = await DaemonProcess.start();
    const rec = await recordCall(d, { callId: 'refail-1', caller: { freq: 440, durationMs: 600 }, callee: { freq: 1000, durationMs: 600 } });
    assert.equal(await d.stop(), 0);
    for (const name of await readdir(rec.dir)) if (name.endsWith('.sha256') || name.endsWith('.sig')) await unlink(path.join(rec.dir, name));
    await asVersion1Index(d.dataDir, rec.recordingId, { state: 'failed', error: 'seal failed: EMFILE: too many open files', sealedAt: null });
    d = await DaemonProcess.start({ dataDir: d.dataDir, configFile: d.configFile });
    try {
      const st = await d.waitForState(rec.recordingId, 'sealed');
      assert.equal(st.error, null);
      assert.equal(callvault('verify', rec.dir, '--data-dir', d.dataDir).status, 0);
    } finally {
      assert.equal(await d.stop(), 0);
    }
  });
});

describe('a damaged index or audit environment', () => {
  let pristine: DaemonProcess;
  const copies: string[] = [];
  after(async () => {
    for (const c of copies) await rm(c, { recursive: true, force: true });
  });

  async function damagedCopy(what: 'index/index.mdb' | 'audit/audit.mdb', damage: (file: string) => Promise<void>): Promise<string> {
    pristine ??= await (async () => {
      const d = await DaemonProcess.start();
      await recordCall(d, { callId: 'idx-1', caller: { freq: 440, durationMs: 300 }, callee: { freq: 1000, durationMs: 300 } });
      assert.equal(await d.stop(), 0);
      return d;
    })();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-damaged-'));
    copies.push(dir);
    await cp(pristine.dataDir, dir, { recursive: true });
    await damage(path.join(dir, what));
    return dir;
  }

  const zero = async (f: string) => writeFile(f, Buffer.alloc((await readFileSize(f)) || 65536));
  const garbage = async (f: string) => writeFile(f, Buffer.from(Array.from({ length: 40_000 }, (_, i) => (i * 7919 + 13) & 0xff)));
  const cut = async (f: string) => truncate(f, 8192);

  for (const [what, name, damage] of [
    ['index/index.mdb', 'zeroed', zero],
    ['index/index.mdb', 'truncated', cut],
    ['index/index.mdb', 'garbage', garbage],
    ['audit/audit.mdb', 'zeroed', zero],
    ['audit/audit.mdb', 'truncated', cut],
  ] as const) {
    test(`a ${name} ${what}: CLI and daemon fail with one line naming the file, never by a signal`, async () => {
      const dir = await damagedCopy(what, damage);
      const r = callvault('recordings', 'list', '--data-dir', dir, '--config', pristine.configFile);
      assert.equal(r.signal, null, `no signal: ${r.signal}`);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`${what.replace('.', '\\.')} is damaged`));
      if (what.startsWith('index')) assert.match(r.stderr, /callvault reindex/);
      const d = spawnSync(process.execPath, [MAIN, 'daemon', '--data-dir', dir, '--config', pristine.configFile], {
        encoding: 'utf8',
        timeout: 20_000,
        env: { ...process.env, CALLVAULT_CONTROL_TOKEN: TOKEN, CALLVAULT_SIGNING_PASSPHRASE: PASSPHRASE },
      });
      assert.equal(d.signal, null, `daemon died by ${d.signal}`);
      assert.equal(d.status, 1);
      assert.match(d.stdout, /is damaged/);
      if (what.startsWith('index')) {
        const re = callvault('reindex', '--data-dir', dir, '--config', pristine.configFile);
        assert.equal(re.status, 0, re.stderr);
        assert.equal(callvault('recordings', 'list', '--data-dir', dir, '--config', pristine.configFile).status, 0);
      }
    });
  }
});

async function readFileSize(f: string): Promise<number> {
  const fh = await open(f, 'r');
  try {
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}

test('a crash during set-up leaves <id>.json.tmp: the next start removes it and says so', async () => {
  let d = await DaemonProcess.start();
  assert.equal(await d.stop(), 0);
  const id = newRecordingId();
  const dir = recordingDir(d.dataDir, id);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, `${id}.json.tmp`), '{"format":"callvault-rec');
  await writeFile(path.join(d.dataDir, 'active', id), '');
  d = await DaemonProcess.start({ dataDir: d.dataDir, configFile: d.configFile });
  try {
    await d.waitFor((l) => l.recordingId === id && /interrupted during set-up/.test(l.msg));
    await assert.rejects(access(dir));
  } finally {
    assert.equal(await d.stop(), 0);
  }
});
