import { sign as rsaSign, type KeyObject } from 'node:crypto';

export interface SignTask {
  /** Several payloads per task: under load the pool batches them so thread hand-off costs little per signature. */
  readonly data: readonly Uint8Array[];
  /** A KeyObject crosses to the pool thread by structured clone; it is never serialised to text. */
  readonly key: KeyObject;
}

/** SHA256withRSA (RSASSA-PKCS1-v1_5) over each payload; the raw signatures, in order. */
export default function sign({ data, key }: SignTask): Uint8Array[] {
  return data.map((d) => rsaSign('sha256', d, key));
}
