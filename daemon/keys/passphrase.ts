import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/Config.js';
import { KeyError } from '../errors.js';

/** Passphrases once shipped in example configs: still accepted (the key is encrypted under them), warned about at every start. */
export const PUBLISHED_PASSPHRASES: readonly string[] = ['quick-start-only-not-a-secret'];
export const PASSPHRASE_ENV = 'CALLVAULT_SIGNING_PASSPHRASE';
/** Name under which systemd's LoadCredential= hands the passphrase over. */
export const PASSPHRASE_CREDENTIAL = 'signing-passphrase';

export type PassphraseSource = 'env' | 'credential' | 'file' | 'config' | 'generated';

/** Where a quick start's generated passphrase lives: beside the local data it protects, mode 0600. */
export function generatedPassphraseFile(dataDir: string): string {
  return path.join(dataDir, 'signing.passphrase');
}

export interface Passphrase {
  readonly value: string;
  readonly source: PassphraseSource;
  /** Where it came from, for messages (a variable or file name, never the value). */
  readonly origin: string;
}

/** A secret file named `credential:NAME` is the systemd credential NAME (LoadCredential=), in $CREDENTIALS_DIRECTORY. */
export const CREDENTIAL_PREFIX = 'credential:';

export function secretFilePath(file: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!file.startsWith(CREDENTIAL_PREFIX)) return file;
  const name = file.slice(CREDENTIAL_PREFIX.length);
  if (!env.CREDENTIALS_DIRECTORY || !/^[A-Za-z0-9_.@-]+$/.test(name))
    throw new KeyError('CREDENTIAL_UNAVAILABLE', `${file}: no systemd credential directory (LoadCredential=${name}:… in the unit), or a bad name`, {
      file,
    });
  return path.join(env.CREDENTIALS_DIRECTORY, name);
}

/** Read a secret file's first line (a password): clear errors for unreadable or empty files, never the value. */
export async function firstLine(file: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(secretFilePath(file), 'utf8');
  } catch (err) {
    throw new KeyError('PASSPHRASE_UNREADABLE', `cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file });
  }
  const line = text.split(/\r?\n/, 1)[0] ?? '';
  if (!line) throw new KeyError('PASSPHRASE_EMPTY', `the ${what} ${file} is empty`, { file });
  return line;
}

/**
 * Find the signing-key passphrase: env, then systemd credential, then
 * `signing.passphraseFile`, then `signing.passphrase`, then one a quick start
 * generated into the data dir — made now if `generate` says so (no
 * passphrase is shipped anywhere: each trial instance has its own).
 */
export async function resolvePassphrase(
  signing: Pick<Config['signing'], 'passphrase' | 'passphraseFile'>,
  opts: { readonly dataDir: string; readonly generate?: boolean },
  env: NodeJS.ProcessEnv = process.env,
): Promise<Passphrase> {
  const fromEnv = env[PASSPHRASE_ENV];
  if (fromEnv) return { value: fromEnv, source: 'env', origin: PASSPHRASE_ENV };
  const credDir = env.CREDENTIALS_DIRECTORY;
  if (credDir) {
    const file = path.join(credDir, PASSPHRASE_CREDENTIAL);
    const exists = await readFile(file).then(
      () => true,
      () => false,
    );
    if (exists) return { value: await firstLine(file, 'systemd credential'), source: 'credential', origin: file };
  }
  if (signing.passphraseFile) {
    return { value: await firstLine(signing.passphraseFile, 'passphrase file'), source: 'file', origin: signing.passphraseFile };
  }
  if (signing.passphrase) return { value: signing.passphrase, source: 'config', origin: 'signing.passphrase' };
  const generated = generatedPassphraseFile(opts.dataDir);
  if (
    await readFile(generated).then(
      () => true,
      () => false,
    )
  )
    return { value: await firstLine(generated, 'generated passphrase file'), source: 'generated', origin: generated };
  if (opts.generate) {
    // 256 random bits; created here (never over an existing file), readable by the daemon's user only.
    const value = randomBytes(32).toString('base64url');
    await writeFile(generated, `${value}\n`, { mode: 0o600, flag: 'wx' });
    return { value, source: 'generated', origin: generated };
  }
  throw new KeyError(
    'NO_PASSPHRASE',
    `no passphrase for the signing key: set ${PASSPHRASE_ENV}, a systemd credential named ${PASSPHRASE_CREDENTIAL}, signing.passphraseFile or signing.passphrase (a trial run can use \`callvault daemon --generate-passphrase\`)`,
  );
}
