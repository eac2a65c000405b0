import type { KeyObject } from 'node:crypto';
import { unwrapDek } from '../daemon/seal/envelope.js';

export interface UnwrapDekTask {
  readonly key: KeyObject;
  readonly kekId: string;
  readonly wrapped: readonly Uint8Array[];
}

/** Unwrap a batch of data keys with one private KEK: the RSA private operations stay off the main thread. */
export default function unwrap(task: UnwrapDekTask): Uint8Array[] {
  return task.wrapped.map((w) => unwrapDek(task.key, w, task.kekId));
}
