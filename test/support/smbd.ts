import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './net.js';

export interface Smbd {
  readonly port: number;
  /** The share's directory on this machine. */
  readonly root: string;
  readonly share: string;
  readonly user: string;
  /** A file holding the user's password, as a target's passwordFile. */
  readonly passwordFile: string;
  stop(): Promise<void>;
}

/**
 * Debian's Samba on a loopback port with a throwaway smb.conf (its state in a
 * temp directory), hardened as Windows Server 2025 is: signing mandatory,
 * SMB 3.1.1 at least, the share requiring encryption; one user added with pdbedit.
 */
export async function startSmbd(): Promise<Smbd> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-smbd-'));
  const root = path.join(dir, 'share');
  const state = (name: string) => path.join(dir, name);
  for (const d of ['share', 'private', 'lock', 'state', 'cache', 'pid', 'ncalrpc']) await mkdir(state(d));
  const port = await freePort();
  const user = os.userInfo().username;
  const conf = path.join(dir, 'smb.conf');
  await writeFile(
    conf,
    [
      '[global]',
      'server role = standalone server',
      `smb ports = ${port}`,
      'interfaces = 127.0.0.1',
      'bind interfaces only = yes',
      `private dir = ${state('private')}`,
      `lock directory = ${state('lock')}`,
      `state directory = ${state('state')}`,
      `cache directory = ${state('cache')}`,
      `pid directory = ${state('pid')}`,
      `ncalrpc dir = ${state('ncalrpc')}`,
      `passdb backend = tdbsam:${state('private')}/passdb.tdb`,
      'disable spoolss = yes',
      'load printers = no',
      'printcap name = /dev/null',
      'server signing = mandatory',
      'server min protocol = SMB3_11',
      '[rec]',
      `path = ${root}`,
      'read only = no',
      'smb encrypt = required',
      `force user = ${user}`,
      '',
    ].join('\n'),
  );
  const password = 'smb-test-password-7';
  execFileSync('pdbedit', ['-s', conf, '-a', '-u', user, '-t'], { input: `${password}\n${password}\n`, stdio: ['pipe', 'ignore', 'ignore'] });
  const passwordFile = path.join(dir, 'password');
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  const child: ChildProcess = spawn('smbd', ['-s', conf, '--foreground', '--no-process-group', '--debug-stdout'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  // Ready when a client can list the share.
  const auth = path.join(dir, 'auth');
  await writeFile(auth, `username = ${user}\npassword = ${password}\n`, { mode: 0o600 });
  for (let i = 0; ; i++) {
    const r = spawnSyncList(port, auth);
    if (r) break;
    if (child.exitCode !== null || i > 100) throw new Error(`smbd did not start: ${log.slice(-2000)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
  return {
    port,
    root,
    share: 'rec',
    user,
    passwordFile,
    stop: async () => {
      // smbd forks a process per client and does not stop them on SIGTERM at once: every process of this throwaway config goes.
      spawnSync('pkill', ['-KILL', '-f', conf]);
      if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
    },
  };
}

function spawnSyncList(port: number, auth: string): boolean {
  try {
    const out = execFileSync(
      'smbclient',
      ['//127.0.0.1/rec', '-p', String(port), '-A', auth, '-m', 'SMB3', '--client-protection=encrypt', '-c', 'ls'],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    return !/NT_STATUS_/.test(out);
  } catch {
    return false;
  }
}
