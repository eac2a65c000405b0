/**
 * The OneDrive storage target. No real Microsoft Graph is reachable here:
 * these tests run against a local HTTPS server (test/support/graphServer.ts)
 * that enforces the upload-session protocol as documented — fragment order,
 * the 320 KiB rule, a constant Content-Range total, 401 for an
 * Authorization header on the upload URL, session expiry, OneDrive's name
 * rules — injects 416, 404, 429 (with Retry-After) and 503 (without), and
 * serves the sign-in side MSAL talks to (OpenID discovery, client
 * credentials, authorization code with PKCE), so MSAL never leaves loopback.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { OneDriveTargetConfig } from '../daemon/config/Config.js';
import { OneDriveTarget } from '../daemon/upload/OneDriveTarget.js';
import { GraphServer } from './support/graphServer.js';
import { MAIN, briefCall, DaemonProcess, testConfigYaml } from './support/daemon.js';
import { freePort } from './support/net.js';
import { sealedFixture } from './support/sealedFixture.js';
import { captureSmtp, mailConfigYaml, type SmtpCapture } from './support/smtp.js';

let graph: GraphServer;
let dir: string;
let secretFile: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-onedrive-'));
  graph = new GraphServer();
  await graph.start(dir);
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), await readFile(graph.certFile, 'utf8')]);
  secretFile = path.join(dir, 'client-secret');
  await writeFile(secretFile, `${graph.clientSecret}\n`, { mode: 0o600 });
});

after(async () => {
  await graph?.close();
});

function config(over: Partial<OneDriveTargetConfig> = {}): OneDriveTargetConfig {
  return {
    type: 'onedrive',
    auth: 'client-credentials',
    tenantId: graph.tenant,
    clientId: graph.clientId,
    clientSecretFile: secretFile,
    tokenCacheFile: null,
    driveId: graph.driveId,
    path: 'callvault',
    authorityUrl: graph.url,
    graphUrl: `${graph.url}/v1.0`,
    fragmentKiB: 320,
    redirectPort: 53682,
    timeoutSeconds: 10,
    template: '$Y/$id',
    timeZone: 'UTC',
    ...over,
  };
}

const wavPath = (rec: { recordingId: string }) => `callvault/2026/${rec.recordingId}/${rec.recordingId}.wav`;

describe('OneDrive target (strict local Graph)', () => {
  test('a recording goes up in fragments of 320 KiB in order, no Authorization on the upload URL, hashes checked, renamed into place; a second put sends nothing', async () => {
    const target = new OneDriveTarget('od', config(), dir);
    const rec = await sealedFixture(1024 * 1024 + 5);
    const before = graph.puts.length;
    const first = await target.put(rec);
    assert.ok(first.bytesSent > rec.audio.length);
    assert.deepEqual(graph.file(wavPath(rec)), rec.audio);
    const puts = graph.puts.slice(before).filter((p) => p.total === rec.audio.length);
    assert.deepEqual(
      puts.map((p) => [p.start, p.end]),
      [
        [0, 327679],
        [327680, 655359],
        [655360, 983039],
        [983040, 1048580],
      ],
    );
    assert.ok(graph.grants.every((g) => g === 'client_credentials'));
    assert.equal(graph.paths().filter((p) => p.includes('.partial')).length, 0, 'no staging folder left');
    assert.equal((await target.put(rec)).bytesSent, 0);
    assert.ok(await target.find(rec));
  });

  test('429 with Retry-After, 503 without, a lost answer (416) and a session gone (404) are all ridden out; the copy is whole', async () => {
    const target = new OneDriveTarget('od', config(), dir);
    const rec = await sealedFixture(700_000);
    graph.faults.push('429', '503', '416', '404');
    const before = graph.puts.length;
    await target.put(rec);
    assert.deepEqual(graph.file(wavPath(rec)), rec.audio);
    const puts = graph.puts.slice(before);
    const throttled = puts.find((p) => p.status === 429)!;
    const next = puts[puts.indexOf(throttled) + 1]!;
    assert.ok(next.at - throttled.at >= 950, `waited ${next.at - throttled.at} ms after Retry-After: 1`);
    assert.equal(new Set(puts.filter((p) => p.total === rec.audio.length).map((p) => p.session)).size, 2, 'a new session after the 404');
  });

  test('an upload cut mid-file resumes after a restart from where the service says it is, not from byte 0', async () => {
    const rec = await sealedFixture(5 * 327680 + 17);
    graph.faults.push('none', 'none', 'cut');
    await assert.rejects(new OneDriveTarget('od', config(), dir).put(rec));
    const sessionsFile = path.join(dir, 'uploads', 'od.sessions.json');
    assert.equal((await stat(sessionsFile)).mode & 0o777, 0o600, 'upload URLs are credentials: 0600');
    const before = graph.puts.length;
    await new OneDriveTarget('od', config(), dir).put(rec); // a new process: only the stored session links them
    const cut = graph.puts
      .slice(0, before)
      .filter((p) => p.status === 0)
      .pop()!;
    const resumed = graph.puts.slice(before).find((p) => p.total === rec.audio.length)!;
    assert.equal(cut.total, rec.audio.length, 'the audio was being sent when the connection died');
    assert.ok(cut.start > 0, 'some fragments had arrived');
    assert.deepEqual([resumed.session, resumed.start], [cut.session, cut.start], 'the same session, from the fragment that did not arrive');
    assert.deepEqual(graph.file(wavPath(rec)), rec.audio);
  });

  test('an expired session is started over', async () => {
    const rec = await sealedFixture(3 * 327680);
    graph.faults.push('none', 'cut');
    await assert.rejects(new OneDriveTarget('od', config(), dir).put(rec));
    graph.expireSessions();
    await new OneDriveTarget('od', config(), dir).put(rec);
    assert.deepEqual(graph.file(wavPath(rec)), rec.audio);
  });

  test('hostile caller ids (.., /etc, NUL, CON, forbidden characters, 300 digits) stay inside the target folder and obey OneDrive’s name rules', async () => {
    const target = new OneDriveTarget('od', config({ template: '$caller/$callee/$id' }), dir);
    for (const caller of ['../../etc', '/etc/passwd', 'a\u0000b', 'CON', 'x:*?"<>|. ', '9'.repeat(300)]) {
      const rec = await sealedFixture(1000);
      await target.put({ ...rec, fields: { ...rec.fields, caller, callee: '..' } });
    }
    for (const p of graph.paths()) assert.ok(p === 'callvault' || p.startsWith('callvault/') || /^\d{4}/.test(p), `${p} is inside the target`);
    assert.ok(graph.paths().every((p) => p.length <= 400));
  });

  test('a wrong client secret is a clear error naming the sign-in service, without the secret', async () => {
    const bad = path.join(dir, 'bad-secret');
    await writeFile(bad, 'not-the-secret\n', { mode: 0o600 });
    const rec = await sealedFixture(1000);
    await assert.rejects(new OneDriveTarget('od', config({ clientSecretFile: bad }), dir).put(rec), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ONEDRIVE_AUTH');
      assert.match(err.message, /no access token from https:\/\/127\.0\.0\.1/);
      assert.doesNotMatch(err.message, /not-the-secret/);
      return true;
    });
  });
});

describe('daemon with a delegated (auth-code) OneDrive target', () => {
  let d: DaemonProcess;
  let smtp: SmtpCapture;
  let configFile: string;
  let dataDir: string;

  before(async () => {
    const smtpPort = await freePort();
    smtp = captureSmtp(smtpPort);
    await smtp.listen();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'callvault-od-data-'));
    configFile = path.join(dir, 'daemon.yaml');
    const redirectPort = await freePort();
    await writeFile(
      configFile,
      testConfigYaml(
        `storage:\n  od:\n    type: onedrive\n    auth: auth-code\n    tenantId: ${graph.tenant}\n    clientId: ${graph.clientId}\n    tokenCacheFile: ${path.join(dir, 'token-cache.json')}\n    driveId: "${graph.driveId}"\n    authorityUrl: ${graph.url}\n    graphUrl: ${graph.url}/v1.0\n    fragmentKiB: 320\n    redirectPort: ${redirectPort}\n    template: $id\n    timeoutSeconds: 5\nprofiles:\n  - name: all\n    storage: [od]\n${mailConfigYaml(smtpPort)}`,
      ),
    );
  });

  after(async () => {
    if (d) assert.equal(await d.stop(), 0);
    await smtp?.close();
  });

  test('callvault storage login signs a user in (PKCE, loopback redirect) and keeps the tokens 0600; the daemon uploads as that user', async () => {
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: graph.certFile };
    const login = spawn(process.execPath, [MAIN, 'storage', 'login', 'od', '--config', configFile, '--data-dir', dataDir, '--timeout', '30'], {
      env,
    });
    let out = '';
    let err = '';
    login.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      login.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /^(https:\/\/\S+)$/m.exec(out);
        if (m) resolve(m[1]!);
      });
      login.once('exit', (code) => reject(new Error(`login exited ${code}: ${out}${err}`)));
    });
    assert.match(url, /code_challenge=.+&|code_challenge_method=S256/);
    // The "browser": the sign-in redirects straight back to the command's loopback listener.
    const page = await fetch(url);
    assert.equal(page.status, 200, await page.text());
    const code = await new Promise((r) => login.once('exit', r));
    assert.equal(code, 0, err);
    assert.match(out, /signed in as recorder@contoso\.test/);
    assert.equal((await stat(path.join(dir, 'token-cache.json'))).mode & 0o777, 0o600);
    assert.doesNotMatch(out + err, /refresh|access_token/);

    d = await DaemonProcess.start({ configFile, dataDir, env: { NODE_EXTRA_CA_CERTS: graph.certFile } });
    const grantsBefore = graph.grants.length;
    const id = await briefCall(d, { callId: 'od-1' });
    const st = await d.waitForState(id, 'uploaded', 30_000);
    assert.deepEqual(graph.file(`callvault/${id}/${id}.wav`), await readFile(path.join(st.dir, `${id}.wav`)));
    assert.ok(
      graph.grants.slice(grantsBefore).every((g) => g === 'authorization_code' || g === 'refresh_token'),
      'delegated tokens only',
    );
  });

  test('fault run: the service goes away mid-upload and comes back; the recording arrives once and whole; one failure mail, one recovery mail', async () => {
    graph.faults.push('cut');
    graph.setDown(true);
    const id = await briefCall(d, { callId: 'od-fault' });
    assert.ok(await smtp.waitMail(/storage target od is failing/, 30_000), 'a failure mail');
    await new Promise((r) => setTimeout(r, 2000));
    graph.faults.length = 0;
    graph.setDown(false);
    const st = await d.waitForState(id, 'uploaded', 60_000);
    assert.ok(await smtp.waitMail(/storage target od works again/, 30_000), 'a recovery mail');
    assert.equal(smtp.count(/od is failing/), 1);
    assert.equal(smtp.count(/od works again/), 1);
    const local = (await readdir(st.dir)).sort();
    const remote = graph
      .paths()
      .filter((p) => p.startsWith(`callvault/${id}`))
      .sort();
    assert.deepEqual(remote, [`callvault/${id}`, ...local.map((n) => `callvault/${id}/${n}`.toLowerCase())].sort(), 'one copy, no staging folder');
    for (const n of local) assert.deepEqual(graph.file(`callvault/${id}/${n}`), await readFile(path.join(st.dir, n)), `${n} whole`);
  });
});
