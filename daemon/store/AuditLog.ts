import { createHash, sign as signData, verify as verifySignature, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { checkLmdbFile } from './lmdbCheck.js';

/** What happened; the README lists each action and its details. */
export type AuditAction =
  | 'daemon.start'
  | 'daemon.stop'
  | 'config.reload'
  | 'checkpoint'
  | 'key.created'
  | 'key.rotated'
  | 'key.revoked'
  | 'key.shares-destroyed'
  | 'key.shares-escrowed'
  | 'key.set-changed'
  | 'key.opened'
  | 'key.unwrapped'
  | 'job.started'
  | 'job.finished'
  | 'recording.exported'
  | 'recording.decrypt-checked'
  | 'recording.hold'
  | 'recording.release'
  | 'recording.deleted'
  | 'recording.offloaded'
  | 'verify.failed'
  | 'index.rebuilt';

export interface AuditEntry {
  readonly seq: number;
  readonly at: string;
  /** Who: `daemon`, or the OS user running a command (with the sudo user). */
  readonly actor: string;
  readonly action: AuditAction;
  /** What it concerns (a recording id, …), or null. */
  readonly subject: string | null;
  readonly details: Readonly<Record<string, unknown>>;
  /** SHA-256 (hex) of the previous entry; 64 zeros for the first. */
  readonly prev: string;
  readonly hash: string;
}

export interface AuditVerification {
  readonly ok: boolean;
  readonly entries: number;
  readonly checkpoints: number;
  readonly lastCheckpointAt: string | null;
  /** The first entry that breaks the chain, and why. */
  readonly firstBroken: { readonly seq: number; readonly reason: string } | null;
}

const GENESIS = '0'.repeat(64);
const CHECKPOINT_CONTEXT = 'callvault-audit-checkpoint';

function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  return createHash('sha256')
    .update(JSON.stringify([e.seq, e.at, e.actor, e.action, e.subject, e.details, e.prev]))
    .digest('hex');
}

/** The text a checkpoint signs: the chain up to and including `seq` is the one ending in `hash`. */
/** A point of the chain remembered outside it: `SEQ:HASH`. */
export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

export function parseAuditHead(text: string): AuditHead | undefined {
  const m = /^(\d+):([0-9a-f]{64})$/.exec(text.trim());
  return m ? { seq: Number(m[1]), hash: m[2] as string } : undefined;
}

export function checkpointText(seq: number, hash: string): string {
  return `${CHECKPOINT_CONTEXT}\n${seq}\n${hash}\n`;
}

/** The OS user behind a command, as precisely as the environment tells. */
/**
 * Who is acting, from what the kernel says rather than the environment
 * (`SUDO_USER=alice` is anyone's to set): the real user, and the login uid
 * (`/proc/self/loginuid`, kept across sudo/su by pam_loginuid) when it
 * differs, e.g. `root (login alice, uid 1000)`.
 */
export function currentActor(): string {
  const uid = process.getuid?.() ?? -1;
  const user = nameOfUid(uid) ?? `uid ${uid}`;
  const login = loginUid();
  if (login === undefined || login === uid) return user;
  return `${user} (login ${nameOfUid(login) ?? '?'}, uid ${login})`;
}

function loginUid(): number | undefined {
  try {
    const n = Number(readFileSync('/proc/self/loginuid', 'utf8').trim());
    // 4294967295 (-1): no login session (a service, a container).
    return Number.isInteger(n) && n >= 0 && n < 4294967295 ? n : undefined;
  } catch {
    return undefined;
  }
}

function nameOfUid(uid: number): string | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (name && Number(id) === uid) return name;
    }
  } catch {
    // no passwd database: the uid alone
  }
  return uid === os.userInfo().uid ? os.userInfo().username : undefined;
}

/**
 * The append-only, hash-chained audit log in its own LMDB environment
 * (`<dataDir>/audit/audit.mdb`), apart from the index, so losing or rebuilding
 * the index never touches it. Each entry carries the SHA-256 of the previous
 * one; signed checkpoints (the instance key) pin the chain, so an edit, a
 * deletion or a rewrite from some point on is found by `callvault audit verify`.
 * Appends from several processes are serialised by LMDB's write lock.
 */
export class AuditLog {
  private constructor(
    private readonly root: RootDatabase,
    private readonly entries: Database<AuditEntry, number>,
  ) {}

