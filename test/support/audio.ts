import { readFile } from 'node:fs/promises';
import { parseWavHeader, type WavInfo } from '../../daemon/record/wavFormat.js';

export interface Wav extends WavInfo {
  /** One Float64Array per channel, samples scaled to [-1, 1). */
  readonly channels_: Float64Array[];
}

export async function readWav(file: string): Promise<Wav> {
  const buf = await readFile(file);
  const info = parseWavHeader(buf.subarray(0, 4096));
  const frames = Math.floor(info.dataBytes / (2 * info.channels));
  const ch = Array.from({ length: info.channels }, () => new Float64Array(frames));
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < info.channels; c++) (ch[c] as Float64Array)[i] = buf.readInt16LE(info.dataOffset + (i * info.channels + c) * 2) / 32768;
  }
  return { ...info, channels_: ch };
}

/** Goertzel power of `freq` in x[from, to), normalised by length. */
export function tonePower(x: Float64Array, freq: number, from = 0, to = x.length, rate = 8000): number {
  const w = (2 * Math.PI * freq) / rate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = from; i < to; i++) {
    const s = (x[i] as number) + coeff * s1 - s2;
    s2 = s1;
    s1 = s;
  }
  const n = Math.max(1, to - from);
  return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n);
}

/**
 * The tone at `freq` is at least 20 dB above `other` over [from, to),
 * Welch-style: powers summed over 100 ms blocks, so two bursts of the same
 * tone whose phases differ (a resumed stream, a re-anchored one) cannot
 * cancel each other out as they can in one long window.
 */
export function dominates(x: Float64Array, freq: number, other: number, from = 0, to = x.length): boolean {
  let a = 0;
  let b = 0;
  for (let i = from; i + 800 <= to; i += 800) {
    a += tonePower(x, freq, i, i + 800);
    b += tonePower(x, other, i, i + 800);
  }
  return a > 100 * b;
}

export function rms(x: Float64Array, from = 0, to = x.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += (x[i] as number) ** 2;
  return Math.sqrt(s / Math.max(1, to - from));
}

/** Index of the first 10 ms window whose RMS exceeds `threshold`, or -1. */
export function firstSound(x: Float64Array, threshold = 0.02): number {
  for (let i = 0; i + 80 <= x.length; i += 80) if (rms(x, i, i + 80) > threshold) return i;
  return -1;
}

/** Fraction of 20 ms windows in [from, to) that hold sound. */
export function soundFraction(x: Float64Array, from = 0, to = x.length, threshold = 0.02): number {
  let on = 0;
  let all = 0;
  for (let i = from; i + 160 <= to; i += 160, all++) if (rms(x, i, i + 160) > threshold) on++;
  return all ? on / all : 0;
}
