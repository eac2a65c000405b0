import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { formatChecksums, signatureFileName } from '../../daemon/seal/checksumFile.js';
import type { SealedRecording } from '../../daemon/upload/StorageTarget.js';

/** A sealed recording on disk: audio of `bytes` random bytes, metadata, the checksum file and a signature file. */
export async function sealedFixture(bytes: number, over: Partial<SealedRecording> = {}): Promise<SealedRecording & { audio: Buffer }> {
  const recordingId = randomBytes(11).toString('hex');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callvault-sealed-'));
  const audio = randomBytes(bytes);
  const meta = Buffer.from(JSON.stringify({ recordingId }));
  await writeFile(path.join(dir, `${recordingId}.wav`), audio);
  await writeFile(path.join(dir, `${recordingId}.json`), meta);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  await writeFile(
    path.join(dir, `${recordingId}.sha256`),
    formatChecksums([
      { name: `${recordingId}.wav`, sha256: sha(audio) },
      { name: `${recordingId}.json`, sha256: sha(meta) },
    ]),
  );
  await writeFile(path.join(dir, signatureFileName(recordingId)), `${randomBytes(256).toString('base64')}\n`);
  return {
    recordingId,
    dir,
    audio,
    fields: { recordingId, startedAt: '2026-12-01T10:00:00.000Z', profile: 'default', direction: 'inbound', caller: '+4930123', callee: '+4989456' },
    retainUntil: null,
    legalHold: false,
    ...over,
  };
}
