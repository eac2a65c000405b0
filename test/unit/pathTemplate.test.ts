import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { smbDest } from '../../daemon/upload/SmbTarget.js';
import { checkTemplate, DEFAULT_TEMPLATE, expandTemplate, type NameRules, type TemplateFields } from '../../daemon/upload/pathTemplate.js';

const rec: TemplateFields = {
  recordingId: '01a2321bfe100abaf76426',
  startedAt: '2026-12-01T23:30:05.000Z',
  profile: 'fx-desk',
  direction: 'inbound',
  caller: '+4930123456',
  callee: '+4989654321',
};

describe('storage path templates', () => {
  test('the tokens of the PBX modules, from the start time in the configured zone', () => {
    assert.equal(expandTemplate(DEFAULT_TEMPLATE, rec, 'UTC', 'posix'), 'recordings/2026/12/01/01a2321bfe100abaf76426');
    assert.equal(expandTemplate('Record-$Y_$M_$D_$h_$m_$s/$id', rec, 'UTC', 'windows'), 'Record-2026_12_01_23_30_05/01a2321bfe100abaf76426');
    // 23:30 UTC is 00:30 the next day in Berlin: the day changes with the zone.
    assert.equal(
      expandTemplate('$Y-$M-$D/$h$m/$profile/$direction/$caller-$callee-$id', rec, 'Europe/Berlin', 'posix'),
      '2026-12-02/0030/fx-desk/inbound/+4930123456-+4989654321-01a2321bfe100abaf76426',
    );
  });

  test('templates that could escape or collide are refused when the config is read', () => {
    for (const [t, why] of [
      ['/abs/$id', /relative/],
      ['C:/x/$id', /relative/],
      ['a/../$id', /"\.\."/],
      ['a//$id', /empty/],
      ['$Y/$M', /\$id/],
      ['$id/$nope', /unknown placeholder \$nope/],
      ['a\u0000/$id', /control/],
    ] as const) {
      assert.match(checkTemplate(t) ?? 'accepted', why, t);
    }
    assert.equal(checkTemplate(DEFAULT_TEMPLATE), null);
  });

  test('hostile values (../, /etc, NUL, CON, 300-character numbers) never leave the target root, whatever the rules', () => {
    const hostile = [
      '../../etc',
      '/etc/passwd',
      'a\u0000b',
      'CON',
      'nul.txt',
      '..',
      '.',
      'x'.repeat(300),
      'trailing. ',
      '~home',
      'a:b*c?"d<e>f|g',
      '%2e%2e',
    ];
    for (const rules of ['posix', 'windows', 'onedrive'] as NameRules[]) {
      for (const v of hostile) {
        const out = expandTemplate('$caller/$callee/$id', { ...rec, caller: v, callee: v }, 'UTC', rules);
        const segments = out.split('/');
        assert.equal(segments.length, 3, `${rules} ${JSON.stringify(v)} → ${out}: one directory per template segment`);
        for (const s of segments) {
          assert.ok(s !== '' && s !== '.' && s !== '..', `${rules} ${JSON.stringify(v)}: segment ${JSON.stringify(s)}`);
          assert.ok(![...s].some((c) => c.charCodeAt(0) < 0x20 || c === '\\'), `${rules}: no control character or backslash in ${JSON.stringify(s)}`);
          assert.ok(s.length <= 255);
          if (rules !== 'posix') {
            assert.ok(!/^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$/i.test(s), `${rules}: device name ${s}`);
            assert.ok(!/[:<>"?*|]/.test(s) && !/[. ]$/.test(s), `${rules}: forbidden in ${JSON.stringify(s)}`);
          }
          if (rules === 'onedrive') assert.ok(!/^[~ ]/.test(s) && !/[#%]/.test(s), `onedrive: ${JSON.stringify(s)}`);
        }
      }
    }
  });

  test('an SMB path never carries what would break out of an smbclient command (; splits commands, " ends a quote)', () => {
    const out = smbDest({ path: 'calls', template: '$caller/$id', timeZone: 'UTC' }, { ...rec, caller: 'x"; deltree \\; y' });
    assert.ok(!/[";]/.test(out), out);
    assert.equal(out.split('/').length, 3);
  });
});
