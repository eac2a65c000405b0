import { spawnSync } from 'node:child_process';
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
  const r = spawnSync('setsid', ['-w', process.execPath, MAIN, ...args, '--config', instance.configFile, '--data-dir', instance.dataDir], {
    encoding: 'utf8',
    env: { ...process.env, CALLVAULT_CONTROL_TOKEN: TOKEN, CALLVAULT_SIGNING_PASSPHRASE: PASSPHRASE, ...env },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
