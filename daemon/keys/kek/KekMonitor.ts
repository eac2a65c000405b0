import { execFile } from 'node:child_process';
import type { EncryptionConfig } from '../../config/Config.js';
import type { Logger } from '../../log.js';
import { kekExpiry, type Kek, type KekStore } from './KekStore.js';

export interface KekStatus {
  readonly kek: Kek;
  readonly expiresAt: Date;
  /** Negative once the cryptoperiod is over. */
  readonly secondsLeft: number;
  readonly warning: boolean;
}

const NOTIFY_TIMEOUT_MS = 30_000;

/**
 * Watches the current KEK's cryptoperiod. Inside the warning window (and
 * after it ends) it warns in the log and runs the notification hook, at most
 * once per KEK per day. It never stops recording: an expired KEK keeps
 * protecting new recordings until someone rotates.
 */
export class KekMonitor {
  private notified = new Map<string, string>();

  constructor(
    private readonly store: KekStore,
    private settings: EncryptionConfig,
    private readonly log: Logger,
  ) {}

  configure(settings: EncryptionConfig): void {
    this.settings = settings;
  }

  status(now = new Date()): KekStatus | undefined {
    const kek = this.store.current();
    if (!kek) return undefined;
    const expiresAt = kekExpiry(kek, this.settings.cryptoperiodDays);
    const secondsLeft = Math.round((expiresAt.getTime() - now.getTime()) / 1000);
    return { kek, expiresAt, secondsLeft, warning: secondsLeft <= this.settings.expiryWarningDays * 86_400 };
  }

  check(now = new Date()): KekStatus | undefined {
    const s = this.status(now);
    if (!s?.warning) return s;
    const day = now.toISOString().slice(0, 10);
    if (this.notified.get(s.kek.id) === day) return s;
    this.notified.set(s.kek.id, day);
    const fields = { kekId: s.kek.id, expiresAt: s.expiresAt.toISOString(), daysLeft: Math.floor(s.secondsLeft / 86_400) };
    this.log.warn(fields, s.secondsLeft > 0 ? 'the current KEK is near the end of its cryptoperiod: run `callvault keys rotate`' : 'the current KEK is past its cryptoperiod; recording continues under it: run `callvault keys rotate`');
    const cmd = this.settings.notifyCommand;
    if (cmd) {
      const env = { ...process.env, CALLVAULT_KEK_ID: s.kek.id, CALLVAULT_KEK_EXPIRES_AT: fields.expiresAt, CALLVAULT_KEK_SECONDS_LEFT: String(s.secondsLeft) };
      execFile(cmd[0]!, cmd.slice(1), { env, timeout: NOTIFY_TIMEOUT_MS }, (err) => {
        if (err) this.log.error({ command: cmd[0], err: err.message }, 'KEK expiry notification hook failed');
        else this.log.info({ command: cmd[0], kekId: s.kek.id }, 'KEK expiry notification sent');
      });
    }
    return s;
  }
}
