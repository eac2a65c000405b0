import { CallvaultError } from '../errors.js';

/** Exit codes every command shares. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/**
 * Run a command body: its result is the exit code; an expected error
 * (bad config, missing key, unreadable file) is one clear line on stderr and exit 2.
 */
export async function runCommand(body: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await body();
  } catch (err) {
    if (err instanceof CallvaultError || (err as NodeJS.ErrnoException).code) {
      process.stderr.write(`callvault: ${(err as Error).message}\n`);
      process.exitCode = EXIT.usage;
      return;
    }
    // Never a stack trace and the usage text for a failure that is not the user's typing.
    const message = String((err as Error)?.message ?? err).split('\n')[0];
    const store = /MDB_|msgpack|end of buffer|Unexpected end|Data read/i.test(message);
    process.stderr.write(
      store
        ? `callvault: the index or audit log could not be read (${message}); stop the daemon and rebuild the index with \`callvault reindex\`\n`
        : `callvault: unexpected error: ${message}\n`,
    );
    process.exitCode = EXIT.failed;
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
