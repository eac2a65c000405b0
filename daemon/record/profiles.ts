import type { ChannelMode, Config, Direction, DtmfDigits, ProfileConfig } from '../config/Config.js';
import { CallvaultError, type ConfigProblem } from '../errors.js';

/** What the call-start request says about a call, as far as profiles care. */
export interface CallParties {
  readonly direction: Direction;
  readonly caller: PartyInfo;
  readonly callee: PartyInfo;
  /** The hunt group or queue the call was routed through, if any. */
  readonly group?: string | undefined;
}

export interface PartyInfo {
  readonly number: string;
  readonly user?: string | undefined;
  /** Groups the party is an active member of right now. */
  readonly groups?: readonly string[] | undefined;
}

/**
 * What a profile promises about a recording (where it is archived, whether it
 * is encrypted, how long it is kept), fixed when the call starts and stored in
 * its metadata: a reload or a later edit of the profile never changes what
 * happens to a recording already made.
 */
export interface ProfileTerms {
  readonly name: string;
  readonly storage: readonly string[];
  readonly encryption: boolean;
  /** As configured (`5y`), or null = kept until deleted by hand. */
  readonly retention: string | null;
  /** Absent in recordings made before it was kept: discard. */
  readonly dtmfDigits?: DtmfDigits;
  /** Remove the local audio once every storage target holds a verified copy. Absent: keep it. */
  readonly removeLocalAfterUpload?: boolean;
}

export interface RecordingPolicy {
  readonly channelMode: ChannelMode;
  readonly profile: ProfileTerms;
}

export type ProfileDecision =
  | { readonly record: true; readonly policy: RecordingPolicy }
  | { readonly record: false; readonly profile: string | null };

type Matcher = (call: CallParties) => boolean;

const DAY_MS = 86_400_000;

/**
 * When a recording started at `start` may be deleted under retention `spec`
 * (`2555d`, `260w`, `7y`). Years are calendar years, so `5y` is never a day
 * short of five years whatever the leap days.
 */
export function retentionExpiry(start: Date, spec: string): Date {
  const m = /^([1-9][0-9]{0,5})([dwy])$/.exec(spec);
  if (!m) throw new CallvaultError('BAD_RETENTION', `bad retention ${JSON.stringify(spec)}: expected a number and d, w or y`, { retention: spec });
  const n = Number(m[1]);
  if (m[2] === 'y') {
    const d = new Date(start);
    d.setUTCFullYear(d.getUTCFullYear() + n);
    return d;
  }
  return new Date(start.getTime() + n * (m[2] === 'w' ? 7 : 1) * DAY_MS);
}

/** Exact, glob (`*`, `?`) or `/regex/`; throws with the reason when a regex does not compile. */
function numberPattern(pattern: string): (n: string) => boolean {
  const re = /^\/(.+)\/$/.exec(pattern);
  if (re) {
    const compiled = new RegExp(re[1] as string);
    return (n) => compiled.test(n);
  }
  if (!/[*?]/.test(pattern)) return (n) => n === pattern;
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  const compiled = new RegExp(`^${source}$`);
  return (n) => compiled.test(n);
}

function anyOf(tests: ((n: string) => boolean)[]): (n: string) => boolean {
  return (n) => tests.some((t) => t(n));
}

function compileMatch(p: ProfileConfig, at: string, problems: ConfigProblem[]): Matcher {
  const m = p.match;
  const checks: Matcher[] = [];
  const patterns = (key: 'numbers' | 'callerNumbers' | 'calleeNumbers'): ((n: string) => boolean) | undefined => {
    const list = m[key];
    if (!list) return undefined;
    const tests: ((n: string) => boolean)[] = [];
    list.forEach((pattern, i) => {
      try {
        tests.push(numberPattern(pattern));
      } catch (err) {
        problems.push({ path: `${at}.match.${key}.${i}`, message: `not a valid regular expression: ${(err as Error).message}` });
      }
    });
    return anyOf(tests);
  };
  if (m.direction) {
    const dirs = new Set(m.direction);
    checks.push((c) => dirs.has(c.direction));
  }
  const either = patterns('numbers');
  if (either) checks.push((c) => either(c.caller.number) || either(c.callee.number));
  const caller = patterns('callerNumbers');
  if (caller) checks.push((c) => caller(c.caller.number));
  const callee = patterns('calleeNumbers');
  if (callee) checks.push((c) => callee(c.callee.number));
  if (m.users) {
    const users = new Set(m.users);
    checks.push((c) => [c.caller.user, c.callee.user].some((u) => u !== undefined && users.has(u)));
  }
  if (m.groups) {
    const groups = new Set(m.groups);
    const member = (party: PartyInfo) => (party.groups ?? []).some((g) => groups.has(g));
    checks.push((c) => (c.group !== undefined && groups.has(c.group)) || (m.memberCalls && (member(c.caller) || member(c.callee))));
  } else if (m.memberCalls) {
    problems.push({ path: `${at}.match.memberCalls`, message: 'needs match.groups: member of which groups?' });
  }
  return (c) => checks.every((check) => check(c));
}

/**
 * The ordered profile list, ready to decide calls. Built from a validated
 * config; `problems` lists what the schema cannot express (duplicate names,
 * unknown storage targets, regular expressions that do not compile).
 */
export class ProfileSet {
  private constructor(
    private readonly entries: readonly { readonly config: ProfileConfig; readonly matches: Matcher; readonly policy: RecordingPolicy }[],
  ) {}

  static compile(config: Pick<Config, 'profiles' | 'storage' | 'recording'>): { profiles: ProfileSet; problems: ConfigProblem[] } {
    const problems: ConfigProblem[] = [];
    const seen = new Map<string, number>();
    const entries = config.profiles.map((p, i) => {
      const at = `profiles.${i}`;
      const first = seen.get(p.name);
      if (first !== undefined)
        problems.push({ path: `${at}.name`, message: `duplicate profile name ${JSON.stringify(p.name)} (also profiles.${first})` });
      seen.set(p.name, i);
      if (p.dtmfDigits === 'encrypted' && !p.encryption)
        problems.push({ path: `${at}.dtmfDigits`, message: 'encrypted needs encryption: true: the keys pressed are kept only in an envelope' });
      if (p.removeLocalAfterUpload && !p.storage.length)
        problems.push({
          path: `${at}.removeLocalAfterUpload`,
          message: 'needs storage: the local audio goes only once a target holds a verified copy',
        });
      p.storage.forEach((target, j) => {
        if (!Object.hasOwn(config.storage, target)) {
          const known = Object.keys(config.storage);
          problems.push({
            path: `${at}.storage.${j}`,
            message: `no storage target ${JSON.stringify(target)}; defined: ${known.length ? known.join(', ') : 'none (add it under storage:)'}`,
          });
        }
      });
      const policy: RecordingPolicy = {
        channelMode: p.channelMode ?? config.recording.channelMode,
        profile: {
          name: p.name,
          storage: p.storage,
          encryption: p.encryption,
          retention: p.retention,
          dtmfDigits: p.dtmfDigits,
          ...(p.removeLocalAfterUpload ? { removeLocalAfterUpload: true } : {}),
        },
      };
      return { config: p, matches: compileMatch(p, at, problems), policy };
    });
    return { profiles: new ProfileSet(entries), problems };
  }

  /** First match wins; a call no profile matches is not recorded. */
  decide(call: CallParties): ProfileDecision {
    const hit = this.entries.find((e) => e.matches(call));
    if (!hit) return { record: false, profile: null };
    return hit.config.record ? { record: true, policy: hit.policy } : { record: false, profile: hit.config.name };
  }
}
