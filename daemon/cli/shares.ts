import { openSync } from 'node:fs';
import tty from 'node:tty';
import type { Argv } from 'yargs';
import { KeyError } from '../errors.js';
import type { ShareInput, ShareInputs } from '../keys/kek/KekStore.js';
import { SHARE_LETTERS, type ShareLetter } from '../keys/kek/shares.js';
import { readSecretLine, wipe } from '../keys/secret.js';

/** Shorter admin passphrases are refused when a share is made. */
export const MIN_SHARE_PASSPHRASE = 16;
/** Estimated strength a new share's passphrase must reach (see passphraseBits). */
export const MIN_SHARE_BITS = 60;

/**
 * A deliberately pessimistic strength estimate: each distinct character
 * counts log2 of the classes used (lower, upper, digits, other), each
 * repeated one a single bit. `aaaaaaaaaaaaaaaa` rates 20 bits,
 * `administrator-a-passphrase` 75, four random words about 90.
 */
export function passphraseBits(p: string): number {
  const pool = (/[a-z]/.test(p) ? 26 : 0) + (/[A-Z]/.test(p) ? 26 : 0) + (/[0-9]/.test(p) ? 10 : 0) + (/[^a-zA-Z0-9]/.test(p) ? 33 : 0);
  const chars = [...p];
  const distinct = new Set(chars).size;
  return distinct * Math.log2(Math.max(pool, 2)) + (chars.length - distinct);
}

export interface ShareArgs {
  'share-a-pass-file'?: string | undefined;
  'share-b-pass-file'?: string | undefined;
  'share-a-file'?: string | undefined;
  'share-b-file'?: string | undefined;
  /** Provider lkm: the key manager's unwrap credential (the recorder's cannot unwrap). */
  'lkm-token-file'?: string | undefined;
}

/** The options of every command that needs (or makes) a KEK's two shares. */
export function withShareOptions<T>(y: Argv<T>): Argv<T & ShareArgs> {
  let out = y as Argv<T & ShareArgs>;
  for (const l of ['a', 'b'] as const) {
    out = out
      .option(`share-${l}-pass-file`, {
        type: 'string',
        normalize: true,
        describe: `file whose first line is administrator ${l.toUpperCase()}'s passphrase (default: prompt without echo)`,
      })
      .option(`share-${l}-file`, {
        type: 'string',
        normalize: true,
        describe: `share ${l.toUpperCase()} file kept elsewhere (default: the one in the KEK's directory)`,
      }) as Argv<T & ShareArgs>;
  }
  return out.option('lkm-token-file', {
    type: 'string',
    normalize: true,
    describe: "provider lkm: file whose first line is the key manager's unwrap token (lkm serve's unwrap.token)",
  }) as Argv<T & ShareArgs>;
}

/** Drop the last UTF-8 character of `bytes` (a backspace). */
function dropLastChar(bytes: number[]): void {
  while (bytes.length && ((bytes.pop() as number) & 0xc0) === 0x80);
}

/**
 * Read one line from the terminal without echoing it; a passphrase never
 * reaches the screen or the scrollback, and is collected as bytes (wiped by
 * the caller), never as a string.
 */
async function promptHidden(question: string): Promise<Buffer> {
  let input: tty.ReadStream;
  let output: tty.WriteStream;
  try {
    input = new tty.ReadStream(openSync('/dev/tty', 'r'));
    output = new tty.WriteStream(openSync('/dev/tty', 'w'));
  } catch {
    throw new KeyError('NO_TERMINAL', 'no terminal to prompt on');
  }
  return new Promise((resolve, reject) => {
    const bytes: number[] = [];
    const done = (err?: Error) => {
      input.setRawMode(false);
      input.removeAllListeners('data');
      output.write('\n');
      input.destroy();
      output.destroy();
      const value = Buffer.from(bytes);
      bytes.fill(0);
      if (err) {
        wipe(value);
        reject(err);
      } else resolve(value);
    };
    output.write(question);
    input.setRawMode(true);
    input.on('data', (chunk: Buffer) => {
      try {
        for (const b of chunk) {
          if (b === 0x0d || b === 0x0a) return done();
          if (b === 0x03 || b === 0x04) return done(new KeyError('ABORTED', 'passphrase entry aborted'));
          if (b === 0x7f || b === 0x08) dropLastChar(bytes);
          else bytes.push(b);
        }
      } finally {
        wipe(chunk);
      }
    });
  });
}

async function passphraseFor(letter: ShareLetter, args: ShareArgs, purpose: string, confirm: boolean): Promise<Buffer> {
  const file = letter === 'A' ? args['share-a-pass-file'] : args['share-b-pass-file'];
  if (file) return readSecretLine(file, `share ${letter} passphrase file`);
  const first = await promptHidden(`Administrator ${letter}, passphrase for share ${letter} (${purpose}): `).catch((err: KeyError) => {
    if (err.code !== 'NO_TERMINAL') throw err;
    throw new KeyError(
      'SHARE_MISSING',
      `share ${letter} needs administrator ${letter}'s passphrase, and there is no terminal to ask on: pass --share-${letter.toLowerCase()}-pass-file (both shares are always required)`,
    );
  });
  if (confirm) {
    const again = await promptHidden(`Administrator ${letter}, the same passphrase again: `);
    const same = again.equals(first);
    wipe(again);
    if (!same) {
      wipe(first);
      throw new KeyError('PASSPHRASE_MISMATCH', `the two entries of share ${letter}'s passphrase differ`);
    }
  }
  return first;
}

/** A new share's passphrase must be long and varied (judged on a transient string: the one place it is text). */
function checkStrength(letter: ShareLetter, passphrase: Buffer): void {
  const text = passphrase.toString('utf8');
  if ([...text].length < MIN_SHARE_PASSPHRASE)
    throw new KeyError('PASSPHRASE_SHORT', `share ${letter}'s passphrase must be at least ${MIN_SHARE_PASSPHRASE} characters`);
  if (passphraseBits(text) < MIN_SHARE_BITS) {
    throw new KeyError(
      'PASSPHRASE_WEAK',
      `share ${letter}'s passphrase is too guessable (repeated or few different characters): use a longer one with more variety, e.g. four or five random words`,
    );
  }
}

/**
 * Both administrators' inputs. Each is asked for separately; a missing
 * one is a clear error, never a fallback to the other's.
 */
export async function readShareInputs(args: ShareArgs, purpose: string, opts: { creating: boolean }): Promise<ShareInputs> {
  const out: Partial<Record<ShareLetter, ShareInput>> = {};
  for (const letter of SHARE_LETTERS) {
    let passphrase: Buffer | undefined;
    try {
      passphrase = await passphraseFor(letter, args, purpose, opts.creating);
      if (!passphrase.length) throw new KeyError('PASSPHRASE_EMPTY', `share ${letter} needs its administrator's passphrase`);
      if (opts.creating) checkStrength(letter, passphrase);
    } catch (err) {
      wipe(passphrase, ...SHARE_LETTERS.map((l) => out[l]?.passphrase));
      throw err;
    }
    out[letter] = { passphrase, file: letter === 'A' ? args['share-a-file'] : args['share-b-file'] };
  }
  return out as ShareInputs;
}
