/** The benches' command line: `--name N` numeric options and the `--check` gate. */
const argv = process.argv.slice(2);

export function numberOption(name: string, dflt: number): number {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
}

export const check = argv.includes('--check');
