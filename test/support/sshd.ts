import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './net.js';

export interface Sshd {
  readonly port: number;
  /** The host key's fingerprint as `ssh-keygen -lf` prints it. */
  readonly hostKey: string;
  /** A client key the server accepts (OpenSSH format, no passphrase). */
  readonly clientKey: string;
  /** Where SFTP sessions start: paths relative to the home resolve here. */
  readonly root: string;
  readonly user: string;
  stop(): Promise<void>;
  /** Start it again on the same port, keys and root (a server that was down comes back). */
  restart(): Promise<void>;
}

/**
 * Debian's OpenSSH server on a loopback port with a throwaway config, as
 * OpenSSH's own regression tests run it: its own host key, one authorized
 * client key, SFTP only (internal-sftp starting in a temp directory).
 */
export async function startSshd(): Promise<Sshd> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-sshd-'));
  const root = path.join(dir, 'root');
  await mkdir(root);
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const keygen = (file: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file], { stdio: 'ignore' });
  keygen(path.join(dir, 'host'));
  keygen(path.join(dir, 'client'));
  const hostKey = execFileSync('ssh-keygen', ['-lf', path.join(dir, 'host.pub')], { encoding: 'utf8' }).split(' ')[1]!;
  execFileSync('cp', [path.join(dir, 'client.pub'), path.join(dir, 'authorized_keys')]);
  const user = os.userInfo().username;
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${path.join(dir, 'host')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      `Subsystem sftp internal-sftp -d ${root}`,
      `ForceCommand internal-sftp -d ${root}`,
      '',
    ].join('\n'),
  );
  let child: ChildProcess | undefined;
  const start = async () => {
    const c = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    for (let i = 0; i < 100; i++) {
      if (/Server listening/.test(err)) return;
      if (c.exitCode !== null) throw new Error(`sshd exited ${c.exitCode}: ${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`sshd did not start: ${err}`);
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  };
  await start();
  return { port, hostKey, clientKey: path.join(dir, 'client'), root, user, stop, restart: start };
}
