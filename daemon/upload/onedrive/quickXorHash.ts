import { createReadStream } from 'node:fs';

const WIDTH_BITS = 160;
const SHIFT = 11;

/**
 * OneDrive's QuickXorHash (the hash Graph reports for files, in place of
 * SHA-256): byte i is XORed into a 160-bit ring at bit (11·i) mod 160, and
 * the length, little-endian, into the last 64 bits. The ring position
 * repeats every 160 bytes, so bytes are first folded by i mod 160 and
 * placed once at the end — XOR is linear.
 */
export class QuickXorHash {
  readonly #folded = new Uint8Array(WIDTH_BITS);
  #length = 0;

  update(data: Uint8Array): this {
    const start = this.#length % WIDTH_BITS;
    for (let i = 0; i < data.length; i++) this.#folded[(start + i) % WIDTH_BITS]! ^= data[i]!;
    this.#length += data.length;
    return this;
  }

  /** The hash, base64 as Graph gives it. */
  digest(): string {
    const out = new Uint8Array(WIDTH_BITS / 8);
    for (let k = 0; k < WIDTH_BITS; k++) {
      const v = this.#folded[k]!;
      if (!v) continue;
      const p = (SHIFT * k) % WIDTH_BITS;
      for (let t = 0; t < 8; t++) {
        if (!((v >> t) & 1)) continue;
        const q = (p + t) % WIDTH_BITS;
        out[q >> 3]! ^= 1 << (q & 7);
      }
    }
    let len = BigInt(this.#length);
    for (let i = 0; i < 8; i++, len >>= 8n) out[WIDTH_BITS / 8 - 8 + i]! ^= Number(len & 0xffn);
    return Buffer.from(out).toString('base64');
  }
}

export async function quickXorHashFile(file: string): Promise<string> {
  const h = new QuickXorHash();
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) h.update(chunk);
  return h.digest();
}
