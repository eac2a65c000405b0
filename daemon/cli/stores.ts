import { AuditLog } from '../store/AuditLog.js';
import { RecordingIndex } from '../store/RecordingIndex.js';

export interface Stores {
  readonly index: RecordingIndex;
  readonly audit: AuditLog;
}

/** Open an instance's index and audit log for one command (alongside a running daemon: LMDB is multi-process). */
export async function withStores<T>(dataDir: string, body: (s: Stores) => Promise<T>): Promise<T> {
  const index = RecordingIndex.open(dataDir);
  const audit = AuditLog.open(dataDir);
  try {
    return await body({ index, audit });
  } finally {
    await index.close();
    await audit.close();
  }
}
