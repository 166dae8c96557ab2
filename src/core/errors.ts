/**
 * Every error Floorgate raises on purpose carries a stable `code` (for metrics, tests and operators)
 * and, when it wraps another failure, that failure as `cause`. Whoever handles an error logs it once.
 *
 * The codes are a contract with operators: each one is explained, with what to do about it, in
 * docs/errors.md (test/unit/docs.test.ts fails when a code here has no entry there). Add codes,
 * never rename or repurpose one.
 */
export type ErrorCode =
  /** the config file has problems (every one is printed with its line); exit 1 */
  | "CONFIG_INVALID"
  /** the config file cannot be read at all (missing, a directory, no permission); exit 1 */
  | "CONFIG_READ"
  /** the journal is at maxBytes under overflow: reject */
  | "JOURNAL_FULL"
  /** the journal cannot be opened, is locked by another process, or hit a fatal disk error; exit 2 */
  | "JOURNAL_IO"
  /** the journal refuses writes for now (disk full, out of descriptors) and probes until it can */
  | "JOURNAL_UNAVAILABLE"
  /** the journal was used after close (a stop in progress) */
  | "JOURNAL_CLOSED"
  /** a checksum-valid journal record that cannot be decoded */
  | "JOURNAL_CORRUPT"
  /** an output cannot reach its destination now; retried with backoff */
  | "OUTPUT_UNAVAILABLE"
  /** the destination refuses the gateway for good (credentials, TLS, a part not built); slow retries */
  | "OUTPUT_REJECTED"
  /** the destination stopped acknowledging writes */
  | "OUTPUT_TIMEOUT"
  /** a device did not answer within its timeout */
  | "DRIVER_TIMEOUT"
  /** the connection to a device failed or was lost */
  | "DRIVER_TRANSPORT"
  /** a device answered with a protocol exception */
  | "DRIVER_EXCEPTION"
  /** a device reply that does not match its request */
  | "DRIVER_PROTOCOL"
  /** a write-back refused before it reached the device */
  | "WRITE_REFUSED"
  /** an OPC UA server's certificate is not trusted: it waits in the PKI's rejected/ folder */
  | "OPCUA_CERT_UNTRUSTED"
  /** an OPC UA server refused the login or the security mode/policy */
  | "OPCUA_SECURITY"
  /** a listener cannot bind its address; exit 2 */
  | "PORT_IN_USE"
  /** a `/live` client sent a frame the feed does not understand; its socket is closed */
  | "LIVE_BAD_FRAME"
  /** cut short by a stop request */
  | "ABORTED"
  /** a part this build does not have, or a command used wrongly */
  | "USAGE";

export class FloorgateError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "FloorgateError";
  }
}

export function isFloorgateError(err: unknown, code?: ErrorCode): err is FloorgateError {
  return err instanceof FloorgateError && (code === undefined || err.code === code);
}

/** A short, log-safe description of any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
