import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { KeyError } from '../../errors.js';
import { destroyFile, EXCLUSIVE_CREATE, syncDir, writeFileDurably } from '../../fsutil.js';
import { combineShares, openShare, sealShare, splitSecret, SHARE_LETTERS, type ShareLetter } from './shares.js';

export const KEK_FORMAT = 'callvault-kek/1';
export type KekProviderName = 'local' | 'lkm';

/** `kek.json`: what is known about one key-encryption key; never its private half. */
export interface KekRecord {
  readonly format: typeof KEK_FORMAT;
  readonly id: string;
  readonly provider: KekProviderName;
  readonly algorithm: 'RSA-OAEP-SHA256';
  readonly bits: number;
  readonly createdAt: string;
  readonly revokedAt: string | null;
  /** SHA-256 of the DER SubjectPublicKeyInfo, hex. */
  readonly fingerprintSha256: string;
}

export interface Kek extends KekRecord {
  readonly publicKey: KeyObject;
}

/** One administrator's part: the passphrase, and optionally a share file kept elsewhere (a backup, a token). */
export interface ShareInput {
  /** Wiped by whoever read it, once the shares are no longer needed (wipeShareInputs). */
  readonly passphrase: Buffer;
  readonly file?: string | undefined;
}

export type ShareInputs = Readonly<Record<ShareLetter, ShareInput>>;

export function wipeShareInputs(inputs: ShareInputs): void {
  for (const letter of SHARE_LETTERS) inputs[letter].passphrase.fill(0);
}

