#!/usr/bin/env node
/*
 * The callvault command. The Node.js version is checked before any other
 * module loads: on an older runtime a missing API would otherwise surface as
 * a stack trace from somewhere deep instead of this one line.
 */
import { readFileSync } from 'node:fs';

const engines = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }).engines.node;
const needed = Number(/\d+/.exec(engines)?.[0] ?? 0);
if (Number(process.versions.node.split('.')[0]) < needed) {
  process.stderr.write(`callvault: needs Node.js ${needed} or newer (package.json engines "${engines}"), this is ${process.version}: run bash scripts/setup.sh, then bin/callvault\n`);
  process.exit(2);
}
await import('./cli/commands.js');
