import { firstLine } from '../keys/passphrase.js';
import { createTransport, type Transporter } from 'nodemailer';
import type { MailConfig } from '../config/Config.js';
import { SafeEmitter } from '../events/SafeEmitter.js';
import type { Logger } from '../log.js';
import { backoffMs } from '../retry.js';

export interface Mail {
  /** What it is about, for the log and the metric (target-failing, target-recovered, kek-expiry, …). */
  readonly kind: string;
  readonly subject: string;
  readonly text: string;
}

export interface MailerEvents {
  /** A mail left (true) or was given up on (false). */
  mail: [kind: string, sent: boolean];
}

/** Mails waiting at most; past it the oldest is dropped (and logged): a long SMTP outage cannot eat memory. */
const MAX_QUEUED = 200;
const RETRY = { baseMs: 1000, maxMs: 300_000 } as const;
/** A mail is given up after this long of failing to leave. */
const GIVE_UP_MS = 24 * 3600_000;

/**
 * Notification mail over SMTP (nodemailer). `send` never waits and never
 * throws: mails are queued and sent one at a time, one that cannot be sent
 * is retried with backoff (and logged), so a mail server that is down never
 * holds up recording or sealing.
 */
export class Mailer extends SafeEmitter<MailerEvents> {
  readonly #queue: { mail: Mail; since: number; attempt: number }[] = [];
  #transport: Transporter | null = null;
  #config: MailConfig;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    config: MailConfig,
    private readonly log: Logger,
  ) {
    super((err, event) => log.error({ err, event }, 'a mailer listener failed'));
    this.#config = config;
  }

  /** Whether mail is configured at all. */
  get enabled(): boolean {
    return this.#config.host !== null && this.#config.to.length > 0;
  }

  configure(config: MailConfig): void {
    this.#config = config;
    this.#transport?.close();
    this.#transport = null;
  }

  send(mail: Mail): void {
    if (!this.enabled || this.#closed) return;
    if (this.#queue.length >= MAX_QUEUED) {
      const dropped = this.#queue.shift()!;
      this.log.error({ kind: dropped.mail.kind, subject: dropped.mail.subject }, 'notification queue full; the oldest mail is dropped');
    }
    this.#queue.push({ mail, since: Date.now(), attempt: 0 });
    this.#pump();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#transport?.close();
  }

  #pump(): void {
    if (this.#running || this.#closed || this.#timer || !this.#queue.length) return;
    this.#running = true;
    void this.#sendFirst().finally(() => {
      this.#running = false;
      this.#pump();
    });
  }

  async #sendFirst(): Promise<void> {
    const item = this.#queue[0]!;
    const c = this.#config;
    try {
      this.#transport ??= createTransport({
        host: c.host!,
        port: c.port,
        secure: c.security === 'tls',
        requireTLS: c.security === 'starttls',
        ignoreTLS: c.security === 'none',
        ...(c.username ? { auth: { user: c.username, pass: await this.#password() } } : {}),
        connectionTimeout: 15_000,
        greetingTimeout: 15_000,
        socketTimeout: 30_000,
      });
      await this.#transport.sendMail({ from: c.from, to: [...c.to], subject: item.mail.subject, text: item.mail.text });
      this.#queue.shift();
      this.log.info({ kind: item.mail.kind, subject: item.mail.subject, to: c.to }, 'notification mail sent');
      this.safeEmit('mail', item.mail.kind, true);
    } catch (err) {
      this.#transport?.close();
      this.#transport = null;
      if (Date.now() - item.since > GIVE_UP_MS) {
        this.#queue.shift();
        this.log.error({ err, kind: item.mail.kind, subject: item.mail.subject }, 'notification mail given up after a day of failures');
        this.safeEmit('mail', item.mail.kind, false);
        return;
      }
      const waitMs = backoffMs(item.attempt++, RETRY.baseMs, RETRY.maxMs);
      this.log.warn({ err, kind: item.mail.kind, attempt: item.attempt, retryInMs: waitMs }, 'notification mail not sent; retrying');
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#pump();
      }, waitMs);
      this.#timer.unref();
    }
  }

  async #password(): Promise<string> {
    const file = this.#config.passwordFile;
    return file ? firstLine(file, 'SMTP password file') : '';
  }
}
