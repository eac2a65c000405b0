import { SMTPServer } from 'smtp-server';

export interface CapturedMail {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
}

export interface SmtpCapture {
  readonly mails: CapturedMail[];
  listen(): Promise<void>;
  /** The first mail whose subject matches, waiting up to `ms`. */
  waitMail(re: RegExp, ms: number): Promise<CapturedMail | undefined>;
  count(re: RegExp): number;
  close(): Promise<void>;
}

/** A real SMTP server (smtp-server from npm) on 127.0.0.1:port that keeps every mail it is given. */
export function captureSmtp(port: number): SmtpCapture {
  const mails: CapturedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, cb) {
      let raw = '';
      stream.on('data', (c: Buffer) => (raw += c.toString()));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), subject: /^Subject: (.*)$/m.exec(raw)?.[1] ?? '', text: raw });
        cb();
      });
    },
  });
  return {
    mails,
    listen: () => new Promise<void>((r) => server.listen(port, '127.0.0.1', r)),
    waitMail: async (re, ms) => {
      for (let t = 0; t < ms && !mails.some((m) => re.test(m.subject)); t += 100) await new Promise((r) => setTimeout(r, 100));
      return mails.find((m) => re.test(m.subject));
    },
    count: (re) => mails.filter((m) => re.test(m.subject)).length,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The notifications block of a test config mailing ops@test.example through 127.0.0.1:port. */
export function mailConfigYaml(port: number, digestSeconds = 3600): string {
  return `notifications:\n  mail:\n    host: 127.0.0.1\n    port: ${port}\n    security: none\n    from: callvault@test.example\n    to: [ops@test.example]\n  digestSeconds: ${digestSeconds}\n`;
}
