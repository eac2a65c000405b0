#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { certCommand } from './cli/cert.js';
import { configCommand } from './cli/config.js';
import { daemonCommand } from './cli/daemon.js';
import { verifyCommand } from './cli/verify.js';

await yargs(hideBin(process.argv))
  .scriptName('callvault')
  .command(daemonCommand)
  .command(verifyCommand)
  .command(certCommand)
  .command(configCommand)
  .demandCommand(1, 'name a command')
  .strict()
  .help()
  .parseAsync();
