import { readFile } from 'node:fs/promises';
import { KeyError } from '../errors.js';
import { describeCertificate } from './certificate.js';
import { identityPaths, readInstanceCertificate } from './SigningIdentity.js';

/**
 * Where the certificate signatures are checked against came from: a file
 * given from outside, the data dir's own copy matching a pinned fingerprint,
 * or the data dir's copy trusted as it is (anyone who can write the data dir
 * can replace it, and with it re-sign anything).
 */
export type TrustSource = 'given' | 'pinned' | 'data-dir';

export interface TrustAnchor {
  readonly pem: string;
  readonly fingerprintSha256: string;
  readonly source: TrustSource;
}

/** `AA:BB:…` (as `openssl x509 -fingerprint -sha256` and `callvault cert --fingerprint` print it), from colon or bare hex in any case. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replaceAll(':', '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex))
    throw new KeyError('BAD_FINGERPRINT', `${JSON.stringify(fp)} is not a SHA-256 fingerprint (64 hex digits, colons allowed)`);
  return hex.match(/../g)!.join(':');
}

/** The pinned fingerprint the certificate must have; a mismatch is a replaced certificate. */
export function assertPinned(pem: string, pinned: string, what: string): string {
  const actual = describeCertificate(pem).fingerprintSha256;
  const want = normalizeFingerprint(pinned);
  if (actual !== want) {
    throw new KeyError(
      'CERT_NOT_PINNED',
      `${what} has SHA-256 fingerprint ${actual}, not the pinned ${want}: it is not the certificate this instance's recordings were signed with (replaced, or another instance's). Restore the original from a backup; nothing signed under this one is trusted`,
      { actual, pinned: want },
    );
  }
  return actual;
}

/** A certificate kept outside the data dir (`--cert`), checked against the pin when there is one. */
export async function givenCertificate(file: string, pinned: string | null): Promise<TrustAnchor> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new KeyError('CERT_UNREADABLE', `cannot read certificate ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const fingerprintSha256 = pinned ? assertPinned(pem, pinned, file) : describeCertificate(pem).fingerprintSha256;
  return { pem, fingerprintSha256, source: 'given' };
}

/** The data dir's own certificate: trusted through the pin, or (no pin) only because it is there. */
export async function dataDirCertificate(dataDir: string, pinned: string | null): Promise<TrustAnchor> {
  const pem = await readInstanceCertificate(dataDir);
  if (pinned) return { pem, fingerprintSha256: assertPinned(pem, pinned, identityPaths(dataDir).certificate), source: 'pinned' };
  return { pem, fingerprintSha256: describeCertificate(pem).fingerprintSha256, source: 'data-dir' };
}

/** What to tell the operator when the only anchor is the data dir's own certificate. */
export function unpinnedWarning(anchor: TrustAnchor, dataDir: string): string | null {
  if (anchor.source !== 'data-dir') return null;
  return `WARNING: trusting ${identityPaths(dataDir).certificate} only because it is in the data dir: anyone who can write the data dir can replace it and re-sign forged recordings or audit checkpoints. Pin it: signing.fingerprint: "${anchor.fingerprintSha256}" in the config, --fingerprint, or --cert with a copy kept elsewhere`;
}
