import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectVersionsCommand,
  type ObjectLockLegalHoldStatus,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { S3TargetConfig } from '../config/Config.js';
import { KeyError, StoreError } from '../errors.js';
import { secretFilePath } from '../keys/passphrase.js';
import { checksumFileName, parseChecksums } from '../seal/checksumFile.js';
import { expectedETag, fileDigests, type FileDigests } from './fileDigests.js';
import { expandTemplate } from './pathTemplate.js';
import { sealedFiles, type PutResult, type RemoveOutcome, type SealedFile, type SealedRecording, type StorageTarget } from './StorageTarget.js';

const MIB = 1024 * 1024;

/** What S3 says when a lock refuses a deletion. */
const LOCKED = new Set(['AccessDenied', 'ObjectLocked', 'InvalidRequest']);

/** How an object is to be locked: from the target's mode, the recording's retention and its legal hold. */
interface Lock {
  readonly mode: 'GOVERNANCE' | 'COMPLIANCE';
  readonly retainUntil: Date | null;
  readonly legalHold: boolean;
}

/**
 * S3-compatible object storage (AWS, Ceph RGW, MinIO …) as a storage
 * target. Each file is one object under the template's prefix, sent with
 * Content-MD5 (which every S3 server checks) and `x-amz-checksum-sha256`
 * equal to the sealed SHA-256 (which servers with flexible checksums check
 * too): a corrupted upload is refused by the server, never stored. Files
 * above the multipart threshold go in parts, each with its own digests,
 * and a failed multipart upload is aborted. The signature object is
 * written last and a copy counts only when every object is there with the
 * size and digest sealed — object stores have no rename. With Object Lock,
 * every object carries the target's mode, retain-until from the
 * recording's retention and its legal hold; a removal deletes every version
 * it may and reports, never forces (no governance bypass), what a lock keeps.
 */
export class S3Target implements StorageTarget {
  #client: S3Client | null = null;

  constructor(
    readonly name: string,
    private readonly config: S3TargetConfig,
  ) {}

  async put(rec: SealedRecording): Promise<PutResult> {
    const client = await this.#s3();
    const sealed = await this.#sealedDigests(rec);
    let bytesSent = 0;
    let last: HeadObjectCommandOutput | null = null;
    for (const f of await sealedFiles(rec)) {
      const o = await this.#object(client, rec, f, sealed);
      if (!o.stored) {
        const file = path.join(rec.dir, f.name);
        if (o.multipart) await this.#putMultipart(client, o.key, file, o.digests, rec);
        else await this.#putSingle(client, o.key, file, o.digests, rec);
        bytesSent += o.digests.size;
        const head = await this.#head(client, o.key);
        if (!head || !matches(head, o.digests, o.multipart))
          throw new StoreError('COPY_MISMATCH', `${o.key} on ${this.name} is not what was sent (${head ? `ETag ${head.ETag}` : 'missing'})`, {
            target: this.name,
            key: o.key,
          });
        last = head;
      } else last = o.stored;
    }
    return { completedAt: last?.LastModified ?? new Date(), bytesSent };
  }

  async find(rec: SealedRecording): Promise<Date | undefined> {
    const client = await this.#s3();
    const sealed = await this.#sealedDigests(rec);
    let last: HeadObjectCommandOutput | null = null;
    for (const f of await sealedFiles(rec)) {
      last = (await this.#object(client, rec, f, sealed)).stored;
      if (!last) return undefined;
    }
    return last?.LastModified;
  }

  /** A file's object: its key, the file's digests here, and the object's head when the server holds exactly the sealed file (else null). */
  async #object(
    client: S3Client,
    rec: SealedRecording,
    f: SealedFile,
    sealed: ReadonlyMap<string, string>,
  ): Promise<{ key: string; digests: FileDigests; multipart: boolean; stored: HeadObjectCommandOutput | null }> {
    const digests = await this.#digests(rec, f, sealed);
    const key = this.#key(rec, f.name);
    const multipart = digests.size > this.config.multipartThresholdMiB * MIB;
    const head = await this.#head(client, key);
    return { key, digests, multipart, stored: head && matches(head, digests, multipart) ? head : null };
  }

