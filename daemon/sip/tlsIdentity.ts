import { readFile } from 'node:fs/promises';
import { CallvaultError } from '../errors.js';

/** The certificate chain and key SIP over TLS presents, read once at start (a clear error names an unreadable file). */
export async function readTlsIdentity(certFile: string, keyFile: string): Promise<{ cert: string; key: string }> {
  const read = (file: string, key: string) =>
    readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new CallvaultError('SIP_TLS_UNREADABLE', `cannot read sip.tls.${key} ${file}: ${err.code ?? String(err)}`, { file });
    });
  const [cert, key] = await Promise.all([read(certFile, 'certFile'), read(keyFile, 'keyFile')]);
  return { cert, key };
}
