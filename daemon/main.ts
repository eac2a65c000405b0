#!/usr/bin/env node
/*
 * The callvault command. The Node.js version is checked before any other
 * module loads: on an older runtime a missing API would otherwise surface as
 * a stack trace from somewhere deep instead of this one line.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const engines = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }).engines.node;
const needed = Number(/\d+/.exec(engines)?.[0] ?? 0);
if (Number(process.versions.node.split('.')[0]) < needed) {
  process.stderr.write(
    `callvault: needs Node.js ${needed} or newer (package.json engines "${engines}"), this is ${process.version}: run bash scripts/setup.sh, then bin/callvault\n`,
  );
  process.exit(2);
}
// Private keys, data keys and passphrases pass through this process (and its
// mediasoup workers, which inherit the limit): no core file may ever hold them.
// Node has no setrlimit, so util-linux's prlimit lowers ours from outside.
spawnSync('prlimit', ['--pid', String(process.pid), '--core=0:0'], { stdio: 'ignore' });
await import('./cli/commands.js');
