import { readFile } from 'node:fs/promises';
import { KeyError } from '../errors.js';

/*
 * Secrets typed or read by a person (share passphrases) are kept in Buffers
 * that are wiped once used: a JavaScript string cannot be wiped, and lingers
 * in the heap (and in a core dump) until the collector reuses its memory.
 */

/** Zero every buffer given. */
export function wipe(...bufs: (Uint8Array | undefined)[]): void {
  for (const b of bufs) b?.fill(0);
}

/** The first line of `file` as bytes; the rest of what was read is wiped. */
export async function readSecretLine(file: string, what: string): Promise<Buffer> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (err) {
    throw new KeyError('PASSPHRASE_UNREADABLE', `cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file });
  }
  let end = raw.indexOf(0x0a);
  if (end < 0) end = raw.length;
  if (end > 0 && raw[end - 1] === 0x0d) end--;
  const line = Buffer.alloc(end);
  raw.copy(line, 0, 0, end);
  wipe(raw);
  if (!line.length) throw new KeyError('PASSPHRASE_EMPTY', `the ${what} ${file} is empty`, { file });
  return line;
}

/**
 * The bytes a passphrase is keyed from: UTF-8 in Unicode NFC, so the same
 * passphrase typed on another system opens the same share. ASCII (all that
 * most passphrases are) is already NFC and is used as it is; anything else
 * goes through a string, which cannot be wiped.
 */
export function nfcBytes(passphrase: Buffer): Buffer {
  for (const b of passphrase) if (b > 0x7f) return Buffer.from(passphrase.toString('utf8').normalize('NFC'), 'utf8');
  return passphrase;
}
