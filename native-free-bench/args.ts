/** The benches' command line: `--name value` options and the `--check` gate. */
const argv = process.argv.slice(2);

export function numberOption(name: string, dflt: number): number {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
}

/** A number, `none` for null, undefined when not given. */
export function optionalNumber(name: string): number | null | undefined {
  const v = stringOption(name);
  return v === undefined ? undefined : v === 'none' ? null : Number(v);
}

export function stringOption(name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** `--law PCMU|PCMA`, PCMU by default. */
export function lawOption(): 'PCMU' | 'PCMA' {
  const law = stringOption('law') ?? 'PCMU';
  if (law !== 'PCMU' && law !== 'PCMA') throw new Error(`--law must be PCMU or PCMA, not ${law}`);
  return law;
}

export const flag = (name: string): boolean => argv.includes(`--${name}`);

export const check = flag('check');
