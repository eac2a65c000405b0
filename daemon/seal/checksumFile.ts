import { open } from 'node:fs/promises';
import { ChecksumFormatError } from '../errors.js';
import { base64Lines } from '../keys/pem.js';

/*
 * `<recordingId>.sha256` is exactly what `shasum -a 256 FILES…` prints: one
 * line per file, 64 lowercase hex digits, two spaces (text mode; `shasum -c`
 * also accepts " *" for binary mode), the file name, "\n". Names are plain
 * file names in the recording's own directory, so `shasum -a 256 -c` runs there.
 */
export interface ChecksumEntry {
  readonly name: string;
  readonly sha256: string;
}

export const SIGNATURE_SUFFIX = '.SHA256withRSA.sig';

export function checksumFileName(recordingId: string): string {
  return `${recordingId}.sha256`;
}

export function signatureFileName(recordingId: string): string {
  return `${checksumFileName(recordingId)}${SIGNATURE_SUFFIX}`;
}

export function formatChecksums(entries: readonly ChecksumEntry[]): string {
  return [...entries]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((e) => `${e.sha256}  ${e.name}\n`)
    .join('');
}

/**
 * No checksum file callvault writes comes near this (a recording has a few
 * files); a larger one is hostile or not ours, and is never read into memory.
 */
export const MAX_CHECKSUM_FILE_BYTES = 1024 * 1024;

/** A checksum file's bytes, refused unread when it is larger than any callvault writes. */
export async function readChecksumFile(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    if (size > MAX_CHECKSUM_FILE_BYTES)
      throw new ChecksumFormatError(`it is ${size} bytes, more than any checksum file callvault writes (at most ${MAX_CHECKSUM_FILE_BYTES})`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** Parse a checksum file strictly: any line that `shasum -c` would not accept is an error. */
export function parseChecksums(text: string): ChecksumEntry[] {
  if (text.length && !text.endsWith('\n')) throw new ChecksumFormatError('the last line is not terminated');
  if (!text) throw new ChecksumFormatError('the checksum file is empty');
  const seen = new Set<string>();
  return text
    .slice(0, -1)
    .split('\n')
    .map((line, i) => {
      const m = /^([0-9a-f]{64}) [ *]([^/\0]+)$/.exec(line);
      if (!m) throw new ChecksumFormatError(`line ${i + 1} is not "<64 hex>  <file name>"`);
      const name = m[2] as string;
      if (seen.has(name) || name === '.' || name === '..')
        throw new ChecksumFormatError(`line ${i + 1}: ${JSON.stringify(name)} is listed twice or is not a file name`);
      seen.add(name);
      return { sha256: m[1] as string, name };
    });
}

/** The signature file: base64 of the raw RSA signature, 64 characters a line (both `base64 -d` and `openssl base64 -d` read it). */
export function formatSignature(signature: Uint8Array): string {
  return base64Lines(signature);
}

export function parseSignature(text: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || compact.length % 4 !== 0) throw new ChecksumFormatError('the signature file is not base64');
  return Buffer.from(compact, 'base64');
}
