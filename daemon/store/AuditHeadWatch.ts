import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileDurably } from '../fsutil.js';
import type { Logger } from '../log.js';
import { parseAuditHead, type AuditHead, type AuditLog } from './AuditLog.js';

/**
 * Keeps the head of the audit chain outside the audit environment
 * (`<dataDir>/audit-head`, and every entry's seq and hash in the daemon's log,
 * which journald can ship off the host as each line is written), so that
 * removing entries from the end of the chain — which `audit verify` cannot
 * see, a prefix being a valid chain — is found: at start and every minute the
 * chain must still hold the head last seen.
 */
export class AuditHeadWatch {
  #head: AuditHead | undefined;
  #intact = true;

  private constructor(
    private readonly file: string,
    private readonly audit: AuditLog,
    private readonly log: Logger,
  ) {}

  static async open(dataDir: string, audit: AuditLog, log: Logger): Promise<AuditHeadWatch> {
    const w = new AuditHeadWatch(path.join(dataDir, 'audit-head'), audit, log);
    const text = await readFile(w.file, 'utf8').catch(() => undefined);
    w.#head = text === undefined ? undefined : parseAuditHead(text);
    if (text !== undefined && !w.#head) log.error({ file: w.file }, 'the audit head file is not SEQ:HASH; the chain cannot be checked against it');
    return w;
  }

  /** Whether the chain held every head seen so far. */
  get intact(): boolean {
    return this.#intact;
  }

  get head(): AuditHead | undefined {
    return this.#head;
  }

  /** Check the chain against the head, log every entry since it (seq, hash, action), keep the new head. */
  async check(): Promise<void> {
    const seen = this.#head;
    if (seen) {
      const problem = this.audit.checkHead(seen);
      if (problem) {
        this.#intact = false;
        this.log.error({ head: `${seen.seq}:${seen.hash}`, file: this.file }, `audit log tampered with: ${problem}`);
        return; // keep the head that proves it
      }
    }
    let last: AuditHead | undefined = seen;
    for (const e of this.audit.list((seen?.seq ?? 0) + 1)) {
      this.log.info({ audit: { seq: e.seq, hash: e.hash, action: e.action, actor: e.actor, subject: e.subject } }, 'audit entry');
      last = { seq: e.seq, hash: e.hash };
    }
    if (last && (last.seq !== seen?.seq || last.hash !== seen.hash)) {
      await writeFileDurably(this.file, `${last.seq}:${last.hash}\n`, 0o640);
      this.#head = last;
    }
  }
}
