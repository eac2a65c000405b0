import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { KeyError } from '../../errors.js';
import { nfcBytes, wipe } from '../secret.js';

/*
 * Dual control for a KEK's private key: 2-of-2 XOR secret sharing. Share A
 * is random, share B = key ⊕ A, so either share alone says nothing about the
 * key. Each share file is encrypted under its own administrator's passphrase
 * (scrypt → AES-256-GCM) with the KEK id and share letter as AAD, so a share
 * cannot be passed off as the other one or as another KEK's.
 */
export const SHARE_FORMAT = 'callvault-kek-share/1';
export type ShareLetter = 'A' | 'B';
export const SHARE_LETTERS: readonly ShareLetter[] = ['A', 'B'];

export interface ShareFile {
  readonly format: typeof SHARE_FORMAT;
  readonly kekId: string;
  readonly share: ShareLetter;
  readonly scheme: '2-of-2 xor';
  readonly kdf: { readonly name: 'scrypt'; readonly N: number; readonly r: number; readonly p: number; readonly salt: string };
  readonly cipher: 'aes-256-gcm';
  readonly iv: string;
  readonly data: string;
  readonly tag: string;
}

export function splitSecret(secret: Uint8Array): [Buffer, Buffer] {
  const a = randomBytes(secret.length);
  const b = Buffer.alloc(secret.length);
  for (let i = 0; i < secret.length; i++) b[i] = secret[i]! ^ a[i]!;
  return [a, b];
}

export function combineShares(a: Uint8Array, b: Uint8Array): Buffer {
  if (a.length !== b.length) throw new KeyError('SHARES_MISMATCH', 'the two shares have different lengths: they are not shares of the same key');
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function aad(kekId: string, share: ShareLetter): Buffer {
  return Buffer.from(`${SHARE_FORMAT}\0${kekId}\0${share}`, 'utf8');
}

/**
 * scrypt cost for new shares: N = 2^17, r = 8 (128 MiB and about a third of a
 * second per guess here; the two share files sit side by side, so each must
 * hold out on its own). Older shares (N = 2^14) stay readable: every file
 * names its own parameters.
 */
const SHARE_SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const;

function deriveKey(passphrase: Buffer, salt: Buffer, kdf: { N: number; r: number; p: number }): Buffer {
  const bytes = nfcBytes(passphrase);
  try {
    return scryptSync(bytes, salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r + 16 * 1024 * 1024 });
  } finally {
    if (bytes !== passphrase) wipe(bytes);
  }
}

export interface ScryptCost {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

export function sealShare(kekId: string, share: ShareLetter, secret: Uint8Array, passphrase: Buffer, cost: ScryptCost = SHARE_SCRYPT): ShareFile {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const key = deriveKey(passphrase, salt, cost);
  const c = createCipheriv('aes-256-gcm', key, iv).setAAD(aad(kekId, share));
  const data = Buffer.concat([c.update(secret), c.final()]);
  key.fill(0);
  return {
    format: SHARE_FORMAT,
    kekId,
    share,
    scheme: '2-of-2 xor',
    kdf: { name: 'scrypt', N: cost.N, r: cost.r, p: cost.p, salt: salt.toString('base64') },
    cipher: 'aes-256-gcm',
    iv: iv.toString('base64'),
    data: data.toString('base64'),
    tag: c.getAuthTag().toString('base64'),
  };
}

/** Parse and open a share file; a wrong passphrase or a share of another KEK is a KeyError naming the share. */
export function openShare(text: string, kekId: string, share: ShareLetter, passphrase: Buffer, file: string): Buffer {
  let f: ShareFile;
  try {
    f = JSON.parse(text) as ShareFile;
  } catch {
    throw new KeyError('SHARE_UNREADABLE', `${file} is not a share file (not JSON)`, { file });
  }
  if (f.format !== SHARE_FORMAT || f.kdf?.name !== 'scrypt' || f.cipher !== 'aes-256-gcm') {
    throw new KeyError('SHARE_UNREADABLE', `${file} is not a ${SHARE_FORMAT} file`, { file });
  }
  if (f.kekId !== kekId || f.share !== share) {
    throw new KeyError('SHARE_MISMATCH', `${file} holds share ${f.share} of KEK ${f.kekId}, not share ${share} of KEK ${kekId}`, { file });
  }
  const key = deriveKey(passphrase, Buffer.from(f.kdf.salt, 'base64'), f.kdf);
  try {
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(f.iv, 'base64')).setAAD(aad(kekId, share));
    d.setAuthTag(Buffer.from(f.tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(f.data, 'base64')), d.final()]);
  } catch {
    throw new KeyError(
      'WRONG_PASSPHRASE',
      `cannot open share ${share} of KEK ${kekId} (${file}): wrong passphrase for this share, or the file is damaged`,
      { file, kekId, share },
    );
  } finally {
    key.fill(0);
  }
}
