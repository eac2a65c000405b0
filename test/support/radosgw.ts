import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import type { S3TargetConfig } from '../../daemon/config/Config.js';
import { freePort } from './net.js';

const run = promisify(execFile);

export interface Radosgw {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** An AWS shared-credentials file with those keys, as a target's credentialsFile. */
  readonly credentialsFile: string;
  /** An S3 client of the test's own, straight to the gateway. */
  client(): S3Client;
  /** An s3 storage target's config for this gateway (path style, its credentials file), `over` applied. */
  targetConfig(over: Partial<S3TargetConfig> & Pick<S3TargetConfig, 'bucket'>): S3TargetConfig;
  /** Stop the gateway only (the cluster stays), as an outage. */
  stopGateway(): Promise<void>;
  startGateway(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Ceph's S3 gateway (Debian's radosgw 16) over a one-node Ceph cluster made
 * for the test: one monitor, one OSD keeping objects in memory (memstore),
 * cephx keys in a temp directory, every daemon in the foreground on
 * loopback ports. A real S3 server with Object Lock, versioning and multipart.
 */
export async function startRadosgw(): Promise<Radosgw> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-ceph-'));
  for (const d of ['run', 'log', 'mon', 'osd']) await mkdir(path.join(dir, d));
  const [monPort, rgwPort] = [await freePort(), await freePort()];
  const fsid = crypto.randomUUID();
  const conf = path.join(dir, 'ceph.conf');
  const keyring = path.join(dir, 'keyring');
  await writeFile(
    conf,
    [
      '[global]',
      `fsid = ${fsid}`,
      `mon host = 127.0.0.1:${monPort}`,
      `keyring = ${keyring}`,
      'osd pool default size = 1',
      'osd pool default min size = 1',
      'mon allow pool size one = true',
      'osd pool default pg num = 8',
      'osd pool default pgp num = 8',
      'mon max pg per osd = 1000',
      'osd objectstore = memstore',
      'memstore device bytes = 2147483648',
      'osd crush chooseleaf type = 0',
      'ms bind ipv6 = false',
      'mon data avail warn = 1',
      'mon data avail crit = 0',
      `run dir = ${dir}/run`,
      `admin socket = ${dir}/run/$name.asok`,
      `log file = ${dir}/log/$name.log`,
      `mon data = ${dir}/mon`,
      `osd data = ${dir}/osd`,
      '[mon.a]',
      `public addr = 127.0.0.1:${monPort}`,
      '[client.rgw.a]',
      `rgw frontends = beast endpoint=127.0.0.1:${rgwPort}`,
      `rgw data = ${path.join(dir, 'rgw')}`,
      '',
    ].join('\n'),
  );
  const authtool = (...args: string[]) => run('ceph-authtool', [keyring, ...args]);
  await run('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
  await authtool('--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow *');
  await authtool('--gen-key', '-n', 'osd.0', '--cap', 'mon', 'allow profile osd', '--cap', 'osd', 'allow *');
  await authtool('--gen-key', '-n', 'client.rgw.a', '--cap', 'mon', 'allow rw', '--cap', 'osd', 'allow rwx');
  const monmap = path.join(dir, 'monmap');
  await run('monmaptool', ['--create', '--add', 'a', `127.0.0.1:${monPort}`, '--fsid', fsid, monmap]);
  await run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', monmap, '--keyring', keyring]);
  const children: ChildProcess[] = [];
  const daemon = (cmd: string, args: string[]) => {
    const c = spawn(cmd, ['-c', conf, '-f', ...args], { stdio: 'ignore' });
    children.push(c);
    return c;
  };
  daemon('ceph-mon', ['-i', 'a']);
  const ceph = (...args: string[]) => run('ceph', ['-c', conf, '--connect-timeout', '20', ...args]);
  await ceph('osd', 'create');
  await run('ceph-osd', ['-c', conf, '-i', '0', '--mkfs']);
  await ceph('osd', 'crush', 'add-bucket', 'localhost', 'host');
  await ceph('osd', 'crush', 'move', 'localhost', 'root=default');
  await ceph('osd', 'crush', 'add', 'osd.0', '1.0', 'host=localhost');
  daemon('ceph-osd', ['-i', '0']);
  let gateway: ChildProcess | null = null;
  const endpoint = `http://127.0.0.1:${rgwPort}`;
  const startGateway = async () => {
    gateway = daemon('radosgw', ['-n', 'client.rgw.a']);
    for (let i = 0; ; i++) {
      const up = await fetch(endpoint).then(
        () => true,
        () => false,
      );
      if (up) return;
      if (gateway.exitCode !== null || i > 600) throw new Error(`radosgw did not start (see ${dir}/log)`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await startGateway();
  const accessKeyId = 'CALLVAULTTEST';
  const secretAccessKey = 'radosgw-test-secret-7';
  await run('radosgw-admin', [
    '-c',
    conf,
    '-n',
    'client.admin',
    'user',
    'create',
    '--uid=callvault',
    '--display-name=callvault',
    `--access-key=${accessKeyId}`,
    `--secret=${secretAccessKey}`,
  ]);
  const credentialsFile = path.join(dir, 'credentials');
  await writeFile(credentialsFile, `[default]\naws_access_key_id = ${accessKeyId}\naws_secret_access_key = ${secretAccessKey}\n`, { mode: 0o600 });
  const kill = async (c: ChildProcess) => {
    if (c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  };
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    credentialsFile,
    client: () => new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } }),
    targetConfig: (over) => ({
      type: 's3',
      endpoint,
      region: 'us-east-1',
      path: 'callvault',
      pathStyle: true,
      credentialsFile,
      objectLock: null,
      multipartThresholdMiB: 64,
      partSizeMiB: 16,
      timeoutSeconds: 10,
      template: '$Y/$M/$id',
      timeZone: 'UTC',
      ...over,
    }),
    stopGateway: async () => {
      if (gateway) await kill(gateway);
    },
    startGateway,
    stop: async () => {
      for (const c of children.reverse()) await kill(c);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
