#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { certCommand } from './cli/cert.js';
import { configCommand } from './cli/config.js';
import { daemonCommand } from './cli/daemon.js';
import { auditCommand } from './cli/audit.js';
import { holdCommand } from './cli/hold.js';
import { recordingsCommand } from './cli/recordings.js';
import { reindexCommand } from './cli/reindex.js';
import { retentionCommand } from './cli/retention.js';
import { verifyCommand } from './cli/verify.js';
import { exportCommand } from './cli/export.js';
import { keysCommand } from './cli/keys.js';
import { lkmCommand } from './cli/lkm.js';

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
  .demandCommand(1, 'name a command')
  .strict()
  .help()
  .parseAsync();
