/**
 * V8 flags for every process that carries calls (the daemon, started by bin/callvault, and its media
 * shards, which MediaShard forks with them). Under 50,000 packets/s V8 grows the young generation to
 * 16 MB semi-spaces and keeps them: at 500 calls that was ~240 KB of RSS a call and RSS still climbing
 * after two minutes. The garbage of a packet dies at once, so 4 MB semi-spaces scavenge it as well, for
 * about 2 % more CPU a packet; 2 MB cost 13 % (README, Performance, "Memory per call").
 * The little that lives a few scavenges (write promises, reports) is promoted and piles up in the old
 * generation until the next full collection; letting it grow 10 % past what is live, instead of V8's
 * own factor (up to 4 ×), kept a shard's heap 5 MB smaller at 500 calls, at no CPU measurable.
 */
export const HEAP_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--heap-growing-percent=10'];

/** `execArgv` with HEAP_FLAGS added where it does not already set them. */
export function withHeapFlags(execArgv: readonly string[]): string[] {
  const name = (flag: string) => flag.split('=')[0];
  return [...execArgv, ...HEAP_FLAGS.filter((f) => !execArgv.some((a) => name(a) === name(f)))];
}
