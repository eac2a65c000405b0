import type { ChannelMode } from '../config/Config.js';
import type { LegRole } from '../ingest/LegSource.js';

/** One audio file of a recording and the legs it carries, in channel order. */
export interface OutputSpec {
  readonly name: string;
  readonly legs: readonly LegRole[];
}

/** Caller is always the left (first) channel, callee the right. */
export function outputsFor(mode: ChannelMode, recordingId: string): OutputSpec[] {
  switch (mode) {
    case 'stereo':
      return [{ name: `${recordingId}.wav`, legs: ['caller', 'callee'] }];
    case 'separate':
      return [
        { name: `${recordingId}-caller.wav`, legs: ['caller'] },
        { name: `${recordingId}-callee.wav`, legs: ['callee'] },
      ];
    case 'caller':
      return [{ name: `${recordingId}-caller.wav`, legs: ['caller'] }];
    case 'callee':
      return [{ name: `${recordingId}-callee.wav`, legs: ['callee'] }];
  }
}