  async remove(rec: SealedRecording): Promise<RemoveOutcome> {
    const client = await this.#s3();
    const prefix = this.#prefix(rec);
    const kept: { object: string; reason: string }[] = [];
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    do {
      const page = await this.#send(() =>
        client.send(
          new ListObjectVersionsCommand({ Bucket: this.config.bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionMarker }),
        ),
      );
      for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
        if (!v.Key) continue;
        try {
          await client.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key: v.Key, VersionId: v.VersionId }));
        } catch (err) {
          if (!(err instanceof S3ServiceException) || !LOCKED.has(err.name)) throw this.#wrap(err, v.Key);
          kept.push({
            object: `s3://${this.config.bucket}/${v.Key}${v.VersionId ? `?versionId=${v.VersionId}` : ''}`,
            reason: await this.#lockReason(client, v.Key, v.VersionId),
          });
        }
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
    } while (keyMarker);
    return { kept };
  }

  async setLegalHold(rec: SealedRecording, on: boolean): Promise<void> {
    if (!this.config.objectLock) return;
    const client = await this.#s3();
    const status: ObjectLockLegalHoldStatus = on ? 'ON' : 'OFF';
    for (const f of await sealedFiles(rec)) {
      const key = this.#key(rec, f.name);
      await this.#send(
        () => client.send(new PutObjectLegalHoldCommand({ Bucket: this.config.bucket, Key: key, LegalHold: { Status: status } })),
        key,
      );
    }
  }

  /** The recording's objects all start with this (ends in /). */
  #prefix(rec: SealedRecording): string {
    return `${path.posix.join(this.config.path, expandTemplate(this.config.template, rec.fields, this.config.timeZone, 'posix'))}/`;
  }

  #key(rec: SealedRecording, file: string): string {
    return this.#prefix(rec) + file;
  }

  /** The sealed SHA-256 of each audio and metadata file, by name. */
  async #sealedDigests(rec: SealedRecording): Promise<Map<string, string>> {
    const text = await readFile(path.join(rec.dir, checksumFileName(rec.recordingId)), 'utf8');
    return new Map(parseChecksums(text).map((e) => [e.name, e.sha256]));
  }

  /** A file's digests here; a file that no longer hashes to its seal is never sent. */
  async #digests(rec: SealedRecording, f: SealedFile, sealed: ReadonlyMap<string, string>): Promise<FileDigests> {
    const d = await fileDigests(path.join(rec.dir, f.name), this.config.partSizeMiB * MIB);
    const want = sealed.get(f.name);
    if (want && d.sha256.toString('hex') !== want)
      throw new StoreError(
        'LOCAL_COPY_DIFFERS',
        `${f.name} of ${rec.recordingId} no longer matches its seal; it is not uploaded (run callvault verify)`,
        {
          recordingId: rec.recordingId,
          file: f.name,
        },
      );
    return d;
  }

  #lock(rec: SealedRecording): Lock | null {
    const mode = this.config.objectLock?.mode;
    if (!mode) return null;
    return { mode, retainUntil: rec.retainUntil ? new Date(rec.retainUntil) : null, legalHold: rec.legalHold };
  }

  #lockHeaders(rec: SealedRecording) {
    const lock = this.#lock(rec);
    if (!lock) return {};
    return {
      ...(lock.retainUntil ? { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: lock.retainUntil } : {}),
      ObjectLockLegalHoldStatus: (lock.legalHold ? 'ON' : 'OFF') as ObjectLockLegalHoldStatus,
    };
  }

  async #putSingle(client: S3Client, key: string, file: string, d: FileDigests, rec: SealedRecording): Promise<void> {
    await this.#send(
      () =>
        client.send(
          new PutObjectCommand({
            Bucket: this.config.bucket,
            Key: key,
            Body: createReadStream(file),
            ContentLength: d.size,
            ContentMD5: d.md5.toString('base64'),
            ChecksumSHA256: d.sha256.toString('base64'),
            ...this.#lockHeaders(rec),
          }),
        ),
      key,
    );
  }

  async #putMultipart(client: S3Client, key: string, file: string, d: FileDigests, rec: SealedRecording): Promise<void> {
    const bucket = this.config.bucket;
    const created = await this.#send(
      () => client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: 'SHA256', ...this.#lockHeaders(rec) })),
      key,
    );
    const uploadId = created.UploadId!;
    try {
      const parts: { ETag: string; PartNumber: number; ChecksumSHA256: string }[] = [];
      for (const [i, p] of d.parts.entries()) {
        const out = await this.#send(
          () =>
            client.send(
              new UploadPartCommand({
                Bucket: bucket,
                Key: key,
                UploadId: uploadId,
                PartNumber: i + 1,
                Body: createReadStream(file, { start: p.offset, end: p.offset + p.size - 1 }),
                ContentLength: p.size,
                ContentMD5: p.md5.toString('base64'),
                ChecksumSHA256: p.sha256.toString('base64'),
              }),
            ),
          key,
        );
        parts.push({ ETag: out.ETag!, PartNumber: i + 1, ChecksumSHA256: p.sha256.toString('base64') });
      }
      await this.#send(
        () => client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } })),
        key,
      );
    } catch (err) {
      // Parts of an unfinished upload are billed and invisible: never leave them behind.
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
      throw err;
    }
  }

  async #head(client: S3Client, key: string): Promise<HeadObjectCommandOutput | null> {
    try {
      return await client.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key: key, ChecksumMode: 'ENABLED' }));
    } catch (err) {
      if (err instanceof S3ServiceException && (err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404))
        return null;
      throw this.#wrap(err, key);
    }
  }

  async #lockReason(client: S3Client, key: string, versionId: string | undefined): Promise<string> {
    const r = await client.send(new GetObjectRetentionCommand({ Bucket: this.config.bucket, Key: key, VersionId: versionId })).catch(() => null);
    const until = r?.Retention?.RetainUntilDate;
    return until && until > new Date()
      ? `under Object Lock (${r?.Retention?.Mode ?? 'retention'}) until ${until.toISOString()}`
      : 'under Object Lock (legal hold or retention)';
  }

  async #send<T>(fn: () => Promise<T>, key = ''): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.#wrap(err, key);
    }
  }

  #wrap(err: unknown, key: string): StoreError {
    if (err instanceof StoreError) return err;
    const e = err as Error & { name?: string; $metadata?: { httpStatusCode?: number } };
    const status = e.$metadata?.httpStatusCode;
    const what =
      e.name === 'BadDigest' || e.name === 'InvalidDigest' || e.name === 'XAmzContentSHA256Mismatch'
        ? 'the server found the bytes corrupted in transit: '
        : '';
    return new StoreError(
      e.name === 'BadDigest' ? 'COPY_MISMATCH' : 'S3_FAILED',
      `storage target ${this.name} (s3://${this.config.bucket}/${key}): ${what}${e.name ?? 'error'}${status ? ` (HTTP ${status})` : ''}: ${e.message}`,
      { target: this.name, key, status },
      { cause: err },
    );
  }

  async #s3(): Promise<S3Client> {
    if (this.#client) return this.#client;
    const c = this.config;
    this.#client = new S3Client({
      region: c.region,
      ...(c.endpoint ? { endpoint: c.endpoint } : {}),
      forcePathStyle: c.pathStyle,
      ...(c.credentialsFile ? { credentials: await readCredentials(c.credentialsFile, this.name) } : {}),
      // We send our own digests; the SDK's default CRC32 trailers break S3-compatible servers (aws-sdk-js-v3 #6810).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: c.timeoutSeconds * 1000, requestTimeout: c.timeoutSeconds * 1000 },
      // The stage runner retries (with backoff, per target); an SDK retry would hide a cut multipart upload from the abort.
      maxAttempts: 1,
    });
    return this.#client;
  }
}

