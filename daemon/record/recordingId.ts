import { randomBytes } from 'node:crypto';
import path from 'node:path';

/*
 * A recording id is 12 hex digits of the start time in ms, then 10 random hex
 * digits: ids sort by start time and say where the recording lives, so a
 * recording is found on disk without any index.
 */
const ID = /^[0-9a-f]{12}[0-9a-f]{10}$/;

export function newRecordingId(nowMs: number = Date.now()): string {
  return nowMs.toString(16).padStart(12, '0') + randomBytes(5).toString('hex');
}

export function isRecordingId(s: string): boolean {
  return ID.test(s);
}

/** `<dataDir>/recordings/YYYY/MM/DD/<id>` (UTC date of the start). */
export function recordingDir(dataDir: string, id: string): string {
  const d = new Date(parseInt(id.slice(0, 12), 16));
  const p2 = (n: number) => String(n).padStart(2, '0');
  return path.join(dataDir, 'recordings', String(d.getUTCFullYear()), p2(d.getUTCMonth() + 1), p2(d.getUTCDate()), id);
}
