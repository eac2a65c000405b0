/**
 * Every error callvault raises on purpose. Each carries a stable `code` for
 * machines and enough context for an operator to act, never a secret.
 */
export class CallvaultError extends Error {
  readonly code: string;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
}

/** A config file that cannot be used; names the key path and the line. */
export class ConfigError extends CallvaultError {
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super('CONFIG_INVALID', `${file}: ${problems.length} problem(s):\n${problems.map(formatProblem).join('\n')}`, {
      file,
    });
  }
}

export interface ConfigProblem {
  /** Dotted key path, e.g. `media.portRange.min`. */
  readonly path: string;
  readonly line?: number;
  readonly message: string;
}

function formatProblem(p: ConfigProblem): string {
  return `  ${p.line !== undefined ? `line ${p.line}: ` : ''}${p.path || '(root)'}: ${p.message}`;
}

/** A control-API request that cannot be served; maps onto an HTTP status. */
export class ApiError extends CallvaultError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    context: Record<string, unknown> = {},
    /** For a 503: when the client may try again (the `Retry-After` header). */
    readonly retryAfterSeconds?: number,
  ) {
    super(code, message, context);
  }
}

/** mediasoup or the network refused to set up or keep a leg. */
export class IngestError extends CallvaultError {}

/** A media shard that died, did not start, or does not answer; or a request for a call a plane does not have. */
export class ShardError extends CallvaultError {}

/** The recording files could not be written, closed or repaired. */
export class RecordingError extends CallvaultError {}

/** A key or certificate that cannot be made, read, decrypted or used. */
export class KeyError extends CallvaultError {}

/** A recording that could not be sealed (hashed and signed). */
export class SealError extends CallvaultError {}

/** An envelope (`.enc`) that cannot be read or opened: malformed, tampered, truncated, or not under the key tried. */
export class EnvelopeError extends CallvaultError {
  constructor(
    message: string,
    /** The chunk that failed, when one did. */
    readonly chunk?: number,
  ) {
    super('ENVELOPE_INVALID', message, chunk === undefined ? {} : { chunk });
  }
}

/** A checksum file (`<id>.sha256`) that is not in the shasum format callvault writes. */
export class ChecksumFormatError extends CallvaultError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('CHECKSUM_FORMAT', message, context);
  }
}

/** A recording query field that cannot be understood; `field` names it. */
export class QueryError extends CallvaultError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super('BAD_QUERY', message, { field });
  }
}

/** An event a recording's stage cannot take (lifecycle.apply): nothing changed. */
export class LifecycleError extends CallvaultError {}

/** A background key job could not convert a recording. */
export class JobError extends CallvaultError {}

/** The index or audit environment cannot be opened or read (damaged file, unreadable record). */
export class StoreError extends CallvaultError {}

/** A SIP message that cannot be parsed; `status` is what to answer (400, 413, 415), when it can be answered. */
export class SipError extends CallvaultError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    context: Record<string, unknown> = {},
  ) {
    super(code, message, context);
  }
}