  static open(dataDir: string): AuditLog {
    const dir = path.join(dataDir, 'audit');
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    const file = path.join(dir, 'audit.mdb');
    checkLmdbFile(
      file,
      'the audit log',
      'stop the daemon and restore the audit directory from a backup (or move it aside to start a new chain; the gap is then visible to `callvault audit verify`)',
    );
    const root = open({ path: file, compression: false });
    return new AuditLog(root, root.openDB({ name: 'entries', keyEncoding: 'uint32' }));
  }

  async append(actor: string, action: AuditAction, subject: string | null, details: Record<string, unknown> = {}): Promise<AuditEntry> {
    let entry!: AuditEntry;
    await this.root.transaction(() => {
      entry = this.appendInTxn(actor, action, subject, () => details);
    });
    return entry;
  }

  /**
   * A signed checkpoint over the chain as it stands. Signed inside the write
   * transaction (one RSA signature, about a millisecond) so no other process
   * can append between the entry it covers and itself.
   */
  async checkpoint(actor: string, key: KeyObject, certFingerprint: string): Promise<AuditEntry> {
    let entry!: AuditEntry;
    await this.root.transaction(() => {
      entry = this.appendInTxn(actor, 'checkpoint', null, (seq, hash) => ({
        upTo: seq,
        hash,
        certFingerprint,
        signature: signData('sha256', Buffer.from(checkpointText(seq, hash)), key).toString('base64'),
      }));
    });
    return entry;
  }

  private appendInTxn(
    actor: string,
    action: AuditAction,
    subject: string | null,
    details: (lastSeq: number, lastHash: string) => Record<string, unknown>,
  ): AuditEntry {
    const last = this.last();
    const lastSeq = last?.seq ?? 0;
    const prev = last?.hash ?? GENESIS;
    const body = { seq: lastSeq + 1, at: new Date().toISOString(), actor, action, subject, details: details(lastSeq, prev), prev };
    const entry = { ...body, hash: entryHash(body) };
    this.entries.put(entry.seq, entry);
    return entry;
  }

  get(seq: number): AuditEntry | undefined {
    return this.entries.get(seq);
  }

  /**
   * Does the chain still hold a head seen earlier (kept outside this
   * environment: the daemon's head file, a log line shipped off the host)?
   * A prefix of the chain passes `verify`; only the head tells that its end was cut.
   */
  checkHead(head: AuditHead): string | undefined {
    const e = this.get(head.seq);
    if (!e)
      return `the chain ends at entry ${this.last()?.seq ?? 0}, but entry ${head.seq} (hash ${head.hash}) was seen before: entries were removed from its end`;
    if (e.hash !== head.hash) return `entry ${head.seq} has hash ${e.hash}, but ${head.hash} was seen before: the chain was rewritten`;
    return undefined;
  }

  last(): AuditEntry | undefined {
    for (const { value } of this.entries.getRange({ reverse: true, limit: 1 })) return value;
    return undefined;
  }

  *list(fromSeq = 1): Generator<AuditEntry> {
    for (const { value } of this.entries.getRange({ start: fromSeq })) yield value;
  }

  /** Walk the whole chain; checkpoint signatures are checked against `certPem`. */
  verify(certPem: string): AuditVerification {
    const key = new X509Certificate(certPem).publicKey;
    let expectSeq = 1;
    let prev = GENESIS;
    let entries = 0;
    let checkpoints = 0;
    let lastCheckpointAt: string | null = null;
    const result = (firstBroken: AuditVerification['firstBroken']): AuditVerification => ({
      ok: firstBroken === null,
      entries,
      checkpoints,
      lastCheckpointAt,
      firstBroken,
    });
    for (const { key: seq, value: e } of this.entries.getRange()) {
      const { hash, ...body } = e;
      if (seq !== expectSeq || e.seq !== seq) return result({ seq: expectSeq, reason: `entry ${expectSeq} is missing (next is ${seq})` });
      if (e.prev !== prev)
        return result({ seq, reason: 'prev does not match the hash of the entry before: an entry before it was changed or removed' });
      if (entryHash(body) !== hash) return result({ seq, reason: 'hash does not match the entry: it was edited' });
      if (e.action === 'checkpoint') {
        const d = e.details as { upTo: number; hash: string; signature: string };
        const ok =
          d.upTo === seq - 1 &&
          d.hash === prev &&
          verifySignature('sha256', Buffer.from(checkpointText(d.upTo, d.hash)), key, Buffer.from(d.signature, 'base64'));
        if (!ok) return result({ seq, reason: 'checkpoint signature does not verify under the instance certificate' });
        checkpoints++;
        lastCheckpointAt = e.at;
      }
      prev = hash;
      expectSeq++;
      entries++;
    }
    return result(null);
  }

  close(): Promise<void> {
    return this.root.close();
  }
}
