import type { NewIndexEntry } from '../../daemon/archive/RecordingTypes.js';

/** An index entry for unit tests: recording `i` (its id sorts by `i`), in `stage`, with what a test sets. */
export function testEntry(i: number, o: Partial<NewIndexEntry> = {}): NewIndexEntry {
  const n = { number: '+4930123456', normalized: '+4930123456' };
  const recordingId = `01a2321bfe100abaf764${String(i).padStart(2, '0')}`;
  return {
    recordingId,
    callId: `c${i}`,
    profile: 'p',
    direction: 'inbound',
    caller: n,
    callee: n,
    codec: 'PCMU',
    channelMode: 'stereo',
    stage: 'recording',
    dir: `recordings/${recordingId}`,
    files: [],
    startedAt: '2026-12-01T10:00:00.000Z',
    endedAt: null,
    durationMs: null,
    sealedAt: null,
    kekId: null,
    uploads: {},
    retainUntil: null,
    hold: null,
    deletedAt: null,
    error: null,
    ...o,
  };
}
