import type { StageRunner } from '../archive/StageRunner.js';
import type { NotificationsConfig } from '../config/Config.js';
import type { KekStatus } from '../keys/kek/KekMonitor.js';
import type { Logger } from '../log.js';
import { FailureAlerts } from './FailureAlerts.js';
import { Mailer, type Mail } from './Mailer.js';

const TICK_MS = 5000;

/**
 * What the operator is told by mail: storage targets and sealing that start
 * failing, keep failing (a digest at most every `digestSeconds`) and work
 * again; the KEK nearing the end of its cryptoperiod. It listens to the
 * archive runner's observer, so nothing it does can change the pipeline.
 */
export class Notifier {
  readonly mailer: Mailer;
  #targets: FailureAlerts;
  #sealing: FailureAlerts;
  readonly #timer: NodeJS.Timeout;

  constructor(config: NotificationsConfig, log: Logger) {
    this.mailer = new Mailer(config.mail, log);
    [this.#targets, this.#sealing] = alertsFor(config);
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
  }

  configure(config: NotificationsConfig): void {
    this.mailer.configure(config.mail);
    // Failures under way keep their state only until the next change of settings: a fresh start mails again if still failing.
    [this.#targets, this.#sealing] = alertsFor(config);
  }

  observe(runner: StageRunner): void {
    runner.observer.on('failed', (stage, lane, recordingId, _action, _code, error) => {
      const now = Date.now();
      if (stage === 'upload') this.#send(this.#targets.failed(lane, recordingId, error, now));
      else if (stage === 'seal') this.#send(this.#sealing.failed('seal', recordingId, error, now));
    });
    runner.observer.on('done', (stage, lane) => {
      const now = Date.now();
      if (stage === 'upload') this.#send(this.#targets.succeeded(lane, now));
      else if (stage === 'seal') this.#send(this.#sealing.succeeded('seal', now));
    });
  }

  /** The daily KEK check found the current KEK in its warning window (or past it). */
  kekExpiry(s: KekStatus): void {
    const days = Math.floor(s.secondsLeft / 86_400);
    this.#send({
      kind: 'kek-expiry',
      subject: `[callvault] KEK ${s.kek.id} ${s.secondsLeft > 0 ? `ends its cryptoperiod in ${days} days` : 'is past its cryptoperiod'}`,
      text: `The key-encryption key ${s.kek.id} (SHA-256 ${s.kek.fingerprintSha256}) ${s.secondsLeft > 0 ? 'reaches' : 'reached'} the end of its cryptoperiod at ${s.expiresAt.toISOString()}. Recording continues under it; two custodians should run \`callvault keys rotate\`.\n`,
    });
  }

  close(): void {
    clearInterval(this.#timer);
    this.mailer.close();
  }

  #tick(): void {
    const now = Date.now();
    for (const m of [...this.#targets.tick(now), ...this.#sealing.tick(now)]) this.#send(m);
  }

  #send(mail: Mail | null): void {
    if (mail) this.mailer.send(mail);
  }
}

function alertsFor(config: NotificationsConfig): [FailureAlerts, FailureAlerts] {
  const digestMs = config.digestSeconds * 1000;
  return [new FailureAlerts((t) => `storage target ${t}`, 'target', digestMs), new FailureAlerts(() => 'sealing', 'seal', digestMs)];
}
