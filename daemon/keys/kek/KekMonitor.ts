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

/** A change to the set of KEKs in the data dir. */
export interface KekSetChange {
  readonly added: readonly Kek[];
  readonly removed: readonly string[];
  readonly untrusted: readonly Kek[];
}

/**
 * Watches the current KEK's cryptoperiod. Inside the warning window (and
 * after it ends) it warns in the log and runs the notification hook, at most
 * once per KEK per day. It never stops recording: an expired KEK keeps
 * protecting new recordings until someone rotates.
 */
export class KekMonitor {
  private notified = new Map<string, string>();
  /** The KEK set last seen (id → fingerprint); undefined before the first look. */
  private seen: Map<string, string> | undefined;
  private readonly alarmed = new Map<string, string>();
  private readonly listeners: ((change: KekSetChange) => void)[] = [];
  private readonly expiryListeners: ((s: KekStatus) => void)[] = [];

  constructor(
    private readonly store: KekStore,
    private settings: EncryptionConfig,
    private readonly log: Logger,
  ) {}

  /** Be told when KEKs appear or vanish after the first look (the daemon audits it, metrics count it). */
  onChange(listener: (change: KekSetChange) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Any change to the set of KEKs is reported (WARN and onSetChange), and a
   * KEK nobody trusts is an ERROR once a day: it is never used, but either an
   * administrator forgot to pin a rotation, or someone planted it.
   */
  watchSet(now = new Date()): KekSetChange | undefined {
    const keks = this.store.list();
    const current = new Map(keks.map((k) => [k.id, k.fingerprintSha256]));
    const untrusted = this.store.untrusted();
    const day = now.toISOString().slice(0, 10);
    for (const k of untrusted) {
      if (this.alarmed.get(k.id) === day) continue;
      this.alarmed.set(k.id, day);
      this.log.error(
        { kekId: k.id, fingerprintSha256: k.fingerprintSha256, createdAt: k.createdAt },
        'a KEK in the data dir is not in encryption.trustedKeks and is not used: pin it if your administrators made it, investigate if not',
      );
    }
    const before = this.seen;
    this.seen = current;
    if (!before) return undefined;
    const added = keks.filter((k) => before.get(k.id) !== k.fingerprintSha256);
    const removed = [...before.keys()].filter((id) => !current.has(id));
    if (!added.length && !removed.length) return undefined;
    const change = { added, removed, untrusted };
    this.log.warn(
      { added: added.map((k) => ({ kekId: k.id, fingerprintSha256: k.fingerprintSha256, trusted: this.store.isTrusted(k) })), removed },
      'the set of KEKs changed',
    );
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (err) {
        this.log.error({ err }, 'a KEK-set listener failed');
      }
    }
    return change;
  }

  /** Be told once a day while the current KEK is in its warning window or past its cryptoperiod (the notifier mails it). */
  onExpiryWarning(listener: (s: KekStatus) => void): void {
    this.expiryListeners.push(listener);
  }

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
    this.watchSet(now);
    const s = this.status(now);
    if (!s?.warning) return s;
    const day = now.toISOString().slice(0, 10);
    if (this.notified.get(s.kek.id) === day) return s;
    this.notified.set(s.kek.id, day);
    const fields = { kekId: s.kek.id, expiresAt: s.expiresAt.toISOString(), daysLeft: Math.floor(s.secondsLeft / 86_400) };
    this.log.warn(
      fields,
      s.secondsLeft > 0
        ? 'the current KEK is near the end of its cryptoperiod: run `callvault keys rotate`'
        : 'the current KEK is past its cryptoperiod; recording continues under it: run `callvault keys rotate`',
    );
    for (const l of this.expiryListeners) {
      try {
        l(s);
      } catch (err) {
        this.log.error({ err }, 'a KEK-expiry listener failed');
      }
    }
    const cmd = this.settings.notifyCommand;
    if (cmd) {
      const env = {
        ...process.env,
        CALLVAULT_KEK_ID: s.kek.id,
        CALLVAULT_KEK_EXPIRES_AT: fields.expiresAt,
        CALLVAULT_KEK_SECONDS_LEFT: String(s.secondsLeft),
      };
      execFile(cmd[0]!, cmd.slice(1), { env, timeout: NOTIFY_TIMEOUT_MS }, (err) => {
        if (err) this.log.error({ command: cmd[0], err }, 'KEK expiry notification hook failed');
        else this.log.info({ command: cmd[0], kekId: s.kek.id }, 'KEK expiry notification sent');
      });
    }
    return s;
  }
}
