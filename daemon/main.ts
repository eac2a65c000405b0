#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { daemonCommand } from './cli/daemon.js';

await yargs(hideBin(process.argv))
  .scriptName('callvault')
  .command(daemonCommand)
  .demandCommand(1, 'name a command')
  .strict()
  .help()
  .parseAsync();
