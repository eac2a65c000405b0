import { CallvaultError } from '../errors.js';

/**
 * Where a recording goes on a storage target: a template such as
 * `Record-$Y_$M_$D/$h$m$s-$caller` (the form PBX recording modules use),
 * expanded from the recording's start time in a time zone and its index
 * entry. `/` nests directories. Every substituted value is made safe for the
 * target's naming rules, and the literal parts are checked when the config
 * is loaded, so neither a template nor a caller-supplied number can reach
 * outside the target's root: no `..`, no absolute path, no control
 * character, no Windows device name, nothing a target forbids.
 */

/** The fields a template may use. */
export interface TemplateFields {
  readonly recordingId: string;
  /** ISO 8601. */
  readonly startedAt: string;
  readonly profile: string;
  readonly direction: string;
  readonly caller: string;
  readonly callee: string;
}

/** Naming rules of a kind of target: POSIX file systems and object keys, Windows shares, OneDrive. */
export type NameRules = 'posix' | 'windows' | 'onedrive';

export const DEFAULT_TEMPLATE = 'recordings/$Y/$M/$D/$id';

const TOKENS = ['$Y', '$M', '$D', '$h', '$m', '$s', '$id', '$profile', '$direction', '$caller', '$callee'] as const;
type Token = (typeof TOKENS)[number];
/** Longest first, so `$id` is not read as `$i…`; `$M` (month) and `$m` (minute) differ by case. */
const TOKEN = /\$(profile|direction|caller|callee|id|Y|M|D|h|m|s)/g;

const MAX_SEGMENT = 255;
const MAX_VALUE = 100;
/** OneDrive's limit for a whole path; others are far above what a recording needs. */
const MAX_PATH: Readonly<Record<NameRules, number>> = { posix: 1024, windows: 1024, onedrive: 400 };
const DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;
const FORBIDDEN: Readonly<Record<NameRules, RegExp>> = {
  posix: /[/\\]/g,
  windows: /[/\\:<>"?*|]/g,
  onedrive: /[/\\:<>"?*|#%]/g,
};
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed.
const CONTROL = /[\u0000-\u001f\u007f]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused.
const HAS_CONTROL = /[\u0000-\u001f\u007f]/;

/** A template the config may hold: only known tokens, no empty, `.` or `..` segment, nothing absolute. */
export function checkTemplate(template: string): string | null {
  if (!template.trim()) return 'is empty';
  if (template.startsWith('/') || template.startsWith('\\') || /^[a-zA-Z]:/.test(template)) return 'must be relative to the target';
  if (HAS_CONTROL.test(template)) return 'contains control characters';
  for (const unknown of template.match(/\$[a-zA-Z]+/g) ?? []) {
    if (!(TOKENS as readonly string[]).some((t) => unknown.startsWith(t)))
      return `has an unknown placeholder ${unknown} (known: ${TOKENS.join(' ')})`;
  }
  for (const segment of template.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') return `has an empty, "." or ".." directory (${JSON.stringify(template)})`;
  }
  if (!template.includes('$id')) return 'must contain $id, so two recordings never share a place';
  return null;
}

/** The template's relative path for one recording (segments joined by `/`). */
export function expandTemplate(template: string, fields: TemplateFields, timeZone: string, rules: NameRules): string {
  const problem = checkTemplate(template);
  if (problem) throw new CallvaultError('BAD_TEMPLATE', `path template ${problem}`, { template });
  const time = timeParts(new Date(fields.startedAt), timeZone);
  const value: Record<Token, string> = {
    $Y: time.year,
    $M: time.month,
    $D: time.day,
    $h: time.hour,
    $m: time.minute,
    $s: time.second,
    $id: fields.recordingId,
    $profile: fields.profile,
    $direction: fields.direction,
    $caller: fields.caller,
    $callee: fields.callee,
  };
  const segments = template.split('/').map((segment) =>
    safeSegment(
      segment.replace(TOKEN, (t) => clean(value[t as Token], rules)),
      rules,
    ),
  );
  const out = segments.join('/');
  if (out.length > MAX_PATH[rules])
    throw new CallvaultError('PATH_TOO_LONG', `the path ${out.slice(0, 60)}… is ${out.length} characters, over ${MAX_PATH[rules]}`, { template });
  return out;
}

/** A substituted value: no separator, no control or forbidden character, at most MAX_VALUE characters (a hostile caller id cannot make a path too long to store). */
function clean(v: string, rules: NameRules): string {
  return v.replace(CONTROL, '').replace(FORBIDDEN[rules], '_').slice(0, MAX_VALUE);
}

/** A whole directory or file name after substitution: never `.`/`..`, empty, a device name, or a name the target refuses. */
function safeSegment(s: string, rules: NameRules): string {
  let out = s.slice(0, MAX_SEGMENT);
  if (rules !== 'posix') out = out.replace(/[. ]+$/, (m) => '_'.repeat(m.length));
  if (rules === 'onedrive') out = out.replace(/^[ ~]/, '_');
  if (out === '' || /^\.+$/.test(out)) return out.replace(/\./g, '_') || '_';
  if (rules !== 'posix' && DEVICE.test(out)) return `_${out}`;
  return out;
}

function timeParts(d: Date, timeZone: string): Record<'year' | 'month' | 'day' | 'hour' | 'minute' | 'second', string> {
  const fmt = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
  const parts = Object.fromEntries(fmt.formatToParts(d).map((p) => [p.type, p.value]));
  return { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour!, minute: parts.minute!, second: parts.second! };
}

/** Whether a time zone name is one this runtime knows (config validation). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
