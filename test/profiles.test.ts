import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText } from '../daemon/config/load.js';
import { ConfigError } from '../daemon/errors.js';
import { ProfileSet, retentionExpiry, type CallParties } from '../daemon/record/profiles.js';

const PROFILES = `
recording:
  channelMode: stereo
storage:
  archive:
    type: directory
    path: ./archive
profiles:
  - name: private-lines
    match:
      numbers: ["+4930123499"]
    record: false
  - name: fx-desk
    match:
      direction: [inbound, outbound]
      groups: [fx]
      memberCalls: true
    channelMode: separate
    storage: [archive]
    retention: 7y
  - name: ceo
    match:
      users: [ceo]
  - name: frankfurt
    match:
      callerNumbers: ["/^\\\\+4969[0-9]+$/"]
      calleeNumbers: ["+49*", "0??"]
    retention: 2555d
`;

function decide(call: Partial<CallParties> & { caller?: CallParties['caller']; callee?: CallParties['callee'] }): string {
  const c = parseConfigText(PROFILES, '/etc/callvault/p.yaml');
  const d = ProfileSet.compile(c).profiles.decide({
    direction: 'inbound',
    caller: { number: '+4930555' },
    callee: { number: '+4940666' },
    ...call,
  });
  return d.record ? `${d.policy.profile.name}:${d.policy.channelMode}` : `not:${d.profile ?? '-'}`;
}

test('profiles: the first match wins; an exclusion placed first keeps a call out of broader profiles', () => {
  // Matches private-lines (by callee) and fx-desk (by group): never recorded.
  assert.equal(decide({ callee: { number: '+4930123499' }, group: 'fx' }), 'not:private-lines');
  assert.equal(decide({ group: 'fx' }), 'fx-desk:separate');
  // fx-desk precedes ceo: the CEO on an fx call is recorded once, by fx-desk.
  assert.equal(decide({ group: 'fx', caller: { number: '+4930555', user: 'ceo' } }), 'fx-desk:separate');
  assert.equal(decide({ caller: { number: '+4930555', user: 'ceo' } }), 'ceo:stereo');
  assert.equal(decide({}), 'not:-', 'no profile matches: not recorded');
});

test('profiles: direction, group members, number patterns (exact, glob, regex) and users', () => {
  assert.equal(decide({ direction: 'internal', group: 'fx' }), 'not:-', 'fx-desk takes inbound and outbound only');
  assert.equal(decide({ callee: { number: '+4940666', groups: ['fx', 'sales'] } }), 'fx-desk:separate', 'a direct call to an active member');
  assert.equal(decide({ caller: { number: '+4930555', groups: ['sales'] } }), 'not:-');
  assert.equal(decide({ caller: { number: '+49691234' }, callee: { number: '+4940666' } }), 'frankfurt:stereo');
  assert.equal(decide({ caller: { number: '+49691234' }, callee: { number: '012' } }), 'frankfurt:stereo', '? is one character');
  assert.equal(decide({ caller: { number: '+49691234' }, callee: { number: '0123' } }), 'not:-');
  assert.equal(decide({ caller: { number: '+4969x' }, callee: { number: '+4940666' } }), 'not:-', 'the regex is anchored');
  assert.equal(decide({ caller: { number: '+4930555', user: 'ceo-assistant' } }), 'not:-', 'users are exact');
});

test('profiles: the default is one profile that records every call in recording.channelMode', () => {
  const c = parseConfigText('recording:\n  channelMode: callee\n', '/x.yaml');
  assert.deepEqual(c.profiles, [
    {
      name: 'default',
      match: { memberCalls: false },
      record: true,
      channelMode: null,
      storage: [],
      removeLocalAfterUpload: false,
      encryption: false,
      retention: null,
      dtmfDigits: 'discard',
    },
  ]);
  const d = ProfileSet.compile(c).profiles.decide({ direction: 'internal', caller: { number: '1' }, callee: { number: '2' } });
  assert.ok(d.record);
  assert.deepEqual(d.policy, {
    channelMode: 'callee',
    profile: { name: 'default', storage: [], encryption: false, retention: null, dtmfDigits: 'discard' },
  });
});

test('profiles: config errors name the path and line (duplicate name, unknown target, bad regex, bad retention, memberCalls alone)', () => {
  const yaml = [
    'profiles:', // 1
    '  - name: a', // 2
    '    storage: [nas]', // 3
    '    match:', // 4
    '      numbers: ["/([/"]', // 5
    '  - name: a', // 6
    '    retention: 5 years', // 7
    '    match:', // 8
    '      memberCalls: true', // 9
    '',
  ].join('\n');
  let problems: string[] = [];
  try {
    parseConfigText(yaml, '/p.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    problems = err.problems.map((p) => `${p.line}:${p.path}: ${p.message}`);
  }
  assert.deepEqual(
    problems,
    ['7:profiles.1.retention: got "5 years"; allowed: string or null matching ^[1-9][0-9]{0,5}[dwy]$'],
    'schema problems come first',
  );
  try {
    parseConfigText(yaml.replace('5 years', '5y'), '/p.yaml');
    assert.fail('expected a ConfigError');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    problems = err.problems.map((p) => `${p.line}:${p.path}: ${p.message}`);
  }
  assert.equal(problems.length, 4, problems.join('\n'));
  assert.equal(problems[0], '3:profiles.0.storage.0: no storage target "nas"; defined: none (add it under storage:)');
  assert.match(problems[1]!, /^5:profiles\.0\.match\.numbers\.0: not a valid regular expression: /);
  assert.equal(problems[2], '6:profiles.1.name: duplicate profile name "a" (also profiles.0)');
  assert.equal(problems[3], '9:profiles.1.match.memberCalls: needs match.groups: member of which groups?');
  assert.throws(
    () => parseConfigText('profiles: []\n', '/p.yaml'),
    (err: ConfigError) => err.problems[0]!.message === '0 items; allowed: array with at least 1 item',
  );
  assert.throws(
    () => parseConfigText('storage:\n  "bad name":\n    type: directory\n    path: /x\n', '/p.yaml'),
    (err: ConfigError) => err.problems[0]!.path === 'storage.bad name',
  );
});

test('retention: years are calendar years; days and weeks are exact', () => {
  const start = new Date('2024-02-29T10:00:00Z');
  assert.equal(retentionExpiry(start, '1y').toISOString(), '2025-03-01T10:00:00.000Z');
  assert.equal(retentionExpiry(new Date('2020-01-01T00:00:00Z'), '5y').toISOString(), '2025-01-01T00:00:00.000Z');
  assert.equal(retentionExpiry(start, '2w').toISOString(), '2024-03-14T10:00:00.000Z');
  assert.equal(retentionExpiry(start, '1d').toISOString(), '2024-03-01T10:00:00.000Z');
  assert.throws(() => retentionExpiry(start, '5 years'), /bad retention/);
});

test('profiles: dtmfDigits encrypted needs encryption: the keys pressed are never kept in the clear', () => {
  const yaml = 'profiles:\n  - name: ivr\n    dtmfDigits: encrypted\n';
  assert.throws(
    () => parseConfigText(yaml, '/p.yaml'),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.problems.some((p) => p.path === 'profiles.0.dtmfDigits' && p.line === 3 && /needs encryption: true/.test(p.message)),
  );
  assert.equal(parseConfigText(`${yaml}    encryption: true\n`, '/p.yaml').profiles[0]!.dtmfDigits, 'encrypted');
});
