/** The work after a call, one kind per stage handler (see StageRunner). */
export type JobStage = 'seal' | 'upload' | 'lock' | 'offload' | 'delete' | 'convert';
export const JOB_STAGES: readonly JobStage[] = ['seal', 'upload', 'lock', 'offload', 'delete', 'convert'];

/** rewrap: a new key slot, the same data key; reencrypt: a fresh data key (a suspected compromise of the old ones). */
export type KeyJobKind = 'encrypt' | 'rewrap' | 'reencrypt' | 'decrypt';

/** One recording's conversion, staged: every new file fsynced and checked under a temporary name. */
export interface StagedConversion {
  /** [staged name, final name], in the order they are renamed: audio, then checksum file, then signature. */
  readonly renames: readonly (readonly [string, string])[];
  /** Old files the new ones replace under another name. */
  readonly removes: readonly string[];
  readonly files: readonly string[];
  readonly kekId: string | null;
}

/** What a job keeps durably between attempts, by stage. */
export interface JobData {
  readonly seal: null;
  readonly upload: null;
  /** The target's copy is brought to the recording's legal hold as the index has it when the job runs. */
  readonly lock: null;
  /** The local audio is removed once every target's copy is found whole (offloadManifest.ts). */
  readonly offload: null;
  /** Why and by whom; from its first attempt on, the recording's files may be partly gone. */
  readonly delete: { readonly reason: string; readonly actor: string; readonly startedAt: string };
  /** null: nothing durable yet (leftovers are discarded and it starts over); set: roll forward. */
  readonly convert: { readonly staged: StagedConversion | null };
}

interface JobBase<S extends JobStage> {
  readonly stage: S;
  readonly recordingId: string;
  /** What the stage's work is per: upload and lock the target's name, convert the key job's id, otherwise ''. */
  readonly lane: string;
  readonly attempts: number;
  /** Unix ms before which the job is not tried again. */
  readonly notBefore: number;
  readonly lastError: string | null;
  /** Failed in a way a retry will not mend: left until the next start (then tried once more). */
  readonly parked: boolean;
  /** The process working on it and until when its claim holds (another process may take it after). */
  readonly claim: { readonly owner: string; readonly until: number } | null;
  readonly data: JobData[S];
}

/** One journaled job. */
export type Job<S extends JobStage = JobStage> = { [K in S]: JobBase<K> }[S];

/** A job as created: no attempts yet. */
export function newJob<S extends JobStage>(stage: S, recordingId: string, lane: string, data: JobData[S]): Job<S> {
  return { stage, recordingId, lane, attempts: 0, notBefore: 0, lastError: null, parked: false, claim: null, data } as Job<S>;
}

/** A background key job (`callvault keys encrypt-existing|revoke|decrypt-all`): its description and progress; its recordings are `convert` jobs. */
export interface KeyJob {
  readonly id: string;
  readonly kind: KeyJobKind;
  /** rewrap: the KEK being revoked. */
  readonly fromKekId: string | null;
  /** encrypt, rewrap: the KEK the recordings move to. */
  readonly toKekId: string | null;
  readonly actor: string;
  readonly createdAt: string;
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  /** The last failures (recording, reason), newest last; a failed recording is left as it was. */
  readonly failures: readonly { recordingId: string; error: string }[];
  readonly finishedAt: string | null;
}
