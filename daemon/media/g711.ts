/**
 * ITU-T G.711 μ-law and A-law. Decoding is a 256-entry table lookup (it runs
 * for every sample of every call); encoding is only for senders and tests.
 */
export type G711Law = 'PCMU' | 'PCMA';

function ulawToLinear(u: number): number {
  const x = ~u & 0xff;
  let t = ((x & 0x0f) << 3) + 0x84;
  t <<= (x & 0x70) >> 4;
  return x & 0x80 ? 0x84 - t : t - 0x84;
}

function alawToLinear(a: number): number {
  const x = a ^ 0x55;
  let t = (x & 0x0f) << 4;
  const seg = (x & 0x70) >> 4;
  if (seg === 0) t += 8;
  else if (seg === 1) t += 0x108;
  else t = (t + 0x108) << (seg - 1);
  return x & 0x80 ? t : -t;
}

function table(decode: (v: number) => number): Int16Array {
  const t = new Int16Array(256);
  for (let i = 0; i < 256; i++) t[i] = decode(i);
  return t;
}

export const DECODE_TABLES: Readonly<Record<G711Law, Int16Array>> = {
  PCMU: table(ulawToLinear),
  PCMA: table(alawToLinear),
};

function segment(v: number, ends: readonly number[]): number {
  for (let i = 0; i < ends.length; i++) if (v <= (ends[i] as number)) return i;
  return ends.length;
}

const U_END = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
const A_END = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

export function linearToUlaw(sample: number): number {
  let v = sample >> 2;
  let mask = 0xff;
  if (v < 0) {
    v = -v;
    mask = 0x7f;
  }
  v = Math.min(v, 8159) + 0x21;
  const seg = segment(v, U_END);
  if (seg >= 8) return 0x7f ^ mask;
  return ((seg << 4) | ((v >> (seg + 1)) & 0x0f)) ^ mask;
}

export function linearToAlaw(sample: number): number {
  let v = sample >> 3;
  let mask = 0xd5;
  if (v < 0) {
    mask = 0x55;
    v = -v - 1;
  }
  const seg = segment(v, A_END);
  if (seg >= 8) return 0x7f ^ mask;
  const a = (seg << 4) | ((seg < 2 ? v >> 1 : v >> seg) & 0x0f);
  return a ^ mask;
}

export function encode(law: G711Law, pcm: Int16Array): Buffer {
  const f = law === 'PCMU' ? linearToUlaw : linearToAlaw;
  const out = Buffer.allocUnsafe(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = f(pcm[i] as number);
  return out;
}
