import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { firstLine } from '../keys/passphrase.js';
import os from 'node:os';
import path from 'node:path';
import type { SmbTargetConfig } from '../config/Config.js';
import { StoreError } from '../errors.js';
import { expandTemplate, type TemplateFields } from './pathTemplate.js';
import { copyToRemote, remoteCompletedAt, type RemoteFile, type RemoteTree } from './remoteCopy.js';
import { NOTHING_KEPT, sealedFiles, type PutResult, type RemoveOutcome, type SealedRecording, type StorageTarget } from './StorageTarget.js';

/** What smbclient's NT_STATUS codes mean to an operator. */
const STATUS: Readonly<Record<string, string>> = {
  NT_STATUS_LOGON_FAILURE: 'wrong user name, domain or password',
  NT_STATUS_ACCESS_DENIED: 'access denied (the share or directory does not let this user write)',
  NT_STATUS_BAD_NETWORK_NAME: 'no such share on the server',
  NT_STATUS_CONNECTION_REFUSED: 'the server refused the connection (not listening on that port)',
  NT_STATUS_HOST_UNREACHABLE: 'the server cannot be reached',
  NT_STATUS_IO_TIMEOUT: 'the server did not answer in time',
  NT_STATUS_NOT_SUPPORTED: 'the server refused the protocol, signing or encryption asked for',
  NT_STATUS_DISK_FULL: 'the share is full',
  NT_STATUS_OBJECT_PATH_NOT_FOUND: 'a directory on the way does not exist',
};

/** Failures a step may expect: a directory that is already there, a copy that is not. */
type Tolerated = 'NT_STATUS_OBJECT_NAME_COLLISION' | 'NT_STATUS_OBJECT_NAME_NOT_FOUND' | 'NT_STATUS_OBJECT_PATH_NOT_FOUND' | 'NT_STATUS_NO_SUCH_FILE';

/** What smbclient says of a path that is not there. */
const MISSING: readonly Tolerated[] = ['NT_STATUS_OBJECT_NAME_NOT_FOUND', 'NT_STATUS_OBJECT_PATH_NOT_FOUND', 'NT_STATUS_NO_SUCH_FILE'];

/**
 * A Windows share (SMB 3 with signing, and encryption when asked) as a
 * storage target, through Debian's smbclient: no pure-JS SMB client on npm
 * signs SMB3, and Windows 11 24H2 and Server 2025 refuse unsigned clients.
 * The credentials go in a 0600 auth file in a private temp directory, never
 * on a command line; arguments are passed without a shell; smbclient's exit
 * status does not say whether a command failed, so its NT_STATUS output is
 * read and mapped to clear errors. Copies follow the protocol of remoteCopy.ts.
 */
export class SmbTarget implements StorageTarget {
  constructor(
    readonly name: string,
    private readonly config: SmbTargetConfig,
  ) {}

