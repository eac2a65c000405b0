import type { CommandModule } from 'yargs';
import { describeCertificate } from '../keys/certificate.js';
import { readInstanceCertificate } from '../keys/SigningIdentity.js';
import { instanceDataDir, withInstanceOptions, type InstanceArgs } from './options.js';
import { EXIT, printJson, runCommand } from './run.js';

interface CertArgs extends InstanceArgs {
  fingerprint: boolean;
  json: boolean;
}

export const certCommand: CommandModule<object, CertArgs> = {
  command: 'cert',
  describe: "Print the instance's signing certificate (PEM), its SHA-256 fingerprint, or both as JSON",
  builder: (y) =>
    withInstanceOptions(y)
      .option('fingerprint', {
        type: 'boolean',
        default: false,
        describe: 'print only the SHA-256 fingerprint (AA:BB:…, as openssl x509 -fingerprint -sha256 shows it)',
      })
      .option('json', { type: 'boolean', default: false, describe: 'subject, serial, validity, fingerprint and PEM as JSON' }),
  handler: (args) =>
    runCommand(async () => {
      const pem = await readInstanceCertificate(instanceDataDir(args));
      const info = describeCertificate(pem);
      if (args.json) printJson({ ...info, pem });
      else process.stdout.write(args.fingerprint ? `${info.fingerprintSha256}\n` : pem);
      return EXIT.ok;
    }),
};
