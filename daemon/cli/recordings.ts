import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { CallvaultError } from '../errors.js';
import { readMetadata } from '../record/metadata.js';
import { isRecordingId } from '../record/recordingId.js';
import { entryView, type EntryView } from '../archive/lifecycle.js';
import { parseQuery, runQuery } from '../store/RecordingQuery.js';
import { instanceDataDir, withInstanceOptions, type InstanceArgs } from './options.js';
import { EXIT, printJson, runCommand } from './run.js';
import { withStores } from './stores.js';

interface ListArgs extends InstanceArgs {
  number?: string;
  'call-id'?: string;
  from?: string;
  to?: string;
  state?: string;
  profile?: string;
  limit?: string;
  cursor?: string;
  json: boolean;
}

interface ShowArgs extends InstanceArgs {
  id: string;
  json: boolean;
}

function row(e: EntryView): string {
  const dur = e.durationMs === null ? '-' : `${(e.durationMs / 1000).toFixed(1)}s`;
  const hold = e.hold ? ' HOLD' : '';
  return `${e.recordingId}  ${e.startedAt}  ${dur.padStart(8)}  ${e.state.padEnd(10)} ${e.profile.padEnd(12)} ${e.caller.number} -> ${e.callee.number}${hold}`;
}

const list: CommandModule<InstanceArgs, ListArgs> = {
  command: 'list',
  describe: 'Search the index (number, time range, state, profile), oldest first, a page at a time',
  builder: (y: Argv<InstanceArgs>) =>
    y
      .option('number', { type: 'string', describe: 'either party, normalised like the index (+E.164, 00 → +)' })
      .option('call-id', { type: 'string', describe: 'the SIP Call-ID the PBX gave' })
      .option('from', { type: 'string', describe: 'started at or after (ISO 8601: 2026-03-01, 2026-03-01T09:00:00Z)' })
      .option('to', { type: 'string', describe: 'started before (ISO 8601)' })
      .option('state', { type: 'string', describe: 'recording, finalizing, sealed, encrypted, uploaded, failed, deleted' })
      .option('profile', { type: 'string', describe: 'recording profile name' })
      .option('limit', { type: 'string', describe: 'at most this many (default 100, max 10000)' })
      .option('cursor', { type: 'string', describe: 'continue after a previous page (its nextCursor)' })
      .option('json', { type: 'boolean', default: false, describe: '{"recordings": [...], "nextCursor"} on stdout' }) as Argv<ListArgs>,
  handler: (args) =>
    runCommand(async () => {
      const q = parseQuery({
        number: args.number,
        callId: args['call-id'],
        from: args.from,
        to: args.to,
        state: args.state,
        profile: args.profile,
        limit: args.limit,
        cursor: args.cursor,
      });
      return withStores(instanceDataDir(args), async ({ index }) => {
        const page = runQuery(index, q);
        if (args.json) printJson(page);
        else {
          for (const e of page.recordings) process.stdout.write(`${row(e)}\n`);
          process.stderr.write(`${page.recordings.length} recording(s)${page.nextCursor ? `; more: --cursor ${page.nextCursor}` : ''}\n`);
        }
        return EXIT.ok;
      });
    }),
};

const show: CommandModule<InstanceArgs, ShowArgs> = {
  command: 'show <id>',
  describe: 'One recording: its index entry, any deletion under way, and its metadata',
  builder: (y: Argv<InstanceArgs>) =>
    y.positional('id', { type: 'string', demandOption: true }).option('json', { type: 'boolean', default: false }) as Argv<ShowArgs>,
  handler: (args) =>
    runCommand(async () => {
      if (!isRecordingId(args.id)) throw new CallvaultError('BAD_ID', `${args.id} is not a recording id (22 hex digits)`);
      const dataDir = instanceDataDir(args);
      return withStores(dataDir, async ({ index }) => {
        const entry = index.get(args.id);
        if (!entry) throw new CallvaultError('NO_SUCH_RECORDING', `no recording ${args.id} in the index of ${dataDir}`);
        const job = index.jobs.find('delete', args.id);
        const deletion = job?.stage === 'delete' ? job.data : null;
        const metadata = entry.stage === 'deleted' ? null : await readMetadata(path.join(dataDir, entry.dir), args.id).catch(() => null);
        const view = entryView(entry);
        if (args.json) printJson({ ...view, deletionInProgress: deletion, metadata });
        else {
          process.stdout.write(`${row(view)}\n`);
          process.stdout.write(`${JSON.stringify({ ...view, deletionInProgress: deletion }, null, 2)}\n`);
          if (deletion)
            process.stderr.write(
              `deletion in progress since ${deletion.startedAt} (${deletion.reason}): files may be partly gone; the daemon or the next retention run finishes it\n`,
            );
        }
        return EXIT.ok;
      });
    }),
};

export const recordingsCommand: CommandModule<object, InstanceArgs> = {
  command: 'recordings <command>',
  describe: 'Search and show recordings in the index',
  builder: (y) => withInstanceOptions(y).command(list).command(show).demandCommand(1),
  handler: () => undefined,
};
