import type { RecordingIndex } from '../store/RecordingIndex.js';
import type { Job } from './JobTypes.js';

/** One storage target's uploads as the journal has them. */
export interface TargetUploads {
  readonly target: string;
  /** In the config now (a removed target keeps its jobs until it is back). */
  readonly configured: boolean;
  readonly pending: number;
  /** Seconds since the oldest pending recording was sealed (0 when none is pending). */
  readonly oldestPendingSeconds: number;
  /** The most attempts any pending copy has had. */
  readonly maxAttempts: number;
  readonly lastError: string | null;
  /** When the next attempt is due (ISO 8601), null when one is due now or none is pending. */
  readonly nextAttemptAt: string | null;
}

/** Every configured target and every target with pending copies, by name. */
export function uploadStatus(index: RecordingIndex, configured: readonly string[], now = Date.now()): TargetUploads[] {
  const byTarget = new Map<string, Job[]>(configured.map((t) => [t, []]));
  for (const j of index.jobs.list('upload')) byTarget.set(j.lane, [...(byTarget.get(j.lane) ?? []), j]);
  return [...byTarget]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([target, jobs]) => {
      const sealed = jobs.map((j) => Date.parse(index.get(j.recordingId)?.sealedAt ?? '')).filter((t) => !Number.isNaN(t));
      const failed = jobs.filter((j) => j.lastError !== null).sort((a, b) => b.attempts - a.attempts);
      const next = Math.min(...jobs.map((j) => j.notBefore));
      return {
        target,
        configured: configured.includes(target),
        pending: jobs.length,
        oldestPendingSeconds: sealed.length ? Math.max(0, Math.round((now - Math.min(...sealed)) / 1000)) : 0,
        maxAttempts: Math.max(0, ...jobs.map((j) => j.attempts)),
        lastError: failed[0]?.lastError ?? null,
        nextAttemptAt: jobs.length && next > now ? new Date(next).toISOString() : null,
      };
    });
}

/** Make the pending copies (of one target, or all) due now; returns how many. The daemon takes them up at its next look at the journal. */
export async function retryUploads(index: RecordingIndex, target?: string): Promise<number> {
  const jobs = index.jobs.list('upload', target);
  await index.putMany(
    [],
    jobs.map((j) => ({ put: { ...j, notBefore: 0, parked: false } as Job })),
  );
  return jobs.length;
}
