import { open } from 'node:fs/promises';
import path from 'node:path';
import type { OneDriveTargetConfig } from '../config/Config.js';
import { StoreError } from '../errors.js';
import { GraphAuth } from './onedrive/GraphAuth.js';
import { GraphClient, type GraphRequest } from './onedrive/GraphClient.js';
import { quickXorHashFile } from './onedrive/quickXorHash.js';
import { SessionStore } from './onedrive/SessionStore.js';
import { expandTemplate } from './pathTemplate.js';
import { copyToRemote, remoteCompletedAt, type RemoteFile, type RemoteTree } from './remoteCopy.js';
import {
  NOTHING_KEPT,
  sealedFiles,
  type PutResult,
  type RemoveOutcome,
  type SealedFile,
  type SealedRecording,
  type StorageTarget,
} from './StorageTarget.js';

/** OneDrive's limit on a whole path; the staging suffix and file names must fit too. */
const MAX_PATH = 400;

interface DriveItem {
  readonly id: string;
  readonly name: string;
  readonly size: number;
  readonly lastModifiedDateTime: string;
  readonly file?: { readonly hashes?: { readonly quickXorHash?: string } };
  readonly folder?: unknown;
}

interface DriveItemPage {
  readonly value: readonly DriveItem[];
  readonly '@odata.nextLink'?: string;
}

interface SessionState {
  readonly uploadUrl?: string;
  readonly expirationDateTime?: string;
  readonly nextExpectedRanges?: readonly string[];
}

/**
 * OneDrive or a SharePoint document library (Microsoft Graph) as a storage
 * target. Each file goes up in an upload session: fragments in order, each
 * a multiple of 320 KiB (the last aside), the same Content-Range total
 * every time, never an Authorization header on the upload URL; a 416 is
 * answered by asking the session what it has, a 404 (session gone) by
 * starting over, 429/503 by waiting Retry-After. Sessions are kept in the
 * data dir so an upload cut by a restart resumes. Every file's size and
 * QuickXorHash (computed here) are checked against what Graph reports;
 * copies follow the protocol of remoteCopy.ts, renamed into place when whole.
 */
export class OneDriveTarget implements StorageTarget {
  readonly #graph: GraphClient;
  readonly #sessions: SessionStore;

  constructor(
    readonly name: string,
    private readonly config: OneDriveTargetConfig,
    dataDir: string,
  ) {
    this.#graph = new GraphClient(name, config.graphUrl, new GraphAuth(name, config), config.timeoutSeconds * 1000);
    this.#sessions = new SessionStore(path.join(dataDir, 'uploads', `${name}.sessions.json`));
  }