export function spkiFingerprint(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

export function kekExpiry(kek: KekRecord, cryptoperiodDays: number): Date {
  return new Date(Date.parse(kek.createdAt) + cryptoperiodDays * 86_400_000);
}

/** Dual control of what is kept elsewhere: the two custodians' shares never go to one place. */
export function assertSeparatePlaces(dirs: Readonly<Partial<Record<ShareLetter, string>>>, what: string): void {
  if (dirs.A && dirs.B && path.resolve(dirs.A) === path.resolve(dirs.B)) {
    throw new KeyError('SAME_PLACE', `both shares would be ${what} into one directory: each custodian keeps their own share, in their own place`);
  }
}

function newKekId(now: Date): string {
  return `kek-${now.toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(3).toString('hex')}`;
}

export function shareFileName(letter: ShareLetter): string {
  return `share-${letter.toLowerCase()}.json`;
}

/**
 * The instance's key-encryption keys, one directory each under
 * `<dataDir>/keys/kek/`: `kek.json`, `public.pem` and, for local keys, the two
 * passphrase-protected shares of the private key. The daemon reads only
 * public keys; the private key exists only in memory of a command given both shares.
 */
export class KekStore {
  readonly dir: string;
  /*
   * Fingerprints of the KEKs new recordings may be encrypted under. The data
   * dir alone cannot add to them: they are pinned in the (root-owned) config,
   * or, with the lkm provider, vouched for by the key manager over its pinned TLS.
   */
  #pinned: Set<string>;
  readonly #vouched = new Set<string>();

  constructor(dataDir: string, pinned: Iterable<string> = []) {
    this.dir = path.join(dataDir, 'keys', 'kek');
    this.#pinned = new Set(pinned);
  }

  /** Replace the pinned fingerprints (a reload); KEKs the key manager vouched for stay trusted. */
  setPinned(fingerprints: Iterable<string>): void {
    this.#pinned = new Set(fingerprints);
  }

  /** The key manager vouched for this KEK (fetched over its pinned TLS), for the life of this process. */
  vouch(fingerprintSha256: string): void {
    this.#vouched.add(fingerprintSha256);
  }

  isTrusted(kek: Kek): boolean {
    return this.#pinned.has(kek.fingerprintSha256) || this.#vouched.has(kek.fingerprintSha256);
  }

  /** KEKs present and not revoked that nothing trusted vouches for: never used, and an alarm. */
  untrusted(): Kek[] {
    return this.list().filter((k) => !k.revokedAt && !this.isTrusted(k));
  }

  private kekDir(id: string): string {
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(id) || id.startsWith('.')) throw new KeyError('BAD_KEK_ID', `${JSON.stringify(id)} is not a KEK id`);
    return path.join(this.dir, id);
  }

  /** Every KEK, oldest first. Read from disk each time, so a rotation by another process is seen at once. */
  list(): Kek[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const keks: Kek[] = [];
    for (const name of names) {
      let record: KekRecord;
      let pem: string;
      try {
        record = JSON.parse(readFileSync(path.join(this.dir, name, 'kek.json'), 'utf8')) as KekRecord;
        pem = readFileSync(path.join(this.dir, name, 'public.pem'), 'utf8');
      } catch (err) {
        // A directory that a crashed `keys init` left without its record was never used.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new KeyError('KEK_UNREADABLE', `cannot read KEK ${name}: ${(err as Error).message}`, { kekId: name });
      }
      const publicKey = createPublicKey(pem);
      if (record.format !== KEK_FORMAT || record.id !== name || spkiFingerprint(publicKey) !== record.fingerprintSha256) {
        throw new KeyError('KEK_DAMAGED', `KEK ${name}: kek.json and public.pem do not agree (format, id or fingerprint)`, { kekId: name });
      }
      keks.push({ ...record, publicKey });
    }
    return keks.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** The KEK new recordings are encrypted under: the newest trusted one not revoked. */
  current(): Kek | undefined {
    return this.list()
      .filter((k) => !k.revokedAt && this.isTrusted(k))
      .at(-1);
  }

  get(id: string): Kek {
    const kek = this.list().find((k) => k.id === id);
    if (!kek) throw new KeyError('UNKNOWN_KEK', `no KEK ${id} in ${this.dir}`, { kekId: id });
    return kek;
  }

  /**
   * Make a local KEK: an RSA key pair whose private key is written only as
   * two shares, each under its administrator's passphrase. The record goes
   * last, so a crash part-way leaves nothing `list()` would use.
   */
  async create(opts: { bits: number; shares: ShareInputs; now?: Date; backupDirs?: Readonly<Partial<Record<ShareLetter, string>>> }): Promise<Kek> {
    if (opts.shares.A.passphrase.equals(opts.shares.B.passphrase)) {
      throw new KeyError(
        'SAME_PASSPHRASE',
        'both shares would have the same passphrase: dual control needs two administrators with different passphrases',
      );
    }
    const backups = opts.backupDirs ?? {};
    assertSeparatePlaces(backups, 'backed up');
    const now = opts.now ?? new Date();
    const id = newKekId(now);
    const dir = this.kekDir(id);
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: opts.bits });
    const der = privateKey.export({ type: 'pkcs8', format: 'der' });
    const parts = splitSecret(der);
    der.fill(0);
    for (const [i, letter] of SHARE_LETTERS.entries()) {
      const text = `${JSON.stringify(sealShare(id, letter, parts[i]!, opts.shares[letter].passphrase), null, 2)}\n`;
      parts[i]!.fill(0);
      await writeFileDurably(path.join(dir, shareFileName(letter)), text, 0o600);
      const backup = backups[letter];
      if (backup) {
        await mkdir(backup, { recursive: true, mode: 0o700 });
        await writeFileDurably(path.join(backup, `${id}.${shareFileName(letter)}`), text, 0o600);
      }
    }
    return this.record(dir, { id, provider: 'local', bits: opts.bits, createdAt: now.toISOString(), publicKey });
  }

  /** Remember a KEK whose private key lives elsewhere (the lkm provider): public key only. */
  async importPublic(k: { id: string; bits: number; createdAt: string; publicKey: KeyObject }): Promise<Kek> {
    const known = this.list().find((x) => x.id === k.id);
    if (known) {
      if (known.fingerprintSha256 !== spkiFingerprint(k.publicKey))
        throw new KeyError('KEK_CHANGED', `the key manager's KEK ${k.id} has a different public key than the one recorded here`, { kekId: k.id });
      return known;
    }
    const dir = this.kekDir(k.id);
    await mkdir(dir, { recursive: true, mode: 0o750 });
    return this.record(dir, { ...k, provider: 'lkm' });
  }

  private async record(
    dir: string,
    k: { id: string; provider: KekProviderName; bits: number; createdAt: string; publicKey: KeyObject },
  ): Promise<Kek> {
    await writeFileDurably(path.join(dir, 'public.pem'), k.publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o644);
    const record: KekRecord = {
      format: KEK_FORMAT,
      id: k.id,
      provider: k.provider,
      algorithm: 'RSA-OAEP-SHA256',
      bits: k.bits,
      createdAt: k.createdAt,
      revokedAt: null,
      fingerprintSha256: spkiFingerprint(k.publicKey),
    };
    await this.writeRecord(record);
    return { ...record, publicKey: k.publicKey };
  }

  private writeRecord(record: KekRecord): Promise<void> {
    return writeFileDurably(path.join(this.kekDir(record.id), 'kek.json'), `${JSON.stringify(record, null, 2)}\n`, 0o644);
  }

  /** No new recording is encrypted under a revoked KEK; `keys revoke` moves the old ones off it. */
  async markRevoked(id: string, at = new Date()): Promise<void> {
    const { publicKey: _drop, ...record } = this.get(id);
    await this.writeRecord({ ...record, revokedAt: at.toISOString() });
  }

  /**
   * After a revocation has moved every recording off the KEK: its shares
   * leave the data dir — each moved to its custodian's escrow directory
   * (never over a file there), or destroyed. Returns what was done to which
   * file, for the audit log.
   */
  async retireShares(
    id: string,
    escrowDirs: Readonly<Partial<Record<ShareLetter, string>>> = {},
  ): Promise<{ destroyed: string[]; escrowed: string[] }> {
    assertSeparatePlaces(escrowDirs, 'escrowed');
    const destroyed: string[] = [];
    const escrowed: string[] = [];
    for (const letter of SHARE_LETTERS) {
      const file = path.join(this.kekDir(id), shareFileName(letter));
      const text = await readFile(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (text === undefined) continue;
      const escrow = escrowDirs[letter];
      if (escrow) {
        await mkdir(escrow, { recursive: true, mode: 0o700 });
        const kept = path.join(escrow, `${id}.${shareFileName(letter)}`);
        const fh = await open(kept, EXCLUSIVE_CREATE, 0o600);
        try {
          await fh.writeFile(text);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await syncDir(escrow);
        escrowed.push(kept);
      }
      await destroyFile(file);
      destroyed.push(file);
    }
    return { destroyed, escrowed };
  }

  /** Both shares, opened and combined; the result is checked against the public key before it is returned. */
  async openPrivate(id: string, shares: ShareInputs): Promise<KeyObject> {
    const kek = this.get(id);
    if (kek.provider !== 'local')
      throw new KeyError('KEK_NOT_LOCAL', `KEK ${id} is held by the key manager; its private key is not here`, { kekId: id });
    const parts: Buffer[] = [];
    for (const letter of SHARE_LETTERS) {
      const file = shares[letter].file ?? path.join(this.kekDir(id), shareFileName(letter));
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        throw new KeyError(
          'SHARE_UNREADABLE',
          `cannot read share ${letter} of KEK ${id} at ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
          { file },
        );
      }
      parts.push(openShare(text, id, letter, shares[letter].passphrase, file));
    }
    const der = combineShares(parts[0]!, parts[1]!);
    for (const p of parts) p.fill(0);
    try {
      const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      if (spkiFingerprint(createPublicKey(key)) !== kek.fingerprintSha256) throw new Error('fingerprint');
      return key;
    } catch {
      throw new KeyError(
        'SHARES_MISMATCH',
        `the shares of KEK ${id} do not combine into its private key: one of them belongs to another key generation`,
        { kekId: id },
      );
    } finally {
      der.fill(0);
    }
  }
}
