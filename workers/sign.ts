import { sign as rsaSign, type KeyObject } from 'node:crypto';

export interface SignTask {
  readonly data: Uint8Array;
  /** A KeyObject crosses to the pool thread by structured clone; it is never serialised to text. */
  readonly key: KeyObject;
}

/** SHA256withRSA (RSASSA-PKCS1-v1_5) over `data`; the raw signature bytes. */
export default function sign({ data, key }: SignTask): Uint8Array {
  return rsaSign('sha256', data, key);
}
