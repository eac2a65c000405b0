import { execFileSync } from 'node:child_process';

/** A self-signed certificate and its key made by Debian's openssl (RSA 2048, no passphrase). */
export function selfSigned(keyFile: string, certFile: string, subject: string, days = 2, subjectAltName?: string): void {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      String(days),
      '-subj',
      subject,
      ...(subjectAltName ? ['-addext', `subjectAltName=${subjectAltName}`] : []),
    ],
    {
      stdio: 'ignore',
    },
  );
}
