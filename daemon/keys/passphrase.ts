import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/Config.js';
import { KeyError } from '../errors.js';

/** The value config/callvault.example.yaml ships so the quick start runs; never a real secret. */
export const EXAMPLE_PASSPHRASE = 'quick-start-only-not-a-secret';
export const PASSPHRASE_ENV = 'CALLVAULT_SIGNING_PASSPHRASE';
/** Name under which systemd's LoadCredential= hands the passphrase over. */
export const PASSPHRASE_CREDENTIAL = 'signing-passphrase';

export type PassphraseSource = 'env' | 'credential' | 'file' | 'config';

export interface Passphrase {
  readonly value: string;
  readonly source: PassphraseSource;
  /** Where it came from, for messages (a variable or file name, never the value). */
  readonly origin: string;
}

export async function firstLine(file: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new KeyError('PASSPHRASE_UNREADABLE', `cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file });
  }
  const line = text.split(/\r?\n/, 1)[0] ?? '';
  if (!line) throw new KeyError('PASSPHRASE_EMPTY', `the ${what} ${file} is empty`, { file });
  return line;
}

/**
 * Find the signing-key passphrase: env, then systemd credential, then
 * `signing.passphraseFile`, then `signing.passphrase`.
 */
export async function resolvePassphrase(signing: Config['signing'], env: NodeJS.ProcessEnv = process.env): Promise<Passphrase> {
  const fromEnv = env[PASSPHRASE_ENV];
  if (fromEnv) return { value: fromEnv, source: 'env', origin: PASSPHRASE_ENV };
  const credDir = env.CREDENTIALS_DIRECTORY;
  if (credDir) {
    const file = path.join(credDir, PASSPHRASE_CREDENTIAL);
    const exists = await readFile(file).then(() => true, () => false);
    if (exists) return { value: await firstLine(file, 'systemd credential'), source: 'credential', origin: file };
  }
  if (signing.passphraseFile) {
    return { value: await firstLine(signing.passphraseFile, 'passphrase file'), source: 'file', origin: signing.passphraseFile };
  }
  if (signing.passphrase) return { value: signing.passphrase, source: 'config', origin: 'signing.passphrase' };
  throw new KeyError(
    'NO_PASSPHRASE',
    `no passphrase for the signing key: set ${PASSPHRASE_ENV}, a systemd credential named ${PASSPHRASE_CREDENTIAL}, signing.passphraseFile or signing.passphrase`,
  );
}