  async put(rec: SealedRecording): Promise<PutResult> {
    return copyToRemote(this.#tree, this.name, rec, await sealedFiles(rec), this.#dest(rec));
  }

  async find(rec: SealedRecording): Promise<Date | undefined> {
    return (await remoteCompletedAt(this.#tree, this.#dest(rec), await sealedFiles(rec), rec)) ?? undefined;
  }

  async remove(rec: SealedRecording): Promise<RemoveOutcome> {
    const dest = this.#dest(rec);
    await this.#tree.removeTree(dest);
    await this.#tree.removeTree(`${dest}.partial`);
    return NOTHING_KEPT;
  }

  #dest(rec: SealedRecording): string {
    const dest = path.posix.join(this.config.path, expandTemplate(this.config.template, rec.fields, this.config.timeZone, 'onedrive'));
    const longest = `${dest}.partial/${rec.recordingId}.sha256.SHA256withRSA.sig`.length;
    if (longest > MAX_PATH)
      throw new StoreError(
        'ONEDRIVE_PATH_TOO_LONG',
        `storage target ${this.name}: ${dest} makes paths of ${longest} characters; OneDrive allows ${MAX_PATH}`,
        {
          target: this.name,
        },
      );
    return dest;
  }

  #item(p: string): string {
    return `/drives/${encodeURIComponent(this.config.driveId)}/root:/${p.split('/').map(encodeURIComponent).join('/')}:`;
  }

  readonly #tree: RemoteTree = {
    resumable: true,
    list: async (dir) => {
      const files = new Map<string, RemoteFile>();
      let url: string | undefined = `${this.#item(dir)}/children?$select=name,size,file,folder,lastModifiedDateTime&$top=200`;
      while (url) {
        const page: DriveItemPage | null = await this.#graph.jsonOrNull<DriveItemPage>({ method: 'GET', url, auth: true });
        if (!page) return files;
        for (const item of page.value) if (item.file) files.set(item.name, { size: item.size, writeTime: new Date(item.lastModifiedDateTime) });
        url = page['@odata.nextLink'];
      }
      return files;
    },
    mkdirs: async (dir) => {
      const parts = dir.split('/').filter((p) => p && p !== '.');
      for (let i = 0; i < parts.length; i++) {
        const parent = parts.slice(0, i).join('/');
        const req: GraphRequest = {
          method: 'POST',
          url: parent ? `${this.#item(parent)}/children` : `/drives/${encodeURIComponent(this.config.driveId)}/root/children`,
          json: { name: parts[i], folder: {}, '@microsoft.graph.conflictBehavior': 'fail' },
          auth: true,
        };
        const res = await this.#graph.request(req);
        await res.body?.cancel();
        if (res.status !== 201 && res.status !== 200 && res.status !== 409) throw await this.#graph.failure(req, res);
      }
    },
    upload: async (localDir, files, remoteDir) => {
      await this.#tree.mkdirs(remoteDir);
      const there = await this.#tree.list(remoteDir);
      for (const f of files) {
        const local = path.join(localDir, f.name);
        const hash = await quickXorHashFile(local);
        // A file a cut attempt finished already: kept if it is the same (its hash is checked below with the others).
        if (there.get(f.name)?.size !== f.size) await this.#uploadFile(local, f, `${remoteDir}/${f.name}`);
        const item = await this.#graph.json<DriveItem>({ method: 'GET', url: this.#item(`${remoteDir}/${f.name}`), auth: true });
        const theirs = item.file?.hashes?.quickXorHash;
        if (item.size !== f.size || theirs !== hash)
          throw new StoreError(
            'COPY_MISMATCH',
            `${f.name} on ${this.name} is ${item.size} bytes with QuickXorHash ${theirs ?? 'none'}; here ${f.size} bytes, ${hash}`,
            { target: this.name, file: f.name },
          );
      }
    },
    removeTree: async (dir) => {
      const req: GraphRequest = { method: 'DELETE', url: this.#item(dir), auth: true };
      const res = await this.#graph.request(req);
      await res.body?.cancel();
      if (res.status !== 204 && res.status !== 404) throw await this.#graph.failure(req, res);
    },
    rename: async (from, to) => {
      await this.#graph.json({ method: 'PATCH', url: this.#item(from), json: { name: path.posix.basename(to) }, auth: true }, [200]);
    },
  };

  /** One file through an upload session, resumed from a stored one when the service still has it. */
  async #uploadFile(local: string, f: SealedFile, remote: string): Promise<void> {
    const fragment = this.config.fragmentKiB * 1024;
    let session = await this.#resume(remote, f.size);
    const fh = await open(local, 'r');
    try {
      for (let restarts = 0; ; ) {
        if (!session) session = await this.#newSession(remote, f.size);
        const { uploadUrl } = session;
        let offset = session.offset;
        let done = false;
        while (!done) {
          const end = Math.min(offset + fragment, f.size) - 1;
          const body = Buffer.alloc(end - offset + 1);
          await fh.read(body, 0, body.length, offset);
          const req: GraphRequest = {
            method: 'PUT',
            url: uploadUrl,
            body,
            headers: { 'content-range': `bytes ${offset}-${end}/${f.size}`, 'content-length': String(body.length) },
            auth: false,
          };
          const res = await this.#graph.request(req);
          if (res.status === 200 || res.status === 201) {
            await res.body?.cancel();
            done = true;
          } else if (res.status === 202) {
            offset = nextOffset(((await res.json()) as SessionState).nextExpectedRanges, end + 1);
          } else if (res.status === 416) {
            // The service has more (or other) bytes than we thought: ask it where to go on.
            await res.body?.cancel();
            const state = await this.#status(uploadUrl);
            if (!state) {
              // Gone: either it completed (the answer to the last fragment was lost) or it expired.
              done = (await this.#size(remote)) === f.size;
              if (!done) break;
            } else {
              offset = nextOffset(state.nextExpectedRanges, f.size);
            }
          } else if (res.status === 404) {
            await res.body?.cancel();
            break; // the session expired or was dropped: a new one, from the start
          } else {
            throw await this.#graph.failure(req, res);
          }
        }
        if (done) break;
        await this.#sessions.delete(remote);
        session = null;
        if (++restarts > 3)
          throw new StoreError('ONEDRIVE_FAILED', `storage target ${this.name}: upload sessions for ${remote} keep vanishing`, { target: this.name });
      }
      await this.#sessions.delete(remote);
    } finally {
      // A session of a failed attempt stays stored: the next attempt resumes it.
      await fh.close();
    }
  }

  async #newSession(remote: string, size: number): Promise<{ uploadUrl: string; offset: number }> {
    const s = await this.#graph.json<SessionState>({
      method: 'POST',
      url: `${this.#item(remote)}/createUploadSession`,
      json: { item: { '@microsoft.graph.conflictBehavior': 'replace' } },
      auth: true,
    });
    if (!s.uploadUrl)
      throw new StoreError('ONEDRIVE_FAILED', `storage target ${this.name}: createUploadSession gave no uploadUrl`, { target: this.name });
    await this.#sessions.put(remote, {
      uploadUrl: s.uploadUrl,
      expiresAt: s.expirationDateTime ?? new Date(Date.now() + 3600_000).toISOString(),
      size,
    });
    return { uploadUrl: s.uploadUrl, offset: 0 };
  }

  /** A stored session for this file, where the service says to go on; null when there is none or the service lost it. */
  async #resume(remote: string, size: number): Promise<{ uploadUrl: string; offset: number } | null> {
    const stored = await this.#sessions.get(remote);
    if (!stored || stored.size !== size) return null;
    const state = await this.#status(stored.uploadUrl);
    if (!state) {
      await this.#sessions.delete(remote);
      return null;
    }
    return { uploadUrl: stored.uploadUrl, offset: nextOffset(state.nextExpectedRanges, 0) };
  }

  /** The size of a remote file, or null when there is none. */
  async #size(remote: string): Promise<number | null> {
    return (await this.#graph.jsonOrNull<DriveItem>({ method: 'GET', url: this.#item(remote), auth: true }))?.size ?? null;
  }

  /** What an upload session has received; null when it is gone. */
  #status(uploadUrl: string): Promise<SessionState | null> {
    return this.#graph.jsonOrNull<SessionState>({ method: 'GET', url: uploadUrl, auth: false });
  }
}

/** The first byte the service still expects (`"12345-"` or `"12345-67890"`), or `fallback` when it names none. */
function nextOffset(ranges: readonly string[] | undefined, fallback: number): number {
  const m = /^(\d+)-/.exec(ranges?.[0] ?? '');
  return m ? Number(m[1]) : fallback;
}
