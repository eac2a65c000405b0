/** Bit `i` of a bit set kept in 32-bit words (the law of a ring slot, a sequence number seen). */
export function testBit(words: Uint32Array, i: number): boolean {
  return (((words[i >>> 5] as number) >>> (i & 31)) & 1) === 1;
}

export function putBit(words: Uint32Array, i: number, on: boolean): void {
  const k = i >>> 5;
  const w = words[k] as number;
  words[k] = on ? w | (1 << (i & 31)) : w & ~(1 << (i & 31));
}