  async put(rec: SealedRecording): Promise<PutResult> {
    return copyToRemote(this.#tree, this.name, rec, await sealedFiles(rec), smbDest(this.config, rec.fields));
  }

  async find(rec: SealedRecording): Promise<Date | undefined> {
    return (await remoteCompletedAt(this.#tree, smbDest(this.config, rec.fields), await sealedFiles(rec), rec)) ?? undefined;
  }

  async remove(rec: SealedRecording): Promise<RemoveOutcome> {
    await this.#tree.removeTree(smbDest(this.config, rec.fields));
    return NOTHING_KEPT;
  }

  /** The share's file operations for the copy protocol, each one smbclient session. */
  readonly #tree: RemoteTree = {
    list: async (dir) => {
      const out = await this.#run([`ls ${quote(`${dir}/*`)}`], MISSING);
      const files = new Map<string, RemoteFile>();
      for (const line of out.split('\n')) {
        const m = /^ {2}(.+?)\s+([A-Z]*)\s+(\d+)\s+\w{3} (\w{3})\s+(\d+) (\d\d):(\d\d):(\d\d) (\d{4})$/.exec(line);
        if (!m || m[2]!.includes('D')) continue;
        const month = 'JanFebMarAprMayJunJulAugSepOctNovDec'.indexOf(m[4]!) / 3;
        files.set(m[1]!, {
          size: Number(m[3]),
          writeTime: new Date(Date.UTC(Number(m[9]), month, Number(m[5]), Number(m[6]), Number(m[7]), Number(m[8]))),
        });
      }
      return files;
    },
    mkdirs: async (dir) => {
      const parts = dir.split('/').filter((p) => p && p !== '.');
      await this.#run(
        parts.map((_, i) => `mkdir ${quote(parts.slice(0, i + 1).join('/'))}`),
        ['NT_STATUS_OBJECT_NAME_COLLISION'],
      );
    },
    upload: async (localDir, files, remoteDir) => {
      await this.#run([
        `lcd ${quoteLocal(localDir)}`,
        `mkdir ${quote(remoteDir)}`,
        ...files.map((f) => `put ${quote(f.name)} ${quote(`${remoteDir}/${f.name}`)}`),
      ]);
    },
    removeTree: async (dir) => {
      await this.#run([`deltree ${quote(dir)}`], MISSING);
    },
    rename: async (from, to) => {
      await this.#run([`rename ${quote(from)} ${quote(to)}`]);
    },
  };

  /** One smbclient session running `commands`; its output, or a StoreError for an NT_STATUS not tolerated. */
  async #run(commands: readonly string[], tolerated: readonly Tolerated[] = []): Promise<string> {
    if (!commands.length) return '';
    const c = this.config;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-smb-'));
    try {
      const password = await firstLine(c.passwordFile, `password file of storage target ${this.name}`);
      const authFile = path.join(dir, 'auth');
      await writeFile(authFile, `username = ${c.username}\npassword = ${password}\ndomain = ${c.domain}\n`, { mode: 0o600 });
      const args = [
        `//${c.host}/${c.share}`,
        '-p',
        String(c.port),
        '-A',
        authFile,
        '-m',
        'SMB3',
        `--client-protection=${c.encrypt ? 'encrypt' : 'sign'}`,
        '-c',
        commands.join('; '),
      ];
      const out = await smbclient(args, c.timeoutSeconds * 1000);
      const failures = [...out.matchAll(/NT_STATUS_[A-Z_]+/g)].map((m) => m[0]).filter((s) => !(tolerated as readonly string[]).includes(s));
      if (failures.length) {
        const code = failures[0]!;
        throw new StoreError(
          'SMB_FAILED',
          `storage target ${this.name} (//${c.host}/${c.share}): ${STATUS[code] ?? 'the server refused'} (${code})`,
          { target: this.name, status: code },
        );
      }
      return out;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/**
 * Where a recording goes on the share. smbclient splits its command line at
 * `;`, quoted or not: no name may carry one (nor a quote, which the windows
 * rules forbid).
 */
export function smbDest(config: Pick<SmbTargetConfig, 'path' | 'template' | 'timeZone'>, fields: TemplateFields): string {
  return path.posix.join(config.path, expandTemplate(config.template, fields, config.timeZone, 'windows')).replace(/;/g, '_');
}

/** A share path in smbclient's command language: double-quoted, backslashes; one that could break out of it is refused. */
function quote(p: string): string {
  if (/[";]/.test(p))
    throw new StoreError('SMB_PATH', `the share path ${JSON.stringify(p)} holds a character smbclient commands cannot carry`, { path: p });
  return `"${p.replace(/\//g, '\\')}"`;
}

function quoteLocal(p: string): string {
  if (/[";]/.test(p))
    throw new StoreError('SMB_PATH', `the local path ${JSON.stringify(p)} holds a character smbclient commands cannot carry (" or ;)`, { path: p });
  return `"${p}"`;
}

function smbclient(args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    // TZ=UTC: ls prints write times in the client's zone.
    const p = spawn('smbclient', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TZ: 'UTC', LC_ALL: 'C' }, timeout: timeoutMs });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.once('error', (err) => reject(new StoreError('SMB_CLIENT', `cannot run smbclient: ${err.message}`, {}, { cause: err })));
    p.once('exit', (code, signal) =>
      signal
        ? reject(new StoreError('TARGET_TIMEOUT', `smbclient did not finish within ${timeoutMs / 1000} s`, {}))
        : resolve(out + (code ? `\nexit ${code}` : '')),
    );
  });
}
