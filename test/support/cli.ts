import { spawn, spawnSync } from 'node:child_process';
import { MAIN, PASSPHRASE, TOKEN } from './daemon.js';

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run `callvault <args> --config F --data-dir D` to completion. In its own
 * session (setsid -w): no controlling terminal, as under cron or CI, so a
 * missing passphrase file can never turn into a prompt that waits forever.
 */
export function cli(instance: { configFile: string; dataDir: string }, args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const r = spawnSync('setsid', cliArgs(instance, args), { encoding: 'utf8', env: cliEnv(env), timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same without blocking this process: for tests whose own servers (a fault proxy) must keep running while the command talks to them. */
export function cliAsync(instance: { configFile: string; dataDir: string }, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('setsid', cliArgs(instance, args), { env: cliEnv(env), timeout: 120_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function cliArgs(instance: { configFile: string; dataDir: string }, args: string[]): string[] {
  return ['-w', process.execPath, MAIN, ...args, '--config', instance.configFile, '--data-dir', instance.dataDir];
}

function cliEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...process.env, CALLVAULT_CONTROL_TOKEN: TOKEN, CALLVAULT_SIGNING_PASSPHRASE: PASSPHRASE, ...env };
}
