import type { AdmissionConfig } from '../capacity/CapacityTypes.js';
import { CallvaultError } from '../errors.js';
/** The validated, defaulted configuration (shape of config/callvault.schema.json). */
export interface Config {
  readonly dataDir: string;
  readonly control: {
    readonly listen: string;
    readonly token: string | null;
    readonly tokenFile: string | null;
    readonly maxBodyBytes: number;
    readonly maxConnections: number;
    readonly idleTimeoutSeconds: number;
  };
  readonly metrics: { readonly listen: string; readonly maxConnections: number; readonly idleTimeoutSeconds: number };
  readonly sip: {
    readonly listen: string | null;
    readonly transports: readonly ('udp' | 'tcp')[];
    readonly allowedSources: readonly string[];
    readonly tls: { readonly listen: string | null; readonly certFile: string | null; readonly keyFile: string | null };
    readonly digest: {
      readonly realm: string | null;
      readonly algorithms: readonly ('SHA-256' | 'MD5')[];
      readonly users: readonly { readonly username: string; readonly passwordFile: string }[];
    };
    readonly maxConnections: number;
    readonly idleTimeoutSeconds: number;
  };
  readonly media: {
    /** Media shards (child processes); 0: the packets are handled on the daemon's thread. */
    readonly shards: number | 'auto';
    readonly workers: number | 'auto';
    readonly listenIp: string;
    readonly announcedAddress: string | null;
    readonly portMin: number;
    readonly portMax: number;
    readonly recvBufferSize: number;
    readonly jitterBufferMs: number;
    /** Ingest lag (ms) past which the newest calls are shed (LoadShedder); null: never. */
    readonly maxIngestLagMs: number | null;
    /** Networks RTP may come from when a call gives no media address; null: the address that started the call. */
    readonly allowedSources: readonly string[] | null;
    readonly portQuarantineSeconds: number;
  };
  readonly calls: {
    readonly maxConcurrent: number;
    readonly rtpTimeoutSeconds: number;
    readonly maxDurationSeconds: number;
    readonly minFreeDiskMB: number;
    readonly diskReserveMB: number;
    /** Admission by measured load (daemon/capacity/): a limit per signal, null = not used. */
    readonly admission: AdmissionConfig;
  };
  readonly recording: {
    readonly channelMode: ChannelMode;
    /** Per file: audio waiting for a disk that fell behind, past which new audio is dropped as a STALLED gap. */
    readonly maxWriteBacklogKiB: number;
  };
  readonly profiles: readonly ProfileConfig[];
  readonly storage: Readonly<Record<string, StorageTargetConfig>>;
  readonly signing: {
    readonly keyBits: 2048 | 3072 | 4096;
    readonly passphrase: string | null;
    readonly passphraseFile: string | null;
    /** SHA-256 fingerprint the signing certificate must have (`AA:BB:…`). */
    readonly fingerprint: string | null;
  };
  readonly encryption: EncryptionConfig;
  readonly notifications: NotificationsConfig;
  readonly pool: { readonly threads: number | 'auto' };
  readonly logging: { readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
}

export interface MailConfig {
  /** SMTP server; null: no mail. */
  readonly host: string | null;
  readonly port: number;
  /** starttls: upgrade required; tls: TLS from the first byte (465); none: plain (loopback relays only). */
  readonly security: 'starttls' | 'tls' | 'none';
  readonly username: string | null;
  readonly passwordFile: string | null;
  readonly from: string;
  readonly to: readonly string[];
}

export interface NotificationsConfig {
  readonly mail: MailConfig;
  /** While something keeps failing, at most one reminder per this many seconds. */
  readonly digestSeconds: number;
}

export interface EncryptionConfig {
  readonly provider: 'local' | 'lkm';
  readonly keyBits: 2048 | 3072 | 4096;
  readonly cryptoperiodDays: number;
  readonly expiryWarningDays: number;
  readonly notifyCommand: readonly string[] | null;
  /** SHA-256 fingerprints (of the public key, hex) of the KEKs recordings may be encrypted under. */
  readonly trustedKeks: readonly string[];
  readonly lkm: {
    readonly url: string | null;
    readonly caFile: string | null;
    /** The recorder's credential: fetches the public KEK, cannot unwrap. */
    readonly tokenFile: string | null;
    /** Mutual TLS: this host's client certificate and key (PEM), when the key manager requires one. */
    readonly clientCertFile: string | null;
    readonly clientKeyFile: string | null;
    readonly timeoutMs: number;
  };
}

export type ChannelMode = 'stereo' | 'separate' | 'caller' | 'callee';
export type Direction = 'inbound' | 'outbound' | 'internal';

/** One entry of `profiles`; see config/callvault.schema.json for each key's meaning. */
export interface ProfileConfig {
  readonly name: string;
  readonly match: ProfileMatch;
  readonly record: boolean;
  readonly channelMode: ChannelMode | null;
  readonly storage: readonly string[];
  readonly encryption: boolean;
  readonly retention: string | null;
  readonly dtmfDigits: DtmfDigits;
  readonly removeLocalAfterUpload: boolean;
}

/** discard: only that keys were pressed is kept. encrypted: the keys too, in an envelope, never in the clear. */
export type DtmfDigits = 'discard' | 'encrypted';

export interface ProfileMatch {
  readonly direction?: readonly Direction[];
  readonly numbers?: readonly string[];
  readonly callerNumbers?: readonly string[];
  readonly calleeNumbers?: readonly string[];
  readonly users?: readonly string[];
  readonly groups?: readonly string[];
  readonly memberCalls: boolean;
}

/** What every storage target has: where under it a recording goes. */
interface TargetPlacement {
  /** Path template (daemon/upload/pathTemplate.ts). */
  readonly template: string;
  readonly timeZone: string;
}

export interface DirectoryTargetConfig extends TargetPlacement {
  readonly type: 'directory';
  readonly path: string;
}

export interface SftpTargetConfig extends TargetPlacement {
  readonly type: 'sftp';
  readonly host: string;
  readonly port: number;
  readonly username: string;
  /** `SHA256:…` as ssh-keygen -lf prints it. */
  readonly hostKey: string;
  readonly privateKeyFile: string | null;
  readonly passwordFile: string | null;
  /** The remote directory, relative to the user's home unless absolute. */
  readonly path: string;
  readonly timeoutSeconds: number;
}

export interface SmbTargetConfig extends TargetPlacement {
  readonly type: 'smb';
  /** Host name or address only. */
  readonly host: string;
  readonly port: number;
  /** The share's name, without a sub-path. */
  readonly share: string;
  readonly username: string;
  readonly domain: string;
  readonly passwordFile: string;
  /** Require SMB3 encryption (signing is always required). */
  readonly encrypt: boolean;
  /** The directory on the share, relative to its root. */
  readonly path: string;
  readonly timeoutSeconds: number;
}

export interface S3TargetConfig extends TargetPlacement {
  readonly type: 's3';
  /** null: AWS's endpoint for the region. */
  readonly endpoint: string | null;
  readonly region: string;
  readonly bucket: string;
  /** Key prefix the template's path goes under ('' for the bucket's root). */
  readonly path: string;
  readonly pathStyle: boolean;
  /** AWS shared-credentials style file; null: the SDK's chain (environment, instance role). */
  readonly credentialsFile: string | null;
  readonly objectLock: { readonly mode: 'GOVERNANCE' | 'COMPLIANCE' } | null;
  readonly multipartThresholdMiB: number;
  readonly partSizeMiB: number;
  readonly timeoutSeconds: number;
}

export interface OneDriveTargetConfig extends TargetPlacement {
  readonly type: 'onedrive';
  /** client-credentials: app-only (the daemon's own identity); auth-code: a user signed in with `callvault storage login`. */
  readonly auth: 'client-credentials' | 'auth-code';
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecretFile: string | null;
  readonly tokenCacheFile: string | null;
  /** The drive (OneDrive or a SharePoint document library) by id. */
  readonly driveId: string;
  /** The folder under the drive's root. */
  readonly path: string;
  readonly authorityUrl: string;
  readonly graphUrl: string;
  /** Fragment size of an upload session: a multiple of 320 KiB, under 60 MiB. */
  readonly fragmentKiB: number;
  /** Loopback port `callvault storage login` takes the sign-in's redirect on. */
  readonly redirectPort: number;
  readonly timeoutSeconds: number;
}

export type StorageTargetConfig = DirectoryTargetConfig | SftpTargetConfig | SmbTargetConfig | S3TargetConfig | OneDriveTargetConfig;

/** A HOST:PORT listener; IPv6 hosts without brackets. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export function parseListen(spec: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(spec);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535)
    throw new CallvaultError('BAD_LISTEN', `bad listen address ${JSON.stringify(spec)}: expected HOST:PORT or [IPv6]:PORT`, { listen: spec });
  return { host: (m[1] ?? m[2]) as string, port };
}
