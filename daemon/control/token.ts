import { CallvaultError } from '../errors.js';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/Config.js';

export type TokenSource = 'env' | 'config' | 'tokenFile' | 'generated';

/**
 * The control API's bearer token, from (first wins) env
 * CALLVAULT_CONTROL_TOKEN, `control.token`, `control.tokenFile`, or
 * `<dataDir>/control.token`, which is generated (0600) on first start so the
 * daemon is never left open by default.
 */
export async function resolveControlToken(
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ token: string; source: TokenSource; file?: string }> {
  const fromEnv = env.CALLVAULT_CONTROL_TOKEN?.trim();
  if (fromEnv) return { token: fromEnv, source: 'env' };
  if (config.control.token) return { token: config.control.token, source: 'config' };
  if (config.control.tokenFile) {
    const token = (await readFile(config.control.tokenFile, 'utf8')).split('\n')[0]?.trim() ?? '';
    if (token.length < 16)
      throw new CallvaultError('TOKEN_TOO_SHORT', `control.tokenFile ${config.control.tokenFile}: token must be at least 16 characters`, {
        tokenFile: config.control.tokenFile,
      });
    return { token, source: 'tokenFile', file: config.control.tokenFile };
  }
  const file = path.join(config.dataDir, 'control.token');
  try {
    return { token: (await readFile(file, 'utf8')).trim(), source: 'generated', file };
  } catch {
    const token = randomBytes(24).toString('base64url');
    await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return { token, source: 'generated', file };
  }
}
