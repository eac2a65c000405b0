import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { cliAsync } from './cli.js';
import { type DaemonProcess, ROOT, startCall } from './daemon.js';
import type { FaultProxy } from './faultProxy.js';
import type { SmtpCapture } from './smtp.js';

export interface FaultRun {
  readonly d: DaemonProcess;
  readonly proxy: FaultProxy;
  readonly smtp: SmtpCapture;
  /** The storage target behind the proxy, and the caller number its profile matches. */
  readonly target: string;
  readonly caller: string;
  /** Client bytes after which the connection is cut: past the login, inside the audio (about 48 kB). */
  readonly cutAfter: number;
}

/**
 * A storage target's fault run: a 1.5 s call's copy is cut in the middle by
 * the proxy, which then refuses connections for a while (the server is down)
 * and lets them through again. Asserts one failure mail, one recovery mail,
 * and that the daemon lives; resolves with the recording's id and status.
 */
export async function faultRun(f: FaultRun): Promise<{ id: string; st: { dir: string } }> {
  const { d, proxy, smtp, target } = f;
  proxy.afterCut = 'refuse';
  proxy.cutAfter = f.cutAfter;
  proxy.mode = 'cut';
  const callId = `${target}-fault`;
  const c = await startCall(d, { callId, caller: { number: f.caller } });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await d.api('DELETE', `/v1/calls/${callId}`)).status, 202);
  const failing = new RegExp(`storage target ${target} is failing`);
  const recovered = new RegExp(`storage target ${target} works again`);
  assert.ok(await smtp.waitMail(failing, 30_000), 'a failure mail, soon: a dead connection fails the attempt at once');
  assert.equal(proxy.cuts, 1, 'the copy was cut in the middle');
  await new Promise((r) => setTimeout(r, 2000));
  proxy.mode = 'pass';
  const st = await d.waitForState(c.recordingId, 'uploaded', 60_000);
  assert.ok(await smtp.waitMail(recovered, 30_000), 'a recovery mail');
  assert.equal(smtp.count(failing), 1);
  assert.equal(smtp.count(recovered), 1);
  assert.equal(d.child.exitCode, null, 'the daemon is still running');
  return { id: c.recordingId, st };
}

/** The copy at `root/<id>` is the only thing under root, holds what the recording holds, and verifies with shasum and openssl. */
export async function assertOneWholeCopy(d: DaemonProcess, root: string, id: string, localDir: string): Promise<void> {
  assert.deepEqual(await readdir(root), [id], 'one copy, no partial left by the cut');
  assert.deepEqual((await readdir(path.join(root, id))).sort(), (await readdir(localDir)).sort());
  const v = spawnSync('bash', [path.join(ROOT, 'scripts/verify.sh'), path.join(root, id), path.join(d.dataDir, 'identity/signing-cert.pem')], {
    encoding: 'utf8',
  });
  assert.equal(v.status, 0, v.stderr);
}

/** Retention run with the clock two days on: the only copy under `root` (its recording's retention is 1d) is deleted there too. */
export async function assertRetentionRemoves(d: DaemonProcess, root: string): Promise<void> {
  const [id] = await readdir(root);
  // Not the blocking cli(): the proxy in front of the server runs in this process.
  const r = await cliAsync(d, ['retention', 'run', '--now', new Date(Date.now() + 2 * 86400_000).toISOString(), '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(await readdir(root), [], 'the copy is gone from the target');
  assert.equal((await d.api('GET', `/v1/recordings/${id}`)).body.state, 'deleted');
}
