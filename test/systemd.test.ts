import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './support/daemon.js';

const UNIT = path.join(ROOT, 'systemd/callvault.service');

test('systemd unit: systemd-analyze verify passes and security rates it 2.0 or lower', async () => {
  const verify = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
  assert.equal(verify.status, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), '', 'no warnings');
  const sec = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', UNIT], { encoding: 'utf8' });
  const m = /Overall exposure level for callvault\.service: (\d+\.\d+) (\S+)/.exec(sec.stdout);
  assert.ok(m, sec.stdout + sec.stderr);
  assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]} ${m[2]}`);
  const unit = await readFile(UNIT, 'utf8');
  for (const line of [
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
    'StateDirectory=callvault',
    'ConfigurationDirectory=callvault',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    'SystemCallFilter=@system-service',
    'CapabilityBoundingSet=',
  ]) {
    assert.ok(unit.split('\n').includes(line), `unit has ${line}`);
  }
  assert.match(unit, /^LoadCredential=signing-passphrase:/m);
  assert.match(unit, /^LimitNOFILE=\d+/m);
  assert.match(unit, /^LimitCORE=0$/m, 'no core dumps of a process holding keys');
  assert.match(unit, /^User=callvault$/m);
});