/** An object's size and digest as S3 reports them are those of the sealed file. */
function matches(head: HeadObjectCommandOutput, d: FileDigests, multipart: boolean): boolean {
  if (head.ContentLength !== d.size) return false;
  // A whole-object SHA-256 where the server keeps one; the ETag (MD5, or MD5 of part MD5s) everywhere.
  if (head.ChecksumSHA256 && !head.ChecksumSHA256.includes('-') && !multipart) return head.ChecksumSHA256 === d.sha256.toString('base64');
  return head.ETag === expectedETag(d, multipart);
}

/**
 * Keys from an AWS shared-credentials style file (`aws_access_key_id = …`,
 * `aws_secret_access_key = …`, optional `aws_session_token`), its first
 * profile. Without a file the SDK's own chain applies (environment, instance role).
 */
async function readCredentials(file: string, target: string): Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string }> {
  let text: string;
  try {
    text = await readFile(secretFilePath(file), 'utf8');
  } catch (err) {
    if (err instanceof KeyError) throw err;
    throw new StoreError(
      'CREDENTIALS_UNREADABLE',
      `cannot read the credentials file of storage target ${target} (${file}): ${(err as NodeJS.ErrnoException).code}`,
      {
        target,
        file,
      },
    );
  }
  const values = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*\[/.test(line) && values.size) break;
    const m = /^\s*([a-z_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) values.set(m[1]!, m[2]!);
  }
  const accessKeyId = values.get('aws_access_key_id');
  const secretAccessKey = values.get('aws_secret_access_key');
  if (!accessKeyId || !secretAccessKey)
    throw new StoreError(
      'CREDENTIALS_INVALID',
      `the credentials file of storage target ${target} (${file}) lacks aws_access_key_id or aws_secret_access_key`,
      {
        target,
        file,
      },
    );
  const sessionToken = values.get('aws_session_token');
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}
