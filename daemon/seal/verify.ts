import { ChecksumFormatError } from '../errors.js';
import { createVerify, verify as rsaVerify, X509Certificate } from 'node:crypto';
import { open, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import hashFile from '../../workers/hashFile.js';
import { metadataFileName, type RecordingMetadata } from '../record/metadata.js';
import { isRecordingId } from '../record/recordingId.js';
import { offloadManifestName, readOffloadManifest } from '../archive/offloadManifest.js';
import { parseChecksums, parseSignature, readChecksumFile, SIGNATURE_SUFFIX, type ChecksumEntry } from './checksumFile.js';

/** OFFLOADED: removed here by removeLocalAfterUpload, its copies named in the offload manifest (verify them on the target). */
export type FileStatus = 'OK' | 'MODIFIED' | 'MISSING' | 'UNLISTED' | 'OFFLOADED';
export type SignatureStatus = 'OK' | 'BAD' | 'MISSING';

export interface FileVerification {
  readonly name: string;
  readonly status: FileStatus;
}

export interface RecordingVerification {
  readonly dir: string;
  readonly recordingId: string | null;
  readonly ok: boolean;
  readonly checksumFile: string | null;
  readonly signature: SignatureStatus;
  readonly files: readonly FileVerification[];
  /** One line per problem, each enough on its own to act on. */
  readonly problems: readonly string[];
  /** Bytes hashed, for progress. */
  readonly bytes: number;
  /** What the signed metadata says the recording is, when it verified. */
  readonly binding: RecordingBinding | null;
}

/** A recording's identity as its signed metadata gives it: what it is bound to. */
export interface RecordingBinding {
  readonly recordingId: string;
  readonly callId: string;
  /** The instance that recorded it (absent in recordings made before it was kept). */
  readonly instanceId: string | null;
}

/**
 * Check one recording directory against its checksum file and signature:
 * every listed file recomputed, the signature checked with the certificate's
 * public key, anything present but not listed reported. Never trusts the
 * metadata: the checksum file and the certificate are the only inputs.
 */
export async function verifyRecording(dir: string, certificatePem: string): Promise<RecordingVerification> {
  const cert = new X509Certificate(certificatePem);
  const problems: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  const present = new Map(entries.map((e) => [e.name, e.isFile()]));
  const sums = entries.filter((e) => e.isFile() && e.name.endsWith('.sha256')).map((e) => e.name);
  const recordingId = idFrom(sums[0]) ?? idFrom(entries.find((e) => e.name.endsWith('.json'))?.name);
  if (sums.length !== 1) {
    problems.push(
      sums.length
        ? `more than one checksum file: ${sums.join(', ')}`
        : 'no checksum file (*.sha256): the recording was never sealed, or it was removed',
    );
    return {
      dir,
      recordingId,
      ok: false,
      checksumFile: null,
      signature: 'MISSING',
      files: [...present.keys()].sort().map((name) => ({ name, status: 'UNLISTED' })),
      problems,
      bytes: 0,
      binding: null,
    };
  }
  const checksumFile = sums[0]!;
  let checksumBytes: Buffer | undefined;
  let listed: ChecksumEntry[] = [];
  try {
    checksumBytes = await readChecksumFile(path.join(dir, checksumFile));
    listed = parseChecksums(checksumBytes.toString('utf8'));
  } catch (err) {
    if (!(err instanceof ChecksumFormatError)) throw err;
    problems.push(`${checksumFile} is malformed: ${err.message}`);
  }

  const sigName = checksumFile + SIGNATURE_SUFFIX;
  let signature: SignatureStatus = 'MISSING';
  if (present.get(sigName)) {
    try {
      const sig = parseSignature(await readFile(path.join(dir, sigName), 'utf8'));
      signature = (await signatureHolds(path.join(dir, checksumFile), checksumBytes, cert, sig)) ? 'OK' : 'BAD';
    } catch (err) {
      if (!(err instanceof ChecksumFormatError)) throw err;
      signature = 'BAD';
    }
    if (signature === 'BAD')
      problems.push(`${sigName}: signature does not verify for ${checksumFile} with certificate ${cert.subject} (SHA-256 ${cert.fingerprint256})`);
  } else {
    problems.push(`${sigName}: signature file missing`);
  }

  const files: FileVerification[] = [];
  let bytes = 0;
  const manifestName = recordingId ? offloadManifestName(recordingId) : null;
  const offloaded = new Set(manifestName && present.get(manifestName) ? ((await readOffloadManifest(dir, recordingId!))?.removed ?? []) : []);
  for (const { name, sha256 } of listed) {
    if (!present.get(name) && offloaded.has(name)) {
      files.push({ name, status: 'OFFLOADED' });
      continue;
    }
    if (!present.get(name)) {
      files.push({ name, status: 'MISSING' });
      problems.push(`${name}: MISSING (listed in ${checksumFile})`);
      continue;
    }
    const actual = hashFile({ path: path.join(dir, name) });
    bytes += actual.bytes;
    const status = actual.sha256 === sha256 ? 'OK' : 'MODIFIED';
    files.push({ name, status });
    if (status === 'MODIFIED') problems.push(`${name}: MODIFIED (SHA-256 ${actual.sha256}, checksum file says ${sha256})`);
  }
  const known = new Set([checksumFile, sigName, ...listed.map((e) => e.name), ...(offloaded.size && manifestName ? [manifestName] : [])]);
  for (const name of [...present.keys()].sort()) {
    if (known.has(name)) continue;
    files.push({ name, status: 'UNLISTED' });
    problems.push(`${name}: UNLISTED (present but not in ${checksumFile})`);
  }
  const binding = await bindingOf(dir, recordingId, files, problems);
  return { dir, recordingId, ok: problems.length === 0, checksumFile, signature, files, problems, bytes, binding };
}

/**
 * The checks that tie the files to one recording and one place: the
 * signature covers the listed names, so each must be named for the
 * recording the checksum file is; the directory must be that recording's;
 * the signed metadata must say it is that recording. Files copied from
 * another recording (renamed or not) fail here or at the signature.
 */
async function bindingOf(
  dir: string,
  recordingId: string | null,
  files: readonly FileVerification[],
  problems: string[],
): Promise<RecordingBinding | null> {
  if (!recordingId) {
    problems.push('the checksum file is not named <recordingId>.sha256');
    return null;
  }
  const base = path.basename(dir);
  if (isRecordingId(base) && base !== recordingId)
    problems.push(`the directory is recording ${base}'s, but holds recording ${recordingId}: copied or moved from elsewhere`);
  const listed = files.filter((f) => f.status !== 'UNLISTED');
  for (const f of listed)
    if (!isOwnFileName(f.name, recordingId)) problems.push(`${f.name}: listed in ${recordingId}'s checksum file but not named for it`);
  const metaName = metadataFileName(recordingId);
  const meta = listed.find((f) => f.name === metaName);
  if (!meta) {
    problems.push(`${metaName}: the recording's metadata is not listed in its checksum file`);
    return null;
  }
  if (meta.status !== 'OK') return null;
  let parsed: Partial<RecordingMetadata>;
  try {
    parsed = JSON.parse(await readFile(path.join(dir, metaName), 'utf8')) as Partial<RecordingMetadata>;
  } catch {
    problems.push(`${metaName}: not JSON`);
    return null;
  }
  if (parsed.recordingId !== recordingId || typeof parsed.callId !== 'string') {
    problems.push(`${metaName}: the signed metadata is recording ${JSON.stringify(parsed.recordingId)}'s, not ${recordingId}'s`);
    return null;
  }
  return { recordingId, callId: parsed.callId, instanceId: typeof parsed.instanceId === 'string' ? parsed.instanceId : null };
}

const STREAM_READ_BYTES = 1 << 20;

/**
 * The signature over the checksum file, streamed from disk when the file was
 * too large to read — through one reused buffer: a read stream's fresh chunk
 * per read leaves the collector hundreds of MB behind on a hostile file.
 */
async function signatureHolds(file: string, bytes: Buffer | undefined, cert: X509Certificate, sig: Buffer): Promise<boolean> {
  if (bytes) return rsaVerify('sha256', bytes, cert.publicKey, sig);
  const v = createVerify('sha256');
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(STREAM_READ_BYTES);
    for (let n = (await fh.read(buf, 0, buf.length)).bytesRead; n > 0; n = (await fh.read(buf, 0, buf.length)).bytesRead)
      v.update(buf.subarray(0, n));
  } finally {
    await fh.close();
  }
  return v.verify(cert.publicKey, sig);
}

/** `<id>.json`, `<id>.wav`, `<id>-caller.wav`, `<id>.wav.enc`…: every file of a recording is named for it. */
function isOwnFileName(name: string, recordingId: string): boolean {
  return name.startsWith(`${recordingId}.`) || name.startsWith(`${recordingId}-`);
}

function idFrom(name: string | undefined): string | null {
  const id = name?.split('.')[0];
  return id && isRecordingId(id) ? id : null;
}

/** Every recording directory under `root` (one holding a checksum file or recording metadata), sorted. */
export async function findRecordingDirs(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    if (entries.some((e) => e.isFile() && (e.name.endsWith('.sha256') || (e.name.endsWith('.json') && idFrom(e.name))))) found.push(dir);
    for (const e of entries) if (e.isDirectory()) await walk(path.join(dir, e.name));
  };
  await walk(root);
  return found.sort();
}
