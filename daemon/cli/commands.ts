import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { certCommand } from './cert.js';
import { configCommand } from './config.js';
import { daemonCommand } from './daemon.js';
import { auditCommand } from './audit.js';
import { holdCommand } from './hold.js';
import { recordingsCommand } from './recordings.js';
import { reindexCommand } from './reindex.js';
import { retentionCommand } from './retention.js';
import { verifyCommand } from './verify.js';
import { exportCommand } from './export.js';
import { keysCommand } from './keys.js';
import { lkmCommand } from './lkm.js';
import { storageCommand } from './storage.js';
import { uploadsCommand } from './uploads.js';

await yargs(hideBin(process.argv))
  .scriptName('callvault')
  .command(daemonCommand)
  .command(verifyCommand)
  .command(certCommand)
  .command(configCommand)
  .command(recordingsCommand)
  .command(reindexCommand)
  .command(auditCommand)
  .command(retentionCommand)
  .command(holdCommand)
  .command(keysCommand)
  .command(exportCommand)
  .command(lkmCommand)
  .command(uploadsCommand)
  .command(storageCommand)
  .demandCommand(1, 'name a command')
  .strict()
  .help()
  .parseAsync();
